# The guest kernel: Linux 6.1 from nixpkgs' kernel.org source with OUR
# patches (guest-image/kernel-patches/*.patch, in name order), `make
# tinyconfig` + OUR fragment (guest-image/kernel.config, read from there, not
# copied), every fragment option verified in the final .config, then vmlinux
# (stripped, PVH note kept) and bzImage. The same recipe as
# guest-image/build-kernel.sh, which uses Debian's linux-source-6.1.
{
  lib,
  stdenv,
  linux_6_1,
  bc,
  bison,
  elfutils,
  flex,
  perl,
  fragment, # path of guest-image/kernel.config
  patchDir, # path of guest-image/kernel-patches
}:

let
  kconfig = import ../lib/kconfig.nix;
  options = kconfig.parseFragment (builtins.readFile fragment);
  # Fixed build identity, as build-kernel.sh: `uname -v` does not depend on
  # who built the kernel when.
  kmake = "make ARCH=x86_64 KBUILD_BUILD_USER=ksbox KBUILD_BUILD_HOST=ksbox KBUILD_BUILD_TIMESTAMP='1970-01-01 00:00:00 UTC'";
in
stdenv.mkDerivation {
  pname = "ksbox-guest-kernel";
  inherit (linux_6_1) version src;

  # As build-kernel.sh: every *.patch of the directory, in name order.
  patches = map (n: patchDir + "/${n}") (
    builtins.filter (n: builtins.match ".*\\.patch" n != null) (builtins.attrNames (builtins.readDir patchDir))
  );

  # objtool (ORC unwinder) needs libelf; the rest is the usual Kbuild toolset.
  nativeBuildInputs = [ bc bison elfutils flex perl ];
  # Kbuild sets its own flags; nixpkgs' hardening flags break the kernel build.
  hardeningDisable = [ "all" ];
  enableParallelBuilding = true;

  postPatch = ''
    patchShebangs scripts
  '';

  configurePhase = ''
    runHook preConfigure
    ${kmake} tinyconfig
    scripts/kconfig/merge_config.sh -m .config ${fragment}
    ${kmake} olddefconfig
    # Kconfig silently drops options with unmet dependencies.
    (
      ${kconfig.checkScript options}
    )
    runHook postConfigure
  '';

  buildPhase = ''
    runHook preBuild
    ${kmake} -j$NIX_BUILD_CORES vmlinux bzImage
    runHook postBuild
  '';

  installPhase = ''
    runHook preInstall
    mkdir -p $out
    strip --strip-all -o $out/vmlinux vmlinux
    # ksbox-vmm loads the ELF at its 64-bit entry; QEMU -M microvm needs PVH.
    if ! readelf -n $out/vmlinux | grep -qE 'Xen.*(0x00000012|PHYS32_ENTRY)'; then
      echo "stripped vmlinux has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)" >&2
      exit 1
    fi
    cp arch/x86/boot/bzImage $out/bzImage
    cp .config $out/kernel.config.final
    cp System.map $out/System.map
    runHook postInstall
  '';
  dontStrip = true; # stripped above, with the PVH note checked

  passthru = { inherit options; };

  meta = {
    description = "ksbox guest kernel (Linux ${linux_6_1.version}, tinyconfig + guest-image/kernel.config)";
    license = lib.licenses.gpl2Only;
    platforms = [ "x86_64-linux" ];
  };
}
