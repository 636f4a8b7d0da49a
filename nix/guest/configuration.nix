# The NixOS guest: the tools and agent CLIs of the Debian image
# (guest-image/rootfs/packages.txt, agents.txt), the `sandbox` user
# (1000:1000, passwordless sudo). ksbox boots it with its own kernel and
# initramfs, and ksbox-agent stays PID 1: NixOS's stage 1, stage 2, systemd
# and activation never run, so this is a container-style system
# (boot.isContainer: no kernel, no boot loader) whose files nix/guest/rootfs.nix
# lays out in the image.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  accounts = import ../lib/accounts.nix;
  files = accounts.fromNixos {
    inherit (config.users) users groups;
    shellPath = accounts.shellPathIn "";
  };
in
{
  boot.isContainer = true;
  networking.hostName = "ksbox";
  # The agent configures eth0, the route and /etc/resolv.conf (ksbox.net=);
  # make-rootfs.sh leaves resolv.conf out of the image for it.
  networking.useDHCP = false;
  networking.firewall.enable = false;

  # No daemons run: glibc reads the files directly instead of asking nscd.
  services.nscd.enable = false;
  system.nssModules = lib.mkForce [ ];
  # Packages come from the image build; nix inside the guest would need its
  # daemon and a registered store.
  nix.enable = false;
  documentation.enable = false;
  documentation.man.enable = false;
  documentation.info.enable = false;
  documentation.doc.enable = false;

  users.mutableUsers = false;
  users.groups.sandbox.gid = 1000;
  users.users.sandbox = {
    isNormalUser = true;
    uid = 1000;
    group = "sandbox";
    extraGroups = [ "wheel" ];
    description = "ksbox sandbox";
    home = "/home/sandbox";
    shell = pkgs.bashInteractive;
  };
  # Nobody logs in with a password: ksbox exec/attach come in over vsock.
  users.allowNoPasswordLogin = true;
  security.sudo.extraRules = [
    {
      users = [ "sandbox" ];
      commands = [ { command = "ALL"; options = [ "NOPASSWD" ]; } ];
    }
  ];

  # claude-code is unfree; the other two are not.
  nixpkgs.config.allowUnfreePredicate = pkg: builtins.elem (lib.getName pkg) [ "claude-code" ];

  environment.systemPackages = with pkgs; [
    git
    curl
    cacert
    openssh
    nodejs_22 # the major version guest-image/rootfs/node.txt pins
    (python3.withPackages (ps: [ ps.pip ])) # venv is in the standard library
    gcc
    gnumake
    ripgrep
    fd
    jq
    vim
    less
    xz
    procps
    config.security.sudo.package
    claude-code
    gemini-cli
    codex
  ];

  system.stateVersion = "26.05";

  # What the image build needs from this configuration.
  system.build.ksboxAccounts = {
    passwd = pkgs.writeText "passwd" (accounts.passwd files.users);
    group = pkgs.writeText "group" (accounts.group files.groups);
    shadow = pkgs.writeText "shadow" (accounts.shadow files.users);
  };
  system.build.ksboxRootfs = pkgs.callPackage ./rootfs.nix {
    inherit (config.system.build) toplevel ksboxAccounts;
    sudo = config.security.sudo.package;
  };
}
