#!/usr/bin/env bash
# Creates the PostgreSQL role and database the Kuaichu server workers use, where they are missing:
# a role that logs in without a password (the workers connect over the local socket as the system
# user of the same name: Debian's peer authentication) and a database it owns, so that the
# migrations it runs own every table. Run as root; install-server.sh calls it. Safe to run again.
#
#   server/install/setup-database.sh [ROLE [DATABASE]]      (default: kuaichu kuaichu)
#
# It talks to PostgreSQL as the `postgres` system user; libpq's PGHOST, PGPORT and PGUSER, when set,
# point it at another cluster.
set -euo pipefail

role="${1:-kuaichu}"
database="${2:-$role}"
die() {
  echo "setup-database.sh: $*" >&2
  exit 1
}
for name in "$role" "$database"; do
  [[ "$name" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "not a plain PostgreSQL name: '$name' (lowercase letters, digits, _)"
done
[[ "$(id -u)" -eq 0 ]] || die "run as root: it runs psql as the postgres system user"

admin() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }
admin -c "SELECT 1" >/dev/null ||
  die "PostgreSQL does not answer: is it running? (systemctl status postgresql; pg_lsclusters)"

if [[ "$(admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$role'")" != 1 ]]; then
  echo "setup-database.sh: creating role $role"
  admin -c "CREATE ROLE \"$role\" LOGIN"
fi
if [[ "$(admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$database'")" != 1 ]]; then
  echo "setup-database.sh: creating database $database owned by $role"
  admin -c "CREATE DATABASE \"$database\" OWNER \"$role\" ENCODING 'UTF8' TEMPLATE template0"
fi
owner="$(admin -tAc "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '$database'")"
[[ "$owner" == "$role" ]] || die "database $database belongs to $owner, not $role: give it to $role (ALTER DATABASE $database OWNER TO $role) or choose another name"
