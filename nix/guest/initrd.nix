# The guest initramfs: busybox (static) + guest-image/initramfs/init +
# ksbox-agent (static) as PID 1, written by guest-image/build-initramfs.sh
# itself, so the layout is the one ksbox-vmm boots from a Debian build.
{
  runCommand,
  bash,
  busybox, # a static one
  ksbox,
  guestImageDir, # path of guest-image/ (the script, init)
}:

runCommand "ksbox-guest-initrd"
  {
    nativeBuildInputs = [ bash ];
    # build-initramfs.sh checks both with file(1) when that is on PATH; the
    # check below holds without it (no ELF interpreter = nothing to load).
    BUSYBOX = "${busybox}/bin/busybox";
    AGENT = "${ksbox}/libexec/ksbox/ksbox-agent";
    SOURCE_DATE_EPOCH = "0"; # the same archive as a Debian build of the same inputs
    meta.platforms = [ "x86_64-linux" ];
  }
  ''
    for f in "$BUSYBOX" "$AGENT"; do
      if readelf -l "$f" | grep -q INTERP; then
        echo "$f is dynamically linked; the initramfs has no loader" >&2
        exit 1
      fi
    done
    mkdir -p $out
    bash ${guestImageDir}/build-initramfs.sh $out/initramfs.cpio.gz
  ''
