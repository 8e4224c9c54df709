#!/bin/sh
# Init container of a MySQL replica: seeds an empty data directory from the primary with the CLONE
# plugin, then points it at the primary. Replaying the primary's binary logs from its first GTID
# stops working once they expire (binlog_expire_logs_seconds): a replica created or rebuilt after
# that would fail with error 1236 and never become ready. The clone carries the primary's
# gtid_executed, so GTID auto-position resumes exactly where the clone ended.
#
# A data directory already in use is left alone: the replica replicates when mysqld boots. Without
# a supervisor mysqld cannot restart itself after a clone (error 3707): it shuts down, and this
# script starts it again. Any other failure empties the data directory again, so the next attempt
# starts clean instead of booting a half-seeded replica.
set -eu

DATADIR=/var/lib/mysql
SECRETS=/var/run/secrets/parley
PRIMARY="$PARLEY_PRIMARY_HOST"
# Created before the first file and removed after the last step: found at start, it means an
# earlier attempt was killed midway. A dot-file, because mysqld --initialize accepts a data
# directory holding nothing but dot-files and lost+found.
MARKER="$DATADIR/.parley-seeding"
SERVER_PID=
TMP=

log() { printf 'replica-seed: %s\n' "$*" >&2; }

# Everything but lost+found (the file system's own), and the marker last.
empty_datadir() {
  find "$DATADIR" -mindepth 1 -maxdepth 1 ! -name lost+found ! -name .parley-seeding -exec rm -rf {} +
  rm -f "$MARKER"
}

on_exit() {
  status=$?
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" || true
  fi
  if [ "$status" -ne 0 ] && [ -e "$MARKER" ]; then
    log "seeding failed: emptying the data directory so that the next attempt starts clean"
    empty_datadir
  fi
  [ -z "$TMP" ] || rm -rf "$TMP"
  exit "$status"
}

# mysql and mysqladmin read credentials from an option file, not from their command line.
client_options() {
  printf '[client]\nuser=%s\npassword="%s"\n' "$1" "$2"
  shift 2
  printf '%s\n' "$@"
}

# A server for this script only: no TCP listener, its socket in a private directory.
start_server() {
  mysqld --datadir="$DATADIR" --skip-networking --mysqlx=OFF --skip-replica-start \
    --socket="$TMP/mysqld.sock" --pid-file="$TMP/mysqld.pid" &
  SERVER_PID=$!
  tries=0
  until mysqladmin --defaults-extra-file="$TMP/local.cnf" ping >/dev/null 2>&1; do
    # Crash recovery after a clone can take minutes; a mysqld that exited will not answer at all.
    tries=$((tries + 1))
    if [ "$tries" -ge 600 ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
      log "mysqld did not start"
      return 1
    fi
    sleep 1
  done
}

local_sql() {
  mysql --defaults-extra-file="$TMP/local.cnf" "$@"
}

if [ -e "$MARKER" ]; then
  log "an earlier seeding did not finish: emptying the data directory to start again"
  empty_datadir
elif [ -d "$DATADIR/mysql" ]; then
  # The image's entrypoint takes the same sign for a data directory it must not initialise.
  log "the data directory is in use: nothing to seed"
  exit 0
elif [ -n "$(find "$DATADIR" -mindepth 1 -maxdepth 1 ! -name lost+found ! -name '.*')" ]; then
  log "refusing to seed: $DATADIR holds files but no MySQL data directory; delete the volume to seed it"
  exit 1
fi

trap on_exit EXIT
trap 'exit 143' TERM INT
umask 077
TMP=$(mktemp -d)
REPLICATION_PASSWORD=$(cat "$SECRETS/mysql-replication-password")
client_options replication "$REPLICATION_PASSWORD" "host=$PRIMARY" port=3306 ssl-mode=REQUIRED >"$TMP/primary.cnf"
# Right after --initialize-insecure, root@localhost has no password.
client_options root '' "socket=$TMP/mysqld.sock" >"$TMP/local.cnf"

# On a first install the primary is still being created: wait for it rather than fail and back off.
tries=0
until mysqladmin --defaults-extra-file="$TMP/primary.cnf" --connect-timeout=5 ping >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 300 ]; then
    log "the primary $PRIMARY:3306 did not answer"
    exit 1
  fi
  log "waiting for the primary $PRIMARY:3306"
  sleep 2
done

: >"$MARKER"
log "initialising an empty data directory"
mysqld --datadir="$DATADIR" --initialize-insecure
start_server

log "cloning $PRIMARY:3306"
clone_status=0
clone_output=$(
  local_sql 2>&1 <<SQL
SET GLOBAL clone_valid_donor_list = '$PRIMARY:3306';
CLONE INSTANCE FROM 'replication'@'$PRIMARY':3306 IDENTIFIED BY '$REPLICATION_PASSWORD' REQUIRE SSL;
SQL
) || clone_status=$?
case "$clone_output" in
  *"ERROR 3707 ("*)
    log "clone complete; mysqld stopped to restart on the cloned data"
    wait "$SERVER_PID" || true
    SERVER_PID=
    ;;
  *)
    log "clone failed (mysql exited with $clone_status): $clone_output"
    exit 1
    ;;
esac

# The clone brought the primary's accounts, root's password among them.
client_options root "$(cat "$SECRETS/mysql-root-password")" "socket=$TMP/mysqld.sock" >"$TMP/local.cnf"
start_server
log "pointing the replica at $PRIMARY by GTID auto-position"
local_sql <<SQL
CHANGE REPLICATION SOURCE TO
  SOURCE_HOST='$PRIMARY',
  SOURCE_PORT=3306,
  SOURCE_USER='replication',
  SOURCE_PASSWORD='$REPLICATION_PASSWORD',
  SOURCE_AUTO_POSITION=1,
  SOURCE_SSL=1,
  SOURCE_CONNECT_RETRY=5,
  SOURCE_RETRY_COUNT=1000000;
-- Read-only even for privileged users from now on (persisted in the data directory): a stray
-- write on a replica would break GTID replication.
SET PERSIST read_only = ON;
SET PERSIST super_read_only = ON;
SQL
mysqladmin --defaults-extra-file="$TMP/local.cnf" shutdown
wait "$SERVER_PID"
SERVER_PID=
rm -f "$MARKER"
log "seeded from $PRIMARY; replication starts when mysqld boots"
