# /etc/passwd, /etc/group and /etc/shadow as text, from NixOS's declared
# users and groups. Pure (builtins only), so tests/nix evaluates it offline.
#
# Why: the guest never runs NixOS's activation script (ksbox-agent stays PID
# 1 and switches to the root disk itself; see nix/README.md), so the files
# that activation would write from `users.users` are written into the image
# here instead. Only accounts with a fixed uid/gid are included: the ones
# NixOS would allocate dynamically belong to services that never run in the
# guest.
let
  inherit (builtins) attrValues concatStringsSep elem filter isAttrs lessThan map sort;

  concatLines = l: concatStringsSep "" (map (s: s + "\n") l);
  byId = key: sort (a: b: lessThan a.${key} b.${key});
in
rec {
  # users: attrset of NixOS user submodules (name, uid, group, extraGroups,
  # description, home, shell, hashedPassword); groups: attrset of group
  # submodules (name, gid, members). shellPath turns a `shell` value (a
  # package with passthru.shellPath, or a path string) into the passwd field.
  fromNixos =
    { users, groups, shellPath }:
    let
      fixedUsers = filter (u: u.uid != null) (attrValues users);
      fixedGroups = filter (g: g.gid != null) (attrValues groups);
      gidOf = u: if groups ? ${u.group} && groups.${u.group}.gid != null then groups.${u.group}.gid else u.uid;
      membersOf =
        g: g.members ++ map (u: u.name) (filter (u: elem g.name (u.extraGroups or [ ])) (attrValues users));
    in
    {
      users = map (u: {
        inherit (u) name uid home description;
        gid = gidOf u;
        shell = shellPath u.shell;
        # null: no password (locked for logins, still usable by the agent and sudo).
        hashedPassword = u.hashedPassword or null;
      }) fixedUsers;
      groups = map (g: {
        inherit (g) name gid;
        members = sort lessThan (membersOf g);
      }) fixedGroups;
    };

  passwd =
    users:
    concatLines (
      map (u: "${u.name}:x:${toString u.uid}:${toString u.gid}:${u.description}:${u.home}:${u.shell}") (byId "uid" users)
    );

  group =
    groups: concatLines (map (g: "${g.name}:x:${toString g.gid}:${concatStringsSep "," g.members}") (byId "gid" groups));

  # "!" locks password logins; days since the epoch of the last change is 1
  # (0 would force a change at the next login).
  shadow =
    users:
    concatLines (
      map (u: "${u.name}:${if u.hashedPassword == null then "!" else u.hashedPassword}:1::::::") (byId "uid" users)
    );

  # A shell as NixOS declares it, as a path in the image: its /bin is the
  # system profile's bin (nix/guest/make-rootfs.sh), so /bin/bash is bash.
  shellPathIn = bin: shell: if isAttrs shell && shell ? shellPath then bin + shell.shellPath else toString shell;
}
