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
  helper = name: _doc: body: writeShellScriptBin name body;
  helpers = [
    (helper "kb-run" "start this project's sandbox and attach (ksbox run)" ''exec ksbox run "$@"'')
    (helper "kb-agent" "start the sandbox running an agent: kb-agent claude|gemini|codex [ARGS]" ''
      [ $# -gt 0 ] || { echo "usage: kb-agent claude|gemini|codex [ARGS...]" >&2; exit 2; }
      exec ksbox run -- "$@"
    '')
    (helper "kb-exec" "run a command in this project's sandbox: kb-exec CMD [ARGS]" ''exec ksbox exec -- "$@"'')
    (helper "kb-sync" "pull the sandbox's commits into this repo (fast-forward only)" ''exec ksbox sync "$@"'')
    (helper "kb-stop" "stop this project's sandbox" ''exec ksbox stop "$@"'')
    (helper "kb-ls" "list sandboxes" ''exec ksbox list "$@"'')
    (helper "kb-doctor" "check this host (KVM, image, tools)" ''exec ksbox doctor "$@"'')
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
