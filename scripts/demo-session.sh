#!/usr/bin/env bash
# The body of scripts/demo.sh, run where /dev/kvm exists: the ksbox workflow
# on a throwaway git project. `ksbox run` boots its sandbox from the Debian
# root disk (build/guest/rootfs.ext4, with the agent CLIs), the "agent"
# commits in /workspace (a clone: the host repository is never shared),
# `ksbox sync` fast-forwards the project, then stop and destroy.
set -euo pipefail
build=${KSBOX_BUILD_DIR:?}
export PATH=$build/cli:$PATH
state=$(mktemp -d "${TMPDIR:-/tmp}/ksbox-demo-XXXXXX")
# A state directory of its own, so the demo leaves nothing in ~/.local/state.
export XDG_STATE_HOME=$state/state
# The guest: the build's (kernel, initramfs, Debian root disk). Without the
# root disk, the test initramfs (the default one plus git) stands in.
if [ -e "$build/guest/rootfs.ext4" ]; then
  export KSBOX_GUEST_DIR=$build/guest
  image=rootfs
else
  mkdir -p "$state/guest"
  ln -s "$build/guest/vmlinux" "$state/guest/vmlinux"
  ln -s "$build/guest/initramfs-test.cpio.gz" "$state/guest/initramfs.cpio.gz"
  export KSBOX_GUEST_DIR=$state/guest
  image=initramfs
  printf 'demo: no %s: using the test initramfs instead of the Debian root disk\n' "$build/guest/rootfs.ext4" >&2
fi
project=$state/hello-project
cleanup() {
  ksbox destroy --force hello-project >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT

say() { printf '\n\033[1mdemo: %s\033[0m\n' "$*" >&2; }

mkdir -p "$project"
git -C "$project" init -q -b main
git -C "$project" config user.name "Demo User"
git -C "$project" config user.email demo@example.com
echo "# hello" >"$project/README.md"
git -C "$project" add README.md
git -C "$project" commit -qm "Initial commit"

say "ksbox run $project --no-attach --image $image   (clone, boot, wait for the agent)"
start=$(date +%s%N)
# Generous for the nested harness on a loaded machine (ready in ~10 s when idle).
ksbox run "$project" --no-attach --vcpus 1 --memory 1024 --image "$image" --boot-timeout 600
echo "ready after $(( ($(date +%s%N) - start) / 1000000 )) ms (nested emulation is slow; see benchmarks/)" >&2

if [ "$image" = rootfs ]; then
  say "ksbox exec: the agent CLIs and tools on the root disk"
  ksbox exec hello-project -- bash -c 'for t in claude gemini codex node python3; do echo "$t: $($t --version)"; done'
fi

say "ksbox exec: the agent works and commits in /workspace, as the sandbox user"
ksbox exec hello-project -- sh -c 'cd /workspace && id -un && echo "print(42)" > main.py &&
  git add main.py && git commit -qm "Add main.py" && git log --format="%h %an: %s"'

say "ksbox status"
ksbox status hello-project

say "ksbox sync --dry-run   (shows what would come, changes nothing)"
ksbox sync hello-project --dry-run

say "ksbox sync   (host-initiated, fast-forward only)"
ksbox sync hello-project
git -C "$project" log --format="%h %an: %s"

say "ksbox list; ksbox stop; ksbox destroy"
ksbox list
ksbox stop hello-project
ksbox destroy hello-project
