#!/bin/sh
# guest-workload.sh WS ITERS MIB RANDOPS IO DROP [SMALLKIB [STEPS]] — the workload of
# benchmarks/fs/run-guest, run by busybox sh inside the guest (ksbox-vmm over
# virtio-fs, QEMU over 9p) and natively in L1, with the same applets.
#   WS       the workspace: repo/ (a git repo of the file tree), tree.tar (the
#            tree without .git); scratch files go next to them
#   ITERS    passes over the steps; MIB the sequential file's size;
#   RANDOPS  4 KiB requests per random pass; IO the fsbench_io binary
#   DROP     1: drop the (guest's) page, dentry and inode caches before every
#            step, so each one starts cold and has to ask the file server
#   SMALLKIB size of the small-write file, written 128 bytes per write()
#            (default 1024)
#   STEPS    the steps to run, comma-separated (default: all); untar needs
#            rm_tree after it, the seq_read and rand_* steps need seq_write
# Timing is inside, with CLOCK_MONOTONIC around each step: the way the
# commands got here (console, exec) is not measured. Prints
# "FSBENCH <metric> <ns>" per step and pass, "FSBENCH-CHECK …" facts to verify
# and "FSBENCH-DONE" at the end; any failure prints "FSBENCH-FAIL <step>".
set -u
ws=$1 iters=$2 mib=$3 randops=$4 io=$5 drop=$6 smallkib=${7:-1024} steps=${8:-all}
err=$(mktemp)
cd "$ws" || { echo "FSBENCH-FAIL cd $ws"; exit 1; }
git_() { git -c safe.directory='*' -c core.fsmonitor=false -C repo "$@"; }
cold() {
	[ "$drop" = 1 ] || return 0
	sync
	echo 3 >/proc/sys/vm/drop_caches
}
# step NAME CMD...: one timed step; CMD's stdout is thrown away.
step() {
	name=$1
	shift
	case ",$steps," in *,all,* | *",$name,"*) ;; *) return 0 ;; esac
	cold
	t0=$("$io" now)
	# stderr to a file: no progress meters on the console (git shows them on a tty)
	"$@" >/dev/null 2>"$err" || { cat "$err"; echo "FSBENCH-FAIL $name"; exit 1; }
	t1=$("$io" now)
	echo "FSBENCH $name $((t1 - t0))"
}
count_files() { find repo -type f | wc -l; }
stat_files() { find repo -type f -exec stat -c '%s %Y' {} +; }
untar() { mkdir untar && tar xf tree.tar -C untar && sync -f untar; }
# Many small write() calls (a log, a compiler writing an object): each one is a
# FUSE WRITE unless the guest's writeback cache gathers them; fsync at the end.
small_write() { dd if=/dev/zero of=small.bin bs=128 count=$((smallkib * 8)) conv=fsync 2>&1 && rm small.bin; }
seq_write() { dd if=/dev/zero of=seq.bin bs=1M count="$mib" conv=fsync 2>&1; }
seq_read() { dd if=seq.bin of=/dev/null bs=1M 2>&1; }

echo "FSBENCH-CHECK files=$(find repo -type f -not -path 'repo/.git/*' | wc -l)"
# git refreshes the index's stat data on its first status here (inode numbers
# and ctimes differ from where the repo was committed): not timed.
echo "FSBENCH-CHECK status_lines=$(git_ status --porcelain 2>"$err" | wc -l)"
i=0
while [ "$i" -lt "$iters" ]; do
	step find_files count_files
	step stat_files stat_files
	step git_status git_ status
	step untar untar
	step rm_tree rm -rf untar
	step small_write small_write
	step seq_write seq_write
	step seq_read seq_read
	step rand_read "$io" rand read seq.bin "$randops"
	step rand_write "$io" rand write seq.bin "$randops"
	rm -f seq.bin
	i=$((i + 1))
done
echo "FSBENCH-CHECK status_lines_after=$(git_ status --porcelain 2>"$err" | wc -l)"
echo "FSBENCH-DONE"
