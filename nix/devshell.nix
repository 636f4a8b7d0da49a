# `nix develop`: ksbox on PATH with the NixOS guest as its image
# (KSBOX_GUEST_DIR), and a few short helpers for the usual loop in a git
# project: start the sandbox (with an agent), run things in it, pull its
# commits, stop it.
{
  mkShell,
  writeShellScriptBin,
  ksbox, # the wrapped one: its default guest is ours
  guest,
}:

let
  helpers = [
    # start this project's sandbox and attach
    (writeShellScriptBin "kb-run" ''exec ksbox run "$@"'')
    # start it running an agent CLI
    (writeShellScriptBin "kb-agent" ''
      [ $# -gt 0 ] || { echo "usage: kb-agent claude|gemini|codex [ARGS...]" >&2; exit 2; }
      exec ksbox run -- "$@"
    '')
    # run a command in it
    (writeShellScriptBin "kb-exec" ''exec ksbox exec -- "$@"'')
    # fast-forward its commits into this repository
    (writeShellScriptBin "kb-sync" ''exec ksbox sync "$@"'')
    (writeShellScriptBin "kb-stop" ''exec ksbox stop "$@"'')
    (writeShellScriptBin "kb-ls" ''exec ksbox list "$@"'')
    (writeShellScriptBin "kb-doctor" ''exec ksbox doctor "$@"'')
  ];
in
mkShell {
  packages = [ ksbox ] ++ helpers;
  KSBOX_GUEST_DIR = guest;
  shellHook = ''
    echo "ksbox: guest image $KSBOX_GUEST_DIR"
    echo "helpers: kb-run, kb-agent claude|gemini|codex, kb-exec CMD, kb-sync, kb-stop, kb-ls, kb-doctor"
  '';
}
