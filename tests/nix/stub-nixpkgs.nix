# A stand-in for the nixpkgs flake input, for tests/nix/nix_offline_test.sh:
# just enough of lib, callPackage, mkDerivation and nixosSystem to evaluate
# every output of flake.nix without a download. Derivations become their
# arguments plus a fake outPath (/nix/store/stub-NAME), so the test can look
# at what our Nix code hands to nixpkgs: flags, paths, phases, environment.
let
  drv =
    name: attrs:
    attrs
    // {
      outPath = "/nix/store/stub-${name}";
      overrideAttrs = f: mkDerivation (attrs // (if builtins.isFunction f then f attrs else f));
    };
  mkDerivation = attrs: drv (attrs.pname or attrs.name) attrs;
  pkg = name: drv name { inherit name; };

  pkgs = builtins.listToAttrs (
    map (n: { name = n; value = pkg n; }) [
      "bash" "bc" "bison" "boost" "cli11" "cmake" "e2fsprogs" "elfutils" "fakeroot" "flex" "fmt"
      "gbenchmark" "git" "gtest" "libgit2" "liburing" "libslirp" "makeBinaryWrapper" "ninja"
      "nlohmann_json" "perl" "pkg-config"
    ]
  )
  // {
    inherit lib pkgs;
    stdenv = { inherit mkDerivation; };
    fmt_9 = pkg "fmt-9";
    bashInteractive = pkg "bash-interactive" // { shellPath = "/bin/bash"; };
    glibc = pkg "glibc" // { static = pkg "glibc-static"; };
    busybox = pkg "busybox" // { override = args: pkg (if args.enableStatic or false then "busybox-static" else "busybox"); };
    linux_6_1 = pkg "linux" // { version = "6.1.999"; src = pkg "linux-6.1.999.tar.xz"; };
    callPackage =
      f: args:
      let
        fn = if builtins.isFunction f then f else import f;
      in
      fn (builtins.intersectAttrs (builtins.functionArgs fn) pkgs // args);
    runCommand = name: env: buildCommand: drv name (env // { inherit name buildCommand; });
    writeText = name: text: drv name { inherit name text; };
    writeShellScriptBin = name: text: drv name { inherit name text; };
    closureInfo = { rootPaths }: drv "closure-info" { inherit rootPaths; };
    mkShell = attrs: drv "shell" attrs;
  };

  lib = {
    licenses.gpl2Only = "GPL-2.0-only";
    mkForce = x: x;
    getName = p: if builtins.isString p then p else p.pname or p.name;
    fileset = {
      toSource = { root, fileset }: { inherit root fileset; outPath = toString root; };
      difference = a: b: { difference = [ a b ]; };
      unions = l: { unions = l; };
      maybeMissing = p: p;
    };
    # The guest module on stub config: the module's own system.build, plus a
    # toplevel; users as NixOS would have them for this module.
    nixosSystem =
      { modules }:
      let
        module = builtins.elemAt modules 1;
        m = import module { inherit config lib pkgs; };
        user = name: uid: extra: {
          inherit name uid;
          group = name;
          extraGroups = [ ];
          description = "";
          home = "/var/empty";
          shell = "/bin/nologin";
          hashedPassword = null;
        } // extra;
        config = {
          nixpkgs.hostPlatform = (builtins.elemAt modules 0).nixpkgs.hostPlatform;
          security.sudo.package = pkg "sudo";
          users = {
            users = m.users.users // {
              sandbox = user "sandbox" 1000 m.users.users.sandbox;
              root = user "root" 0 { home = "/root"; shell = { shellPath = "/bin/bash"; }; };
            };
            groups = {
              sandbox = { name = "sandbox"; members = [ ]; } // m.users.groups.sandbox;
              root = { name = "root"; gid = 0; members = [ ]; };
              wheel = { name = "wheel"; gid = 1; members = [ ]; };
            };
          };
          system.build = m.system.build // { toplevel = pkg "nixos-system-ksbox"; };
        };
      in
      { inherit config; };
  };
in
{
  inherit lib;
  legacyPackages.x86_64-linux = pkgs;
}
