# Steps both installers take, device/install/install-pi.sh and server/install/install-server.sh:
# sourced by them, not run. Each defines say() (its own prefix) and $p, $root: the prefix every path
# is written under and the root it names, empty and / on the running system.

# apt_install PACKAGE...: installs those not yet installed, from Debian's archive.
apt_install() {
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

# system_user NAME HOME COMMENT: a system user and group of that name that cannot log in, created
# in $p/etc when missing. Sets in_root: the --root option for useradd and usermod into an image.
system_user() {
  in_root=()
  [[ -z "$p" ]] || in_root=(--root "$root")
  if ! grep -q "^$1:" "$p/etc/passwd"; then
    say "creating system user $1"
    useradd "${in_root[@]}" --system --user-group --home-dir "$2" --no-create-home \
      --shell /usr/sbin/nologin --comment "$3" "$1"
  fi
}
