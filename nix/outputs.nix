# The flake's outputs (flake.nix at the top of the repository delegates here).
# The attribute structure is built without touching nixpkgs, so that
# tests/nix can list the outputs offline with a stub in nixpkgs' place.
{ self, nixpkgs }:

let
  systems = [ "x86_64-linux" ]; # a KVM x86_64 guest; ksbox-vmm is x86_64-only
  forSystems = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);

  kconfig = import ./lib/kconfig.nix;
  accounts = import ./lib/accounts.nix;

  guestSystem =
    system:
    nixpkgs.lib.nixosSystem {
      modules = [
        { nixpkgs.hostPlatform = system; }
        ./guest/configuration.nix
      ];
    };

  perSystem =
    system:
    let
      pkgs = nixpkgs.legacyPackages.${system};
      inherit (nixpkgs) lib;
      fs = lib.fileset;
      # The C++ sources only: edits to nix/ or the docs do not rebuild ksbox.
      src = fs.toSource {
        root = ../.;
        fileset = fs.difference ../. (
          fs.unions [
            ./.
            ../flake.nix
            (fs.maybeMissing ../flake.lock)
            (fs.maybeMissing ../build)
          ]
        );
      };

      ksbox = pkgs.callPackage ./package.nix {
        inherit src;
        # Debian 12's fmt (9.1): the version the sources are built and tested with.
        fmt = pkgs.fmt_9;
      };
      guest-kernel = pkgs.callPackage ./guest/kernel.nix {
        fragment = ../guest-image/kernel.config;
        patchDir = ../guest-image/kernel-patches;
      };
      guest-initrd = pkgs.callPackage ./guest/initrd.nix {
        inherit ksbox;
        # glibc-static, like Debian's busybox-static (pkgsStatic would build a
        # musl toolchain first).
        busybox = pkgs.busybox.override { enableStatic = true; };
        guestImageDir = ../guest-image;
      };
      guest-rootfs = (guestSystem system).config.system.build.ksboxRootfs;
      # What ksbox expects in KSBOX_GUEST_DIR (cli/README.md), plus the root disk.
      guest = pkgs.runCommand "ksbox-guest" { } ''
        mkdir -p $out
        ln -s ${guest-kernel}/vmlinux ${guest-kernel}/bzImage ${guest-kernel}/kernel.config.final $out/
        ln -s ${guest-initrd}/initramfs.cpio.gz $out/
        ln -s ${guest-rootfs}/rootfs.ext4 $out/
      '';
      # ksbox whose default guest image is the one above. A compiled wrapper:
      # `ksbox exec` is started per command and a shell wrapper would add to
      # that; ksbox still finds ksbox-git and ksbox-vmm next to its real binary.
      ksbox-with-guest = pkgs.runCommand "ksbox-with-guest-${ksbox.version}" {
        nativeBuildInputs = [ pkgs.makeBinaryWrapper ];
        meta.mainProgram = "ksbox";
      } ''
        makeBinaryWrapper ${ksbox}/bin/ksbox $out/bin/ksbox --set-default KSBOX_GUEST_DIR ${guest}
      '';
    in
    {
      packages = {
        inherit ksbox guest-kernel guest-initrd guest-rootfs guest ksbox-with-guest;
        default = ksbox-with-guest;
      };
      devShells = {
        default = pkgs.callPackage ./devshell.nix { ksbox = ksbox-with-guest; inherit guest; };
        # For working on ksbox itself: its build inputs; `cmake -S . -B build
        # -G Ninja` as usual picks the static libc up from the environment.
        build = pkgs.mkShell {
          inputsFrom = [ ksbox ];
          KSBOX_STATIC_LIBDIRS = "${pkgs.glibc.static}/lib";
        };
      };
      apps.default = {
        type = "app";
        program = "${ksbox-with-guest}/bin/ksbox";
        meta.description = "ksbox with the NixOS guest image";
      };
      checks = {
        inherit ksbox;
        unit = ksbox.overrideAttrs {
          pname = "ksbox-unit-tests";
          ninjaFlags = [ ];
          doCheck = true;
          nativeCheckInputs = [ pkgs.git ];
          # tests/nix needs nix-instantiate and a writable store: not in a build.
          checkPhase = ''
            runHook preCheck
            ctest -L unit -LE nix --output-on-failure -j $NIX_BUILD_CORES
            runHook postCheck
          '';
          installPhase = "touch $out";
          doInstallCheck = false;
        };
        rootfs-layout = pkgs.runCommand "ksbox-rootfs-layout-test" {
          nativeBuildInputs = [ pkgs.e2fsprogs pkgs.fakeroot ];
        } ''
          bash ${../tests/nix/rootfs_layout_test.sh} ${./guest/make-rootfs.sh}
          touch $out
        '';
      };
    };
in
{
  packages = forSystems (system: (perSystem system).packages);
  devShells = forSystems (system: (perSystem system).devShells);
  apps = forSystems (system: (perSystem system).apps);
  checks = forSystems (system: (perSystem system).checks);
  nixosConfigurations.ksbox-guest = guestSystem "x86_64-linux";
  # Extend the guest in your own flake: nixosSystem { modules = [ ksbox.nixosModules.guest ./mine.nix ]; }
  # and build its config.system.build.ksboxRootfs.
  nixosModules.guest = ./guest/configuration.nix;
  lib = { inherit kconfig accounts; };
}
