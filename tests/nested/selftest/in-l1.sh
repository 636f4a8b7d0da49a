#!/usr/bin/env bash
# Checks what end-to-end tests rely on, from inside the harness
# (tests/nested/with-kvm tests/nested/selftest/in-l1.sh): a working /dev/kvm
# (a real guest runs), a tmpfs TMPDIR where unix sockets work, vhost-vsock.
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
tmp=${TMPDIR:-/tmp}

echo "in-l1: KSBOX_IN_L1=${KSBOX_IN_L1:-unset} TMPDIR=$tmp ($(stat -f -c %T "$tmp"))"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "in-l1: /dev/kvm is not read-writable" >&2; exit 1; }

${CC:-cc} -O2 -Wall -Werror -o "$tmp/kvm-smoke" "$here/kvm-smoke.c"
"$tmp/kvm-smoke"

# Unix sockets (QEMU refuses special files on 9p; TMPDIR must be a tmpfs).
sock=$tmp/in-l1.sock
if command -v python3 >/dev/null; then
	python3 - "$sock" <<'EOF'
import os, socket, sys
path = sys.argv[1]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
cli.connect(path)
conn, _ = srv.accept()
cli.sendall(b"ping")
assert conn.recv(4) == b"ping"
os.unlink(path)
print("in-l1: unix socket ok:", path)
EOF
else
	busybox nc -lU "$sock" >"$tmp/nc.out" &
	sleep 0.5
	echo ping | busybox nc -U "$sock"
	wait
	[ "$(cat "$tmp/nc.out")" = ping ] && echo "in-l1: unix socket ok: $sock"
fi

if [ -e /dev/vhost-vsock ]; then
	echo "in-l1: /dev/vhost-vsock present"
else
	echo "in-l1: note: no /dev/vhost-vsock"
fi
echo "in-l1: all ok"
