#!/usr/bin/env bash
# Installs the Kuaichu central server on Debian 12 (bookworm), the counterpart of the units'
# device/install/install-pi.sh. Run it as root from the source tree:
#
#   sudo server/install/install-server.sh --pki /srv/kuaichu-pki --public-url https://kuaichu.example.cn \
#        --tls-cert console.crt --tls-key console.key
#
# Safe to run again (after an upgrade of the source tree, say): every step leaves things as they
# should be, and a worker's configuration, once written, keeps every setting in it: a run only adds
# to the first console's what a newer installer writes there and it lacks ([backup], [metrics]).
# The steps and what to do afterwards: docs/operations.md.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: install-server.sh [options] --pki DIR --public-url https://NAME

Installs Debian packages (PostgreSQL, Mosquitto, fonts), a system user `kuaichu`, the server into
the virtualenv /opt/kuaichu/venv, a PostgreSQL role and database `kuaichu` with the schema, the
broker's configuration from the provisioning station's files, one configuration per worker in
/etc/kuaichu/server/ and the systemd units kuaichu-server@WORKER.service, then (re)starts them.
Workers by kind: intake-N take the units' reports, console-N serve the console and the parties'
pages, media holds the live calls (one per deployment); nginx sends each request to its kind.

required:
  --pki DIR           the provisioning station's folder (kuaichu provision init --dir DIR), or a copy
                      of its broker/ and server/ folders: the broker's certificate, key, CRL and ACL,
                      and the workers' client certificate
  --public-url URL    the address dispatchers and parties open, https://NAME[:PORT]

options:
  --tls-cert FILE     the console's certificate (PEM, then its intermediates) and
  --tls-key FILE      its key: one worker, main, serves the console and the calls over HTTPS itself
                      on 443 and redirects 80. Without them the console workers (127.0.0.1:8080..)
                      and the media worker (127.0.0.1:8090) wait for nginx, which ends TLS and
                      routes between them (server/install/nginx-kuaichu.conf)
  --intake-workers N  workers that take the units' reports, 1 to 9 (default 1): kuaichu-server@intake-1..N
  --console-workers N workers that serve the console, 1 to 9 (default 1), behind nginx only:
                      kuaichu-server@console-1..N
  --backup-dir DIR    where the nightly backup (kuaichu-server-backup.timer, 02:30 Beijing time) puts a
                      dated folder each night (default /var/backups/kuaichu-server; best another disk)
  --backup-keep N     how many nightly backups are kept (default 14)
  --nginx-cert FILE   behind nginx: the certificate nginx serves (its ssl_certificate, an ACME client's
                      fullchain.pem say), whose expiry the first console exports for the alert
  --root DIR          install into DIR instead of / (an image being built, a test). With a DIR
                      other than /, pass --skip-apt, --skip-venv and --skip-db: they act on the
                      running system. The units are enabled in DIR, not started.
  --source PATH       what to pip-install: a source tree or a wheel (default: the tree holding this script)
  --skip-apt          install no Debian packages
  --skip-venv         neither create the virtualenv nor pip-install into it
  --skip-db           neither create the database nor run the migrations
  --no-start          enable the units but do not (re)start them
  -h, --help          this text
EOF
}

die() {
  echo "install-server.sh: $*" >&2
  exit 1
}
say() { echo "install-server.sh: $*"; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../runtime/install_common.sh
source "$here/../../runtime/install_common.sh"
root=/
source_path="$(cd "$here/../.." && pwd)"
pki=""
public_url=""
tls_cert=""
tls_key=""
nginx_cert=""
intake_workers=1
console_workers=""
backup_dir=/var/backups/kuaichu-server
backup_keep=14
skip_apt=0
skip_venv=0
skip_db=0
no_start=0
while (($#)); do
  case "$1" in
    --pki) pki="${2:?--pki needs a directory}"; shift 2 ;;
    --public-url) public_url="${2:?--public-url needs an address}"; shift 2 ;;
    --tls-cert) tls_cert="${2:?--tls-cert needs a file}"; shift 2 ;;
    --tls-key) tls_key="${2:?--tls-key needs a file}"; shift 2 ;;
    --nginx-cert) nginx_cert="${2:?--nginx-cert needs a file}"; shift 2 ;;
    --intake-workers) intake_workers="${2:?--intake-workers needs a number}"; shift 2 ;;
    --console-workers) console_workers="${2:?--console-workers needs a number}"; shift 2 ;;
    --backup-dir) backup_dir="${2:?--backup-dir needs a directory}"; shift 2 ;;
    --backup-keep) backup_keep="${2:?--backup-keep needs a number}"; shift 2 ;;
    --root) root="${2:?--root needs a directory}"; shift 2 ;;
    --source) source_path="${2:?--source needs a path}"; shift 2 ;;
    --skip-apt) skip_apt=1; shift ;;
    --skip-venv) skip_venv=1; shift ;;
    --skip-db) skip_db=1; shift ;;
    --no-start) no_start=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done

USER_NAME=kuaichu
CONFIG_DIR=/etc/kuaichu
WORKERS_DIR=$CONFIG_DIR/server
DATA_DIR=/var/lib/kuaichu-server
VENV=/opt/kuaichu/venv
UNIT=kuaichu-server@.service
BROKER_DIR=/etc/mosquitto/kuaichu
BROKER_CONF=/etc/mosquitto/conf.d/kuaichu.conf
BROKER_FILES=(acl ca.crt workers-ca.crt server.crt server.key crl.pem)
CLIENT_FILES=(ca.crt client.crt client.key)
DATABASE_URL="postgresql+asyncpg://kuaichu@/kuaichu?host=/run/postgresql"

# --- checks: nothing is changed until every input has been read and found sound -------------------

[[ -n "$pki" ]] || { usage >&2; die "which provisioning folder? (--pki DIR, made by kuaichu provision init)"; }
[[ "$public_url" =~ ^https://[A-Za-z0-9.-]+(:[0-9]+)?$ ]] ||
  die "--public-url must be https://NAME or https://NAME:PORT (got '${public_url}'): phones open the camera only over HTTPS"
[[ "$intake_workers" =~ ^[1-9]$ ]] || die "--intake-workers is a number from 1 to 9 (got '$intake_workers')"
if [[ -n "$tls_cert" || -n "$tls_key" ]]; then
  [[ -n "$tls_cert" && -n "$tls_key" ]] || die "give both --tls-cert and --tls-key, or neither (nginx ends TLS)"
  # One worker on 443 is the only way in: without a proxy, nothing could send a request to another.
  [[ -z "$console_workers" ]] ||
    die "--console-workers needs nginx in front (leave out --tls-cert/--tls-key): the worker serving HTTPS itself is the only console"
  [[ -z "$nginx_cert" ]] ||
    die "--nginx-cert is for an install behind nginx: with --tls-cert the worker's own certificate is watched already"
else
  console_workers="${console_workers:-1}"
  [[ "$console_workers" =~ ^[1-9]$ ]] || die "--console-workers is a number from 1 to 9 (got '$console_workers')"
fi
[[ "$backup_dir" =~ ^/[A-Za-z0-9._/-]+$ && ! "$backup_dir" =~ (^|/)\.\.?(/|$) ]] ||
  die "--backup-dir must be an absolute path of letters, digits and . _ - / (got '$backup_dir')"
[[ -z "$nginx_cert" || ("$nginx_cert" =~ ^/[A-Za-z0-9._/-]+$ && ! "$nginx_cert" =~ (^|/)\.\.?(/|$)) ]] ||
  die "--nginx-cert must be an absolute path of letters, digits and . _ - / (got '$nginx_cert'), as nginx's ssl_certificate names it"
[[ "$backup_keep" =~ ^[1-9][0-9]{0,2}$ && "$backup_keep" -le 366 ]] ||
  die "--backup-keep is a number from 1 to 366 (got '$backup_keep')"
[[ "$(id -u)" -eq 0 ]] || die "run as root (sudo $0 ...): it installs packages, a user, a database and services"
[[ -d "$root" ]] || die "--root $root is not a directory"
root="$(cd "$root" && pwd -P)"
p="${root%/}"   # prefix for every path written; empty when installing into the running system
if [[ -n "$p" ]]; then
  ((skip_apt && skip_venv && skip_db)) ||
    die "with --root $root, pass --skip-apt, --skip-venv and --skip-db: they install into the running system, not into $root"
  no_start=1
fi

[[ -r "$p/etc/os-release" ]] || die "$p/etc/os-release is missing; is $root a Debian system?"
# The workers by kind (docs/operations.md): where the worker serves HTTPS itself, main runs the
# console and the calls on 443; behind nginx, console-N and media each have a loopback port.
if [[ -n "$tls_cert" ]]; then
  workers=(main)
  other_layout=(media.toml console-1.toml)
else
  workers=(media)
  for ((n = 1; n <= console_workers; n++)); do workers+=("console-$n"); done
  other_layout=(main.toml)
fi
for ((n = 1; n <= intake_workers; n++)); do workers+=("intake-$n"); done
for name in "${other_layout[@]}"; do
  [[ ! -e "$p$WORKERS_DIR/$name" ]] ||
    die "$WORKERS_DIR/$name is from an install $( [[ -n "$tls_cert" ]] && echo "behind nginx" || echo "where a worker served HTTPS itself"): give --tls-cert/--tls-key as then, or move the files in $WORKERS_DIR aside first"
done
codename="$(grep -m1 '^VERSION_CODENAME=' "$p/etc/os-release" | cut -d= -f2 | tr -d "\"'")"
[[ "$codename" == bookworm ]] || die "this installer is for Debian 12 (bookworm); $root is '${codename:-unknown}'"
command -v openssl >/dev/null || die "openssl is missing (apt-get install openssl)"

[[ -d "$pki" ]] || die "--pki $pki is not a directory"
for name in "${BROKER_FILES[@]}" mosquitto.conf; do
  [[ -f "$pki/broker/$name" ]] || die "--pki $pki: broker/$name is missing; give the folder kuaichu provision init made"
done
for name in "${CLIENT_FILES[@]}"; do
  [[ -f "$pki/server/$name" ]] || die "--pki $pki: server/$name is missing; give the folder kuaichu provision init made"
done
# Two listeners (provisioning/broker.py): the devices' first, then the server workers' own, which the
# workers' configurations name.
devices_port="$(awk '$1 == "listener" { print $2; exit }' "$pki/broker/mosquitto.conf")"
broker_port="$(awk '$1 == "listener" && ++n == 2 { print $2; exit }' "$pki/broker/mosquitto.conf")"
[[ "$devices_port" =~ ^[0-9]+$ ]] || die "--pki $pki: broker/mosquitto.conf has no listener port"
[[ "$broker_port" =~ ^[0-9]+$ ]] ||
  die "--pki $pki: broker/mosquitto.conf has no server workers' listener; make the fleet again with this version's kuaichu provision init"

matches() {   # certificate, key, what to call them in a refusal
  local from_cert from_key
  from_cert="$(openssl x509 -in "$1" -noout -pubkey 2>/dev/null)" || die "$3: $1 is not a PEM certificate"
  from_key="$(openssl pkey -in "$2" -pubout -passin pass: 2>/dev/null)" ||
    die "$3: $2 is not a PEM private key (or it is encrypted)"
  [[ "$from_cert" == "$from_key" ]] || die "$3: $2 does not belong to $1"
}
matches "$pki/broker/server.crt" "$pki/broker/server.key" "--pki broker/"
matches "$pki/server/client.crt" "$pki/server/client.key" "--pki server/"
if [[ -n "$tls_cert" ]]; then
  [[ -r "$tls_cert" && -r "$tls_key" ]] || die "cannot read --tls-cert $tls_cert or --tls-key $tls_key"
  matches "$tls_cert" "$tls_key" "--tls-cert/--tls-key"
fi
if [[ -n "$nginx_cert" ]]; then   # where the workers will read it: in the image, with --root
  openssl x509 -in "$p$nginx_cert" -noout 2>/dev/null ||
    die "--nginx-cert $nginx_cert is not a PEM certificate$([[ -n "$p" ]] && echo " in $root"); give the file nginx's ssl_certificate names"
fi
if ((!skip_venv)); then
  [[ -e "$source_path" ]] || die "--source $source_path does not exist"
  source_path="$(readlink -f "$source_path")"   # pip reads a relative path or //x as a URL
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --- Debian packages --------------------------------------------------------------------------------

if ((!skip_apt)); then
  # The database and the broker live on this machine; Noto CJK is the determination's font.
  apt_install python3-venv postgresql mosquitto fonts-noto-cjk openssl
fi

# --- the workers' user ------------------------------------------------------------------------------

system_user "$USER_NAME" "$DATA_DIR" "Kuaichu server workers"
uid="$(awk -F: -v u="$USER_NAME" '$1 == u { print $3 }' "$p/etc/passwd")"
gid="$(awk -F: -v g="$USER_NAME" '$1 == g { print $3 }' "$p/etc/group")"
broker_gid="$(awk -F: '$1 == "mosquitto" { print $3 }' "$p/etc/group")"
[[ -n "$uid" && -n "$gid" ]] || die "user or group $USER_NAME not found in $p/etc after creating it"
[[ -n "$broker_gid" ]] || die "no group mosquitto in $p/etc/group: install Debian's mosquitto package first"

# --- the server: a virtualenv of its own ------------------------------------------------------------

if ((!skip_venv)); then
  [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
  # --upgrade reinstalls kuaichu itself; its dependencies change only where they must.
  "$VENV/bin/python" -m pip install -q --upgrade "${source_path}[server]"
fi
install -d "$p/usr/local/bin"
ln -sfn "$VENV/bin/kuaichu" "$p/usr/local/bin/kuaichu"

# --- the broker: the station's certificate, key, CRL and ACL, readable by mosquitto only -----------

put() {   # mode owner:group source target: appears whole under its name, so a reader sees old or new
  install -m "$1" -o "${2%:*}" -g "${2#*:}" "$3" "$(dirname "$4")/.$(basename "$4").new"
  mv -f "$(dirname "$4")/.$(basename "$4").new" "$4"
}
folder() {   # mode owner:group path, an existing folder too
  install -d -m "$1" -o "${2%:*}" -g "${2#*:}" "$3"
  chown "$2" "$3" && chmod "$1" "$3"
}
folder 0750 "0:$broker_gid" "$p$BROKER_DIR"
for name in "${BROKER_FILES[@]}"; do
  put 0640 "0:$broker_gid" "$pki/broker/$name" "$p$BROKER_DIR/$name"
done
# The station's mosquitto.conf, its files where they now are; Debian's mosquitto.conf includes conf.d/.
awk -v dir="$BROKER_DIR" '
  $1 ~ /^(acl_file|cafile|certfile|keyfile|crlfile)$/ { n = split($2, parts, "/"); print $1, dir "/" parts[n]; next }
  $1 == "log_dest" { next }   # Debian logs to its own file; the station wrote stderr for a foreground broker
  { print }' "$pki/broker/mosquitto.conf" >"$work/kuaichu.conf"
folder 0755 0:0 "$p$(dirname "$BROKER_CONF")"
put 0644 0:0 "$work/kuaichu.conf" "$p$BROKER_CONF"
say "broker: TLS listeners on port $devices_port (devices) and $broker_port (server workers), files in $BROKER_DIR (root:mosquitto, 0640)"

# --- the workers' configuration: /etc/kuaichu, readable by the kuaichu group and nobody else --------

folder 0750 "0:$gid" "$p$CONFIG_DIR"
folder 0750 "0:$gid" "$p$CONFIG_DIR/pki"
for name in "${CLIENT_FILES[@]}"; do
  put 0640 "0:$gid" "$pki/server/$name" "$p$CONFIG_DIR/pki/$name"
done
if [[ -n "$tls_cert" ]]; then
  folder 0750 "0:$gid" "$p$CONFIG_DIR/tls"
  put 0640 "0:$gid" "$tls_cert" "$p$CONFIG_DIR/tls/console.crt"
  put 0640 "0:$gid" "$tls_key" "$p$CONFIG_DIR/tls/console.key"
fi
folder 0750 "0:$gid" "$p$WORKERS_DIR"
folder 0750 "$uid:$gid" "$p$DATA_DIR"

worker_config() {   # NAME RUNS HTTP_TABLE
  cat <<TOML
# 快处中心服务器 worker "$1"，由 install-server.sh 写入；修改后 systemctl restart kuaichu-server@$1。
# Kuaichu server worker "$1", written by install-server.sh, which keeps your edits when run again: edit
# it, then systemctl restart kuaichu-server@$1. Every key: server/config.py; the guide: docs/operations.md.

[server]
data_dir = "$DATA_DIR"
worker_id = "$1"
# What this worker runs: intake (the units' reports), console (the console, the parties' pages,
# the APIs), media (the live calls: exactly one worker of the deployment runs it).
runs = $2

[database]
# PostgreSQL on this machine, as the system user kuaichu (peer authentication: no password).
url = "$DATABASE_URL"
# install-server.sh runs the migrations (kuaichu server migrate); workers do not race to.
migrate = false

[broker]
host = "127.0.0.1"
port = $broker_port

[broker.tls]
ca_file = "$CONFIG_DIR/pki/ca.crt"
cert_file = "$CONFIG_DIR/pki/client.crt"
key_file = "$CONFIG_DIR/pki/client.key"

[http]
$3
TOML
}
backup_config() {   # in the configuration /etc/kuaichu/server.toml names, which the nightly backup reads
  cat <<TOML

[backup]
# kuaichu-server-backup.timer: each night a dated folder here, the last $backup_keep kept. Moving it
# elsewhere: change dir, then run install-server.sh again with --backup-dir (the unit may write there).
dir = "$backup_dir"
keep = $backup_keep
TOML
}
metrics_config() {
  cat <<TOML

[metrics]
# The certificate nginx serves (install-server.sh --nginx-cert): its expiry is exported, read at each
# scrape, so that the alert warns before it runs out. More files: name = "path".
watch_cert_files = { nginx = "$nginx_cert" }
TOML
}
first_console_sections() {   # FILE: what the first console carries for the rest of the install, where it lacks it
  # An install from before the nightly backup has no [backup]: the backup would refuse to run.
  grep -Eq '^[[:space:]]*\[backup\]' "$1" || backup_config >>"$1"
  [[ -n "$nginx_cert" ]] || return 0
  if grep -Eq '^[[:space:]]*(\[metrics\.)?watch_cert_files' "$1"; then
    grep -Fq "\"$nginx_cert\"" "$1" ||
      say "keeping watch_cert_files in $WORKERS_DIR/$(basename "$1") as it is (it does not name $nginx_cert)"
  elif grep -Eq '^[[:space:]]*\[metrics\][[:space:]]*(#.*)?$' "$1"; then
    awk -v line="watch_cert_files = { nginx = \"$nginx_cert\" }" \
      '{ print } /^[ \t]*\[metrics\][ \t]*(#.*)?$/ { print line }' "$1" >"$1.new"
    mv "$1.new" "$1"
  else
    metrics_config >>"$1"
  fi
}
# `kuaichu server ...` and the nightly backup read the configuration /etc/kuaichu/server.toml names.
first_console="$( [[ -n "$tls_cert" ]] && echo main || echo console-1)"
loopback_http() {   # PORT WHY
  printf '# %s\nhost = "127.0.0.1"\nport = %d\npublic_url = "%s"\n' "$2" "$1" "$public_url"
}
for worker in "${workers[@]}"; do
  target="$p$WORKERS_DIR/$worker.toml"
  if [[ -f "$target" ]]; then
    cp "$target" "$work/$worker.toml"
  else
    case "$worker" in
      main)
        http="$(printf 'host = "0.0.0.0"\nport = 443\nredirect_port = 80\ntls_cert_file = "%s"\ntls_key_file = "%s"\npublic_url = "%s"\n' \
          "$CONFIG_DIR/tls/console.crt" "$CONFIG_DIR/tls/console.key" "$public_url")"
        worker_config main '["console", "media"]' "$http" ;;
      media)
        worker_config media '["media"]' "$(loopback_http 8090 "nginx sends the calls' paths here (server/install/nginx-kuaichu.conf).")" ;;
      console-*)
        worker_config "$worker" '["console"]' \
          "$(loopback_http "$((8079 + ${worker#console-}))" "Behind nginx (server/install/nginx-kuaichu.conf), which ends TLS for $public_url.")" ;;
      intake-*)
        # Its HTTP port answers only /healthz, /readyz and /metrics.
        worker_config "$worker" '["intake"]' "$(loopback_http "$((8090 + ${worker#intake-}))" "Health and metrics only.")" ;;
    esac >"$work/$worker.toml"
  fi
  [[ "$worker" != "$first_console" ]] || first_console_sections "$work/$worker.toml"
  if [[ ! -f "$target" ]]; then
    put 0640 "0:$gid" "$work/$worker.toml" "$target"
    say "wrote $WORKERS_DIR/$worker.toml"
  elif cmp -s "$work/$worker.toml" "$target"; then
    say "keeping $WORKERS_DIR/$worker.toml as it is"
  else
    put 0640 "0:$gid" "$work/$worker.toml" "$target"
    say "added to $WORKERS_DIR/$worker.toml what this installer writes there and it lacked; every setting in it kept"
  fi
done
# `kuaichu server ...` reads /etc/kuaichu/server.toml unless told otherwise: a console's.
ln -sfn "server/$first_console.toml" "$p$CONFIG_DIR/server.toml"

# --- the database: role and database kuaichu, then the schema ---------------------------------------

if ((!skip_db)); then
  "$here/setup-database.sh" kuaichu kuaichu
  say "bringing the database schema up to date"
  (cd / && runuser -u "$USER_NAME" -- "$VENV/bin/kuaichu" server migrate --config "$WORKERS_DIR/$first_console.toml") ||
    die "the migrations failed (above); the workers were not (re)started"
fi

# --- the units --------------------------------------------------------------------------------------

folder 0755 0:0 "$p/etc/systemd/system"
put 0644 0:0 "$here/$UNIT" "$p/etc/systemd/system/$UNIT"
instances=()
for worker in "${workers[@]}"; do instances+=("kuaichu-server@$worker.service"); done
if [[ -n "$p" ]]; then
  systemctl --root "$root" enable "${instances[@]}"
elif [[ ! -d /run/systemd/system ]] || systemd-detect-virt --chroot --quiet 2>/dev/null; then
  systemctl --root / enable "${instances[@]}"
  no_start=1
  say "systemd is not running here (a chroot?): the workers are enabled and start when the system boots"
else
  systemctl daemon-reload
  systemctl enable mosquitto.service postgresql.service "${instances[@]}"
fi
if ((!no_start)); then
  systemctl restart mosquitto.service || die "mosquitto did not start; see: journalctl -u mosquitto -b --no-pager | tail -50"
  for instance in "${instances[@]}"; do
    systemctl restart "$instance" || die "$instance did not start; see: journalctl -u $instance -b --no-pager | tail -50"
  done
fi

# --- the nightly backup: kuaichu-server-backup.timer ------------------------------------------------

folder 0750 "$uid:$gid" "$p$backup_dir"
for unit in kuaichu-server-backup.service kuaichu-server-backup.timer; do
  put 0644 0:0 "$here/$unit" "$p/etc/systemd/system/$unit"
done
dropin="$p/etc/systemd/system/kuaichu-server-backup.service.d"
if [[ "$backup_dir" != /var/backups/kuaichu-server ]]; then
  folder 0755 0:0 "$dropin"
  printf '# Written by install-server.sh --backup-dir: the backup may write there.\n[Service]\nReadWritePaths=%s\n' \
    "$backup_dir" >"$work/backup-dir.conf"
  put 0644 0:0 "$work/backup-dir.conf" "$dropin/backup-dir.conf"
elif [[ -d "$dropin" ]]; then
  rm -f "$dropin/backup-dir.conf"
  rmdir "$dropin" 2>/dev/null || true
fi
if [[ -n "$p" ]] || [[ ! -d /run/systemd/system ]] || systemd-detect-virt --chroot --quiet 2>/dev/null; then
  systemctl --root "$root" enable kuaichu-server-backup.timer
else
  systemctl daemon-reload
  systemctl enable kuaichu-server-backup.timer
  ((no_start)) || systemctl restart kuaichu-server-backup.timer
fi
say "nightly backup at 02:30 into $backup_dir, the last $backup_keep kept (kuaichu-server-backup.timer)"

# --- alerts: the rules and a scrape job for Debian's Prometheus, when it runs on this machine ---------

scrape_config() {   # every worker's port as its configuration says, an edited one too
  local worker toml port plain=() name="${public_url#https://}"
  name="${name%%:*}"
  cat <<YAML
# 快处服务器的 Prometheus 配置片段，由 install-server.sh 写入（docs/operations.md“监控与告警”）：
# 把 rule_files 和 scrape_configs 两段并入 /etc/prometheus/prometheus.yml，再 systemctl reload prometheus。
# Kuaichu's alerting rules and its workers' /metrics for Prometheus on this machine: merge both
# sections into prometheus.yml, then reload Prometheus.
rule_files:
  - /etc/prometheus/rules/kuaichu.yml

scrape_configs:
YAML
  for worker in "${workers[@]}"; do
    toml="$p$WORKERS_DIR/$worker.toml"
    port="$(awk '/^\[/ { http = ($0 == "[http]") } http && $1 == "port" { print $3; exit }' "$toml")"
    if grep -q '^tls_cert_file' "$toml"; then
      cat <<YAML
  # $worker serves HTTPS itself, with the certificate for $name (of your own CA? add ca_file
  # under tls_config); relabelled so that the rules see one job.
  - job_name: kuaichu-$worker
    scheme: https
    tls_config:
      server_name: $name
    static_configs:
      - targets: ["127.0.0.1:$port"]
    relabel_configs:
      - target_label: job
        replacement: kuaichu
YAML
    else
      plain+=("\"127.0.0.1:$port\"")
    fi
  done
  if ((${#plain[@]})); then
    printf '  - job_name: kuaichu\n    static_configs:\n      - targets: [%s]\n' "$(IFS=,; echo "${plain[*]}" | sed 's/,/, /g')"
  fi
}
if [[ -d "$p/etc/prometheus" ]]; then
  folder 0755 0:0 "$p/etc/prometheus/rules"
  put 0644 0:0 "$here/alerts.yml" "$p/etc/prometheus/rules/kuaichu.yml"
  scrape_config >"$work/kuaichu-scrape.yml"
  put 0644 0:0 "$work/kuaichu-scrape.yml" "$p/etc/prometheus/kuaichu-scrape.yml"
  say "alerts: /etc/prometheus/rules/kuaichu.yml; merge /etc/prometheus/kuaichu-scrape.yml into prometheus.yml"
else
  say "Prometheus is not on this machine: copy server/install/alerts.yml to it and scrape the workers (docs/operations.md)"
fi

cat <<EOF

Kuaichu server installed, for $public_url.
  workers            ${instances[*]}, enabled$( ((no_start)) && echo ", not started" || echo " and running")
  configuration      $WORKERS_DIR/   (root:$USER_NAME, 0640; $CONFIG_DIR/server.toml is $first_console.toml)
  data               $DATA_DIR/      (evidence, documents, keys)
  database           PostgreSQL database kuaichu, role kuaichu (local socket, no password)
  broker             Mosquitto, port $broker_port, $BROKER_CONF
  backups            $backup_dir/, nightly at 02:30, the last $backup_keep kept (kuaichu-server-backup.timer)
  console            $( [[ -n "$tls_cert" ]] && echo "HTTPS on 443 by the main worker, 80 redirects" || echo "consoles from http://127.0.0.1:8080, calls on :8090, for nginx (server/install/nginx-kuaichu.conf)")

Next (docs/operations.md):
  sudo -u $USER_NAME kuaichu server add-user admin --role admin          the first administrator
  journalctl -u 'kuaichu-server@*' -f                                    the workers' log
EOF
