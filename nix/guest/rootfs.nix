# The NixOS guest as ksbox's read-only root disk: rootfs.ext4 (label
# ksbox-root, no journal) laid out by make-rootfs.sh from the system closure.
{
  runCommand,
  closureInfo,
  bash,
  e2fsprogs,
  fakeroot,
  toplevel,
  ksboxAccounts,
  sudo,
}:

let
  closure = closureInfo { rootPaths = [ toplevel ]; };
in
runCommand "ksbox-guest-rootfs"
  {
    nativeBuildInputs = [ bash e2fsprogs fakeroot ];
    TOPLEVEL = toplevel;
    STORE_PATHS = "${closure}/store-paths";
    PASSWD = ksboxAccounts.passwd;
    GROUP = ksboxAccounts.group;
    SHADOW = ksboxAccounts.shadow;
    SUDO = "${sudo}/bin/sudo";
    passthru = { inherit toplevel; };
    meta.platforms = [ "x86_64-linux" ];
  }
  ''
    mkdir -p $out
    bash ${./make-rootfs.sh} $out/rootfs.ext4
    cp ${closure}/store-paths $out/store-paths.txt
  ''
