{
  description = "ksbox: KVM microVM sandboxes for AI coding agents, with a NixOS guest";

  # A NixOS release that has linux_6_1, claude-code, gemini-cli and codex.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  # Everything lives in nix/ (see nix/README.md); this file sits at the top so
  # that `nix build`, `nix develop` and `nix run` work from the repository
  # root and the flake's source is the whole tree the CMake build needs.
  outputs = { self, nixpkgs }: import ./nix/outputs.nix { inherit self nixpkgs; };
}
