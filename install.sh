#!/usr/bin/env bash
# Installs everything Kuaichu needs on Debian 12 / Raspberry Pi OS Bookworm and runs the demo.
#   ./install.sh            install, then run `kuaichu demo` (Ctrl-C stops it)
#   ./install.sh --no-demo  install only (what ./test.sh and CI use)
# Safe to run again: every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")"

run_demo=1
[[ "${1:-}" == "--no-demo" ]] && run_demo=0

sudo=""
[[ "$(id -u)" -eq 0 ]] || sudo="sudo"

packages=(
  python3 python3-venv python3-dev build-essential pkg-config
  mosquitto            # the MQTT broker (the demo and the tests start their own instances)
  portaudio19-dev      # PyAudio, the device's audio backend
  fonts-noto-cjk       # Chinese text: simulated camera plates, console, documents
  chromium             # headless browser for the console tests
  libnss3-tools        # certutil: the HTTPS tests make Chromium trust their own CA
  postgresql           # server binaries for the PostgreSQL tests (a throwaway cluster per run)
  systemd              # systemd-analyze, to verify the device's units
  coturn               # TURN server for the relay-only call tests (the tests start their own)
  libzbar0             # zbar, which the kiosk screen tests read QR codes back with (pyzbar)
  nginx                # the shipped HTTPS site (server/install/nginx-kuaichu.conf), run by its test
  prometheus           # promtool, which tests the shipped alerting rules (server/install/alerts.yml)
)
on_pi=0
if grep -qs "Raspberry Pi" /proc/device-tree/model; then
  on_pi=1
  packages+=(python3-picamera2 python3-lgpio)  # picamera2 and libcamera come from apt on a Pi
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install.sh: installing ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
  if [[ " ${missing[*]} " == *" coturn "* && -d /run/systemd/system ]]; then
    # Debian enables an open system-wide TURN server with the package; only the binary is wanted.
    $sudo systemctl disable --now coturn.service || true
  fi
  if [[ " ${missing[*]} " == *" prometheus "* && -d /run/systemd/system ]]; then
    # Debian starts a Prometheus server with the package; only promtool is wanted.
    $sudo systemctl disable --now prometheus.service || true
  fi
  if [[ " ${missing[*]} " == *" nginx "* && -d /run/systemd/system ]]; then
    # Debian starts a default site on port 80 with the package; the test runs its own nginx.
    $sudo systemctl disable --now nginx.service || true
  fi
fi

if [[ ! -x .venv/bin/python ]]; then
  if ((on_pi)); then
    python3 -m venv --system-site-packages .venv   # sees apt's picamera2
  else
    python3 -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip
extras="device,server,test,provisioning"
.venv/bin/python -m pip install -q -e ".[${extras}]"

if ((run_demo)); then
  exec .venv/bin/kuaichu demo
fi
