#!/usr/bin/env bash
# Installs the Kuaichu firmware on a Raspberry Pi running Raspberry Pi OS Bookworm (Debian 12), from
# the bundle `kuaichu provision device` made for this unit. Run it as root from the source tree:
#
#   sudo device/install/install-pi.sh car-0001.tar.gz
#
# Safe to run again, with the same bundle or a newer one (after `kuaichu provision rotate`): every
# step leaves things as they should be. A bundle that is damaged or not one changes nothing.
# The steps and what to check afterwards: docs/install-pi.md.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: install-pi.sh [options] BUNDLE.tar.gz

Installs Debian packages, a system user `kuaichu`, the bundle into /etc/kuaichu, the firmware as
the first release of the over-the-air layout (/opt/kuaichu/releases/VERSION/venv, the link
/opt/kuaichu/current naming it), and the systemd unit kuaichu-device.service, then (re)starts it.

options:
  --root DIR       install into DIR instead of / (an OS image being built, a test). Debian packages,
                   pip from the network and starting the service need the running system: with a DIR
                   other than / pass --skip-apt, and --release or --skip-venv (or run the script
                   inside the image, e.g. in a chroot). The user is created in DIR's /etc/passwd and
                   the service is enabled there (systemctl --root); it is not started.
  --source PATH    what to pip-install: a source tree or a wheel (default: the tree holding this script)
  --release FILE   install this signed firmware release instead (kuaichu release sign --firmware makes
                   it: release/repository/targets/firmware/kuaichu-VERSION.tar), offline, from its own
                   locked wheels; with --root, this python3 must be the image's (Debian 12, same CPU)
  --skip-apt       install no Debian packages (the image already has them)
  --skip-venv      install no firmware (only the bundle, the unit and the empty release layout)
  --no-start       enable the service but do not (re)start it
  -h, --help       this text
EOF
}

die() {
  echo "install-pi.sh: $*" >&2
  exit 1
}
say() { echo "install-pi.sh: $*"; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../runtime/install_common.sh
source "$here/../../runtime/install_common.sh"
root=/
source_path="$(cd "$here/../.." && pwd)"
skip_apt=0
skip_venv=0
no_start=0
bundle=""
release=""
while (($#)); do
  case "$1" in
    --root) root="${2:?--root needs a directory}"; shift 2 ;;
    --source) source_path="${2:?--source needs a path}"; shift 2 ;;
    --release) release="${2:?--release needs a firmware release (kuaichu-VERSION.tar)}"; shift 2 ;;
    --skip-apt) skip_apt=1; shift ;;
    --skip-venv) skip_venv=1; shift ;;
    --no-start) no_start=1; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) [[ -z "$bundle" ]] || die "one bundle at a time (got $bundle and $1)"; bundle="$1"; shift ;;
  esac
done
[[ -n "$bundle" ]] || { usage >&2; die "which bundle? (DEVICE_ID.tar.gz from kuaichu provision device)"; }

SERVICE=kuaichu-device.service
USER_NAME=kuaichu
DEVICE_GROUPS=(gpio video audio dialout)   # GPIO, camera, sound, serial GNSS; those the system has
CONFIG_DIR=/etc/kuaichu
DATA_DIR=/var/lib/kuaichu
OPT=/opt/kuaichu   # device.toml's [update] releases_dir: releases/, current, update.json (docs/updates.md)
RELEASES="$here/../update/releases.py"   # the same code the updater installs and rolls back with
GUARD=/usr/local/lib/kuaichu/releases.py # its copy the service's ExecStartPre runs before every start

[[ "$(id -u)" -eq 0 ]] || die "run as root (sudo $0 ...): it installs packages, a user and a service"
[[ -d "$root" ]] || die "--root $root is not a directory"
root="$(cd "$root" && pwd -P)"
p="${root%/}"   # prefix for every path written; empty when installing into the running system
((skip_venv)) && [[ -n "$release" ]] && die "--skip-venv installs no firmware; --release installs one: pass one of them"
if [[ -n "$p" ]]; then
  ((skip_apt)) && { ((skip_venv)) || [[ -n "$release" ]]; } ||
    die "with --root $root, pass --skip-apt, and --skip-venv or --release: apt and pip from the network install into the running system, not into $root"
  no_start=1
fi

# --- checks: nothing is changed until the bundle has been read and found sound ---------------------

[[ -r "$p/etc/os-release" ]] || die "$p/etc/os-release is missing; is $root a Debian system?"
codename="$(grep -m1 '^VERSION_CODENAME=' "$p/etc/os-release" | cut -d= -f2 | tr -d "\"'")"
[[ "$codename" == bookworm ]] || die "this installer is for Raspberry Pi OS / Debian 12 (bookworm); $root is '${codename:-unknown}'"
command -v python3 >/dev/null || die "python3 is missing (apt-get install python3)"
if [[ -n "$release" ]]; then
  [[ -r "$release" ]] || die "--release $release: no such file"
  release="$(readlink -f "$release")"
  version="$(tar -tf "$release" 2>/dev/null | sed -n 's|^wheels/kuaichu-\([^-]*\)-.*\.whl$|\1|p')" || true
  [[ "$version" =~ ^[0-9]+(\.[0-9]+)+$ ]] ||
    die "--release $release is not a firmware release (no wheels/kuaichu-VERSION-*.whl in it); take release/repository/targets/firmware/kuaichu-VERSION.tar from the provisioning station"
elif ((!skip_venv)); then
  case "$(dpkg --print-architecture)" in
    armhf | armel) die "32-bit Raspberry Pi OS: the plate reader's runtime (ai-edge-litert) has no 32-bit ARM build; install Raspberry Pi OS (64-bit)" ;;
  esac
  [[ -e "$source_path" ]] || die "--source $source_path does not exist"
  source_path="$(readlink -f "$source_path")"   # pip reads a relative path or //x as a URL
  # The release's folder is named by its version, known before pip runs: a wheel says it in its
  # name, a source tree in pyproject.toml.
  version="$(python3 -c '
import sys, tomllib
from pathlib import Path
source = Path(sys.argv[1])
if source.is_file():
    print(source.name.split("-")[1])
else:
    print(tomllib.load(open(source / "pyproject.toml", "rb"))["project"]["version"])
' "$source_path" 2>/dev/null)" || true
  [[ "$version" =~ ^[0-9]+(\.[0-9]+)+$ ]] || die "--source $source_path: no version found (a kuaichu wheel, or a tree with pyproject.toml)"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
staging="$work/bundle"
mkdir -m 0700 "$staging"
device_id="$(python3 "$here/stage_bundle.py" "$bundle" "$staging")" || exit 1
say "bundle for device $device_id is sound"
# A kiosk's screen is the firmware's local page in Chromium ([screen] backend = "browser").
screen_url="$(python3 -c '
import sys, tomllib
screen = tomllib.load(open(sys.argv[1], "rb")).get("screen", {})
if screen.get("backend") == "browser":
    print("http://%s:%s/" % (screen.get("host", "127.0.0.1"), screen.get("port", 8088)))
' "$staging/device.toml")" || die "the bundle's device.toml cannot be read"

# --- Debian packages --------------------------------------------------------------------------------

on_pi=0
grep -qs "Raspberry Pi" /proc/device-tree/model && on_pi=1
if ((!skip_apt)); then
  # PyAudio and NumPy from apt rather than built by pip; the virtualenv sees them (and picamera2).
  packages=(python3-venv python3-pyaudio python3-numpy)
  if ((on_pi)); then
    packages+=(python3-picamera2 python3-lgpio)   # from the Raspberry Pi archive, with libcamera
    [[ -z "$screen_url" ]] || packages+=(chromium-browser)
  else
    say "not a Raspberry Pi: leaving out python3-picamera2 and python3-lgpio (simulated backends only)"
    [[ -z "$screen_url" ]] || packages+=(chromium)   # Debian's name for it
  fi
  apt_install "${packages[@]}"
fi

# --- the service's user -----------------------------------------------------------------------------

system_user "$USER_NAME" "$DATA_DIR" "Kuaichu device firmware"
join=()   # the device groups this system has and the user is not yet in
for group in "${DEVICE_GROUPS[@]}"; do
  awk -F: -v g="$group" -v u="$USER_NAME" '
    $1 == g { found = 1; n = split($4, members, ","); for (i = 1; i <= n; i++) if (members[i] == u) found = 2 }
    END { exit found != 1 }' "$p/etc/group" && join+=("$group")
done
if ((${#join[@]})); then
  say "adding $USER_NAME to ${join[*]}"
  usermod "${in_root[@]}" --append --groups "$(IFS=,; echo "${join[*]}")" "$USER_NAME"
fi
uid="$(awk -F: -v u="$USER_NAME" '$1 == u { print $3 }' "$p/etc/passwd")"
gid="$(awk -F: -v g="$USER_NAME" '$1 == g { print $3 }' "$p/etc/group")"
[[ -n "$uid" && -n "$gid" ]] || die "user or group $USER_NAME not found in $p/etc after creating it"

# --- the firmware: the first release of the over-the-air layout -----------------------------------
# /opt/kuaichu/releases/VERSION/venv sees apt's picamera2, lgpio, pyaudio and numpy; `current` names
# it; the updater (running as kuaichu) adds releases beside it and switches the link, so the folder
# is the service user's. A release already installed completely is not built again.

install -d -m 0755 "$p$OPT" "$p$OPT/releases"
running="$(readlink "$p$OPT/current" 2>/dev/null || true)"
running="${running#releases/}"
if [[ -n "${version:-}" && -n "$running" && "$running" != "$version" && -e "$p$OPT/releases/$running/.complete" &&
  "$(printf '%s\n%s\n' "$version" "$running" | sort -V | tail -n1)" == "$running" ]]; then
  # An update brought a newer one: a bundle installed again (a rotated certificate) must not undo it.
  say "firmware $running (newer, from an update) stays current; $version is not installed"
  version=""
  release=""
fi
if [[ -n "$release" ]]; then
  say "installing firmware $version from $release (offline, its locked wheels)"
  python3 -I "$RELEASES" build --root "$p$OPT" --archive "$release" --version "$version" \
    --python "$(readlink -f "$(command -v python3)")" >/dev/null ||
    die "firmware $version from $release could not be installed (above); nothing in $CONFIG_DIR was changed"
elif ((!skip_venv)) && [[ -n "$version" && ! -e "$p$OPT/releases/$version/.complete" ]]; then
  venv="$OPT/releases/$version/venv"
  rm -rf "${venv%/venv}"   # an earlier try that was cut off
  say "installing firmware $version into $venv"
  python3 -m venv --system-site-packages "$venv"
  # apt's picamera2 and simplejpeg are built against apt's NumPy: pin it, so that pip picks
  # dependency versions that work with it (ai-edge-litert 2 would bring NumPy 2 into the venv).
  : >"$work/constraints.txt"
  apt_numpy="$(python3 -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)"
  [[ -z "$apt_numpy" ]] || echo "numpy==$apt_numpy" >"$work/constraints.txt"
  "$venv/bin/python" -m pip install -q --constraint "$work/constraints.txt" "${source_path}[device]"
fi
if [[ -n "${version:-}" ]]; then
  # The firmware's own model reads the bundle's device.toml before it replaces the installed one.
  "$p$OPT/releases/$version/venv/bin/python" -P -c \
    'import sys; from pathlib import Path; from device.config import load_device_config; load_device_config(Path(sys.argv[1]))' \
    "$staging/device.toml" || die "the firmware refuses the bundle's device.toml (above); nothing in $CONFIG_DIR was changed"
  # Marked complete and made `current`, healthy (a technician is here); an /opt/kuaichu/venv of
  # the layout before releases/ gives way to the link venv -> current/venv.
  python3 -I "$RELEASES" adopt --root "$p$OPT" --version "$version" || die "firmware $version could not be made current (above)"
  say "firmware $version is current: $OPT/current -> releases/$version"
elif [[ ! -e "$p$OPT/current" ]]; then
  say "no firmware release in $OPT yet: the service starts once one is installed (--release, or without --skip-venv)"
fi
chown -R -h "$uid:$gid" "$p$OPT"
install -D -m 0644 "$RELEASES" "$p$GUARD"
# `kuaichu` on the PATH runs the current release the way the service does (its python, -m), which
# holds wherever the virtualenv was built, an image's mount point included.
install -d "$p/usr/local/bin"
printf '#!/bin/sh\n# The current firmware release (install-pi.sh).\nexec %s -P -m kuaichu.cli "$@"\n' \
  "$OPT/current/venv/bin/python" >"$work/kuaichu"
install -m 0755 "$work/kuaichu" "$p/usr/local/bin/.kuaichu.new"
mv -f "$p/usr/local/bin/.kuaichu.new" "$p/usr/local/bin/kuaichu"   # over the old layout's link too

# --- the bundle: /etc/kuaichu, readable by the service's group and nobody else ----------------------

install -d -m 0750 -o 0 -g "$gid" "$p$CONFIG_DIR"
chown 0:"$gid" "$p$CONFIG_DIR" && chmod 0750 "$p$CONFIG_DIR"   # an existing folder too
if [[ -f "$p$CONFIG_DIR/device.toml" ]] && ! cmp -s "$p$CONFIG_DIR/device.toml" "$staging/device.toml"; then
  # Whatever was adjusted on the unit is kept beside the new file, not lost.
  install -m 0640 -o 0 -g "$gid" "$p$CONFIG_DIR/device.toml" "$p$CONFIG_DIR/device.toml.previous"
  say "the installed device.toml differed from the bundle's; kept as $CONFIG_DIR/device.toml.previous"
fi
for file in "$staging"/*; do
  name="$(basename "$file")"
  # Each file appears whole under its name (rename), so a service starting meanwhile reads old or new.
  install -m 0640 -o 0 -g "$gid" "$file" "$p$CONFIG_DIR/.$name.new"
  mv -f "$p$CONFIG_DIR/.$name.new" "$p$CONFIG_DIR/$name"
done
install -d -m 0750 -o "$uid" -g "$gid" "$p$DATA_DIR"
chown "$uid:$gid" "$p$DATA_DIR" && chmod 0750 "$p$DATA_DIR"
if [[ -z "$p" ]]; then
  for file in "$p$CONFIG_DIR"/*; do
    runuser -u "$USER_NAME" -- test -r "$file" || die "$USER_NAME cannot read $file"
  done
fi
say "bundle installed in $CONFIG_DIR (owner root:$USER_NAME, mode 0640), data in $DATA_DIR"

# --- a kiosk's screen: Chromium, full screen, on the firmware's page, whenever the desktop starts --

LAUNCHER=/usr/local/bin/kuaichu-screen
AUTOSTART=/etc/xdg/autostart/kuaichu-screen.desktop   # Raspberry Pi OS runs these under labwc, wayfire and X
if [[ -n "$screen_url" ]]; then
  install -d -m 0755 "$p/usr/local/bin" "$p/etc/xdg/autostart"
  cat >"$work/kuaichu-screen" <<LAUNCHER_EOF
#!/bin/sh
# The kiosk's screen: $screen_url (the firmware's page) in Chromium, full screen, brought back if
# it closes. Written by install-pi.sh from the bundle's [screen]; started by $AUTOSTART.
browser=chromium-browser
command -v \$browser >/dev/null || browser=chromium
while :; do
  \$browser --kiosk --noerrdialogs --disable-infobars --incognito --no-first-run \\
    --disable-session-crashed-bubble --check-for-update-interval=31536000 "$screen_url"
  sleep 3
done
LAUNCHER_EOF
  install -m 0755 "$work/kuaichu-screen" "$p$LAUNCHER"
  cat >"$work/kuaichu-screen.desktop" <<DESKTOP_EOF
[Desktop Entry]
Type=Application
Name=Kuaichu kiosk screen
Comment=The report kiosk's screen, full screen
Exec=$LAUNCHER
DESKTOP_EOF
  install -m 0644 "$work/kuaichu-screen.desktop" "$p$AUTOSTART"
  say "kiosk screen: Chromium shows $screen_url full screen when the desktop starts ($AUTOSTART)"
  if [[ -z "$p" ]] && ((on_pi)) && command -v raspi-config >/dev/null; then
    raspi-config nonint do_boot_behaviour B4   # the desktop, logged in, at boot: the screen comes up by itself
    say "kiosk screen: the desktop now starts logged in at boot (raspi-config: Desktop Autologin)"
  fi
else
  rm -f "$p$LAUNCHER" "$p$AUTOSTART"   # a unit that was a kiosk before
fi

# --- the service ------------------------------------------------------------------------------------

install -d -m 0755 "$p/etc/systemd/system"
install -m 0644 "$here/$SERVICE" "$p/etc/systemd/system/$SERVICE"
if [[ -n "$p" ]]; then
  systemctl --root "$root" enable "$SERVICE"
elif [[ ! -d /run/systemd/system ]] || systemd-detect-virt --chroot --quiet 2>/dev/null; then
  systemctl --root / enable "$SERVICE"   # the symlinks only: there is no systemd here to ask
  no_start=1
  say "systemd is not running here (a chroot?): $SERVICE enabled, it starts when the system boots"
else
  systemctl daemon-reload
  systemctl enable "$SERVICE"
fi
if ((!no_start)); then
  say "restarting $SERVICE (it is ready once the firmware is: up to two minutes)"
  systemctl restart "$SERVICE" ||
    die "$SERVICE did not start; see: journalctl -u $SERVICE -b --no-pager | tail -50"
fi

cat <<EOF

Kuaichu device $device_id installed.
  config and certificate   $CONFIG_DIR/   (root:$USER_NAME, 0640)
  outbox                   $DATA_DIR/
  firmware                 $OPT/current -> $(readlink "$p$OPT/current" 2>/dev/null || echo "(none yet)")  (kuaichu on the PATH)
  boot guard               $GUARD  (before each start: a trial release that never proved healthy is switched back)
  service                  $SERVICE, enabled$( ((no_start)) && echo ", not started" || echo " and running")

Next:
  systemctl status $SERVICE          the status line says whether it reaches the broker
  journalctl -u $SERVICE -f          its log
  then the self-test, with the service stopped (it needs the button, camera and GNSS to itself):
    sudo systemctl stop $SERVICE
    sudo -u $USER_NAME sh -c 'cd $DATA_DIR && kuaichu device selftest --config $CONFIG_DIR/device.toml'
    sudo systemctl start $SERVICE
EOF
