# ksbox itself: the CLI (ksbox, static), ksbox-vmm, ksbox-git (libgit2,
# dynamic) and the guest agent ksbox-agent (static; it is PID 1 of the
# initramfs, which has no libc). The same CMake build as scripts/build.sh,
# with nixpkgs' libraries in place of Debian's.
{
  stdenv,
  cmake,
  ninja,
  pkg-config,
  boost,
  cli11,
  fmt,
  gbenchmark,
  glibc,
  gtest,
  libgit2,
  liburing,
  libslirp,
  nlohmann_json,
  src,
  version ? "0.1.0",
}:

stdenv.mkDerivation {
  pname = "ksbox";
  inherit version src;

  nativeBuildInputs = [ cmake ninja pkg-config ];
  buildInputs = [
    boost # Asio (header-only): the VMM's control server
    cli11
    fmt
    libgit2
    liburing
    libslirp
    nlohmann_json
    # The top-level CMakeLists.txt requires both (tests and benchmarks are
    # configured with everything else); they are built only by `checks`.
    gtest
    gbenchmark
  ];
  # ksbox and ksbox-agent are linked -static (ksbox_link_static in
  # CMakeLists.txt); everything else they use is header-only, and nixpkgs'
  # gcc ships libstdc++.a. libc.a is in glibc.static, given to those links
  # only: in buildInputs it would be on the search path of the dynamic
  # executables too, which then crash (nixpkgs issue #59267).
  cmakeFlags = [ "-DKSBOX_STATIC_LIBDIRS=${glibc.static}/lib" ];
  # virtio-fs speaks the FUSE wire protocol from the kernel's uapi header
  # <linux/fuse.h> (glibc's linux headers): no libfuse3 needed.

  # Only what the package ships; the tests are built by checks.unit.
  ninjaFlags = [ "ksbox" "ksbox-vmm" "ksbox-git" "ksbox-agent-stripped" ];

  # The layout the CLI looks things up in (cli/README.md): ksbox-git and
  # ksbox-vmm next to ksbox. The agent goes to libexec for the initrd.
  installPhase = ''
    runHook preInstall
    install -Dm755 cli/ksbox $out/bin/ksbox
    install -Dm755 cli/ksbox-git $out/bin/ksbox-git
    install -Dm755 vmm/ksbox-vmm $out/bin/ksbox-vmm
    install -Dm755 guest-image/agent/ksbox-agent.stripped $out/libexec/ksbox/ksbox-agent
    runHook postInstall
  '';

  # The agent must stay static: the initramfs has no dynamic loader.
  doInstallCheck = true;
  installCheckPhase = ''
    runHook preInstallCheck
    for f in $out/bin/ksbox $out/libexec/ksbox/ksbox-agent; do
      if readelf -l "$f" | grep -q INTERP; then
        echo "$f is dynamically linked; it must be static" >&2
        exit 1
      fi
    done
    $out/bin/ksbox --version
    runHook postInstallCheck
  '';

  meta = {
    description = "KVM microVM sandboxes for AI coding agents";
    mainProgram = "ksbox";
    platforms = [ "x86_64-linux" ];
  };
}
