# shellcheck shell=bash
# scripts/lib-apt.sh: sourced by the scripts that build Debian-packaged peers (cnitool, the CRI
# client, the ecs-ipam Go double). The sourcing script defines log and die first.
#   apt_install_missing PKG...   installs those not installed yet (root needed only then)
#   ensure_deb_src               adds a deb-src twin of the Debian deb822 entry unless some
#                                deb-src entry exists already
#   apt_source_retry DIR ARGS... `apt-get source ARGS` in DIR; on failure refreshes the package
#                                lists once and retries
# apt and dpkg output goes to stderr; stdin is /dev/null.

export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -y -q -o Dpkg::Use-Pty=0)
SRC_LIST=/etc/apt/sources.list.d/debian-src.sources
installed() { dpkg-query -W -f='${Status}' "$1" 2> /dev/null | grep -q 'install ok installed'; }
apt_updated=
apt_update() { [ -n "$apt_updated" ] || { "${APT[@]}" update < /dev/null >&2; apt_updated=1; }; }

apt_install_missing() {
  local p missing=()
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  [ "$(id -u)" = 0 ] || die "must run as root to install ${missing[*]}"
  log "installing ${missing[*]}"
  apt_update
  "${APT[@]}" install --no-install-recommends "${missing[@]}" < /dev/null >&2
}

have_src() {
  grep -rqsE '^[[:space:]]*Types:.*deb-src' /etc/apt/sources.list.d/*.sources ||
    grep -rqsE '^[[:space:]]*deb-src[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list
}

ensure_deb_src() {
  have_src && return 0
  [ "$(id -u)" = 0 ] || die "must run as root to add a deb-src entry"
  [ -f /etc/apt/sources.list.d/debian.sources ] ||
    die "no deb-src entry and no /etc/apt/sources.list.d/debian.sources to copy one from"
  log "adding $SRC_LIST (deb-src twin of debian.sources)"
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$SRC_LIST"
  apt_updated=
  apt_update
}

apt_source_retry() {
  local dir=$1
  shift
  (cd "$dir" && "${APT[@]}" source "$@" < /dev/null >&2) && return 0
  log "apt-get source failed; refreshing the package lists once and retrying"
  apt_update
  (cd "$dir" && "${APT[@]}" source "$@" < /dev/null >&2)
}
