#!/usr/bin/env bash
# Tests tests/nested/run itself: environment, cwd, ids, stdout/stderr split,
# exit statuses, binary output, a real KVM guest and a unix socket in L1, two
# concurrent runs. Prints one line per check; exits non-zero if any failed.
# Takes a few minutes under TCG (in-l1.sh compiles a C file inside L1).
set -uo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
run=$here/../run
failed=0
check() { # name expected actual
	if [ "$2" = "$3" ]; then
		echo "PASS $1"
	else
		echo "FAIL $1: expected [$2], got [$3]"
		failed=1
	fi
}

out=$(cd / && FOO='bar baz' "$run" -- sh -c 'test -c /dev/kvm && echo kvm; nproc; pwd; id -u; echo "$FOO"; echo "$KSBOX_IN_L1"' 2>/dev/null)
check "env, cwd, uid, /dev/kvm, nproc" "kvm 2 / $(id -u) bar baz 1" "${out//$'\n'/ }"

check "stdout only" "out" "$("$run" -- sh -c 'echo out; echo err >&2' 2>/dev/null)"
check "stderr only" "err" "$("$run" -- sh -c 'echo out; echo err >&2' 2>&1 >/dev/null)"

for c in "42|sh -c 'exit 42'" "137|sh -c 'kill -9 \$\$'" "1|false" "127|/nonexistent" "0|true"; do
	want=${c%%|*}
	eval "\"\$run\" -- ${c#*|}" >/dev/null 2>&1
	check "exit status of ${c#*|}" "$want" "$?"
done

# The host's /tmp is only visible in L1 when the working directory is in it.
dir=$(mktemp -d /tmp/ksbox-harness.XXXXXX)
head -c 3000000 /dev/urandom >"$dir/blob"
check "binary stdout" "$(sha256sum <"$dir/blob")" "$(cd "$dir" && "$run" -- cat blob 2>/dev/null | sha256sum)"
rm -rf "$dir"

"$run" -- "$here/in-l1.sh" >/dev/null
check "in-l1.sh (kvm-smoke, unix socket)" 0 "$?"

a=$(mktemp) b=$(mktemp)
"$run" -- sh -c 'touch "$TMPDIR/a"; sleep 2; ls "$TMPDIR"' >"$a" 2>/dev/null &
"$run" -- sh -c 'touch "$TMPDIR/b"; sleep 2; ls "$TMPDIR"' >"$b" 2>/dev/null &
wait
check "concurrent runs, separate TMPDIRs" "a b" "$(cat "$a") $(cat "$b")"
rm -f "$a" "$b"

exit $failed
