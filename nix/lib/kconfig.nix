# Kernel config fragments as data. Pure (builtins only, no nixpkgs), so
# tests/nix evaluates it offline with nix-instantiate.
#
# A fragment is what guest-image/kernel.config holds: `CONFIG_X=VALUE` lines
# and `# CONFIG_X is not set` lines; everything else is a comment. It is
# parsed into { CONFIG_X = "VALUE"; CONFIG_Y = "n"; } ("n" stands for "is not
# set"; a string option keeps its quotes, so it never reads as "n").
let
  inherit (builtins) concatStringsSep elemAt filter isString listToAttrs map match split attrNames;

  lines = text: filter isString (split "\n" text);

  # { name, value } for an option line, null for a comment or blank line.
  parseLine =
    line:
    let
      set = match "(CONFIG_[A-Za-z0-9_]+)=(.*)" line;
      unset = match "# (CONFIG_[A-Za-z0-9_]+) is not set" line;
    in
    if set != null then
      { name = elemAt set 0; value = elemAt set 1; }
    else if unset != null then
      { name = elemAt unset 0; value = "n"; }
    else
      null;

  reverse = l: builtins.genList (i: elemAt l (builtins.length l - 1 - i)) (builtins.length l);
in
rec {
  # Later lines win, as with scripts/kconfig/merge_config.sh (listToAttrs
  # keeps the first of duplicate names, hence the reverse).
  parseFragment = text: listToAttrs (reverse (filter (x: x != null) (map parseLine (lines text))));

  # The line an option must have in the final .config.
  expectedLine = name: value: if value == "n" then "# ${name} is not set" else "${name}=${value}";

  # A shell snippet that checks a resolved .config ($1, default .config)
  # against the options: Kconfig drops an option whose dependencies are unmet
  # without an error, so each one is a promise to verify. Prints every option
  # that did not survive and exits 1; prints the count and returns 0 otherwise.
  checkScript =
    options:
    let
      quote = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] s + "'";
      check =
        name:
        let
          value = options.${name};
        in
        if value == "n" then
          "if grep -q ${quote "^${name}="} \"$config\"; then bad ${quote (expectedLine name value)}; fi"
        else
          "grep -qxF -- ${quote (expectedLine name value)} \"$config\" || bad ${quote (expectedLine name value)}";
    in
    ''
      config=''${1:-.config}
      failed=0
      bad() {
        sym=''${1#\# }; sym=''${sym%%[= ]*}
        printf 'kconfig: wanted %s, got: %s\n' "$1" "$(grep -E "^(# )?$sym[= ]" "$config" || echo 'absent (dependencies not met)')" >&2
        failed=$((failed + 1))
      }
      ${concatStringsSep "\n" (map check (attrNames options))}
      if [ "$failed" -ne 0 ]; then
        echo "kconfig: $failed option(s) did not end up as requested" >&2
        exit 1
      fi
      echo "kconfig: all ${toString (builtins.length (attrNames options))} fragment options verified"
    '';
}
