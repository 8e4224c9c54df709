#!/bin/sh
# Before the master stops, hand its role to a replica and make the writes follow, so clients move
# at once instead of waiting for down-after-milliseconds, and no acknowledged write is lost:
#  1. pause writes here (CLIENT PAUSE WRITE: clients wait, nothing fails) and wait until the
#     replicas have acknowledged everything written before, so the one promoted has it all;
#  2. ask a Sentinel to fail over: a peer's first, because this pod's own Sentinel gets SIGTERM at
#     the same moment as this Redis (its own preStop holds it, but it is only the last resort);
#     SENTINEL FAILOVER needs no agreement from the other Sentinels;
#  3. once that Sentinel names the new master, replicate from it at once (Sentinel itself would
#     demote this Redis only seconds later, taking writes meanwhile that the resync then drops),
#     then release the paused writes: they get READONLY, and the clients reconnect to the new
#     master and retry.
# Every call is bounded (3 s), so the hook ends at most a few calls past FAILOVER_WAIT_SECONDS.
set -u
export REDISCLI_AUTH="$(cat /var/run/secrets/parley/redis-password)"
SELF="${POD_NAME}.${HEADLESS}.${NAMESPACE}.svc"

redis() { timeout 3 redis-cli -p 6379 "$@" 2>&1; }
sentinel_at() {
  host="$1"
  shift
  if [ "$host" = "$SELF" ]; then
    timeout 3 redis-cli -p 26379 "$@" 2>&1
  else
    timeout 3 redis-cli -h "$host" -p 26379 "$@" 2>&1
  fi
}
time_left() { [ "$(date +%s)" -lt "$deadline" ]; }
# 0: every online replica has acknowledged the master's offset (each acknowledges once a second);
# 1: not yet; 2: no replica online, nothing to hand over to.
replicas_caught_up() {
  redis info replication | tr -d '\r' | awk '
    /^slave[0-9]+:/ {
      sub(/^slave[0-9]+:/, "")
      state = ""; offset = 0
      n = split($0, fields, ",")
      for (i = 1; i <= n; i++) {
        split(fields[i], kv, "=")
        if (kv[1] == "state") state = kv[2]
        if (kv[1] == "offset") offset = kv[2]
      }
      if (state == "online") acked[++replicas] = offset
    }
    /^master_repl_offset:/ { sub(/^master_repl_offset:/, ""); master = $0 }
    END {
      if (replicas == 0) exit 2
      for (i = 1; i <= replicas; i++) if (acked[i] + 0 < master + 0) exit 1
    }'
}
give_up() {
  redis client unpause > /dev/null
  echo "$1"
  exit 0
}

[ "$(redis role | head -n 1)" = "master" ] || exit 0
deadline=$(($(date +%s) + FAILOVER_WAIT_SECONDS))
# Expires by itself should this hook be killed.
redis client pause $((FAILOVER_WAIT_SECONDS * 1000)) write > /dev/null

while :; do
  replicas_caught_up
  case $? in
    0) break ;;
    2) give_up "no replica online to hand over to" ;;
  esac
  time_left || give_up "no replica caught up within ${FAILOVER_WAIT_SECONDS}s"
  sleep 0.2
done

# The other pods' Sentinels first, then this pod's.
CANDIDATES=""
i=0
while [ "$i" -lt "$REPLICAS" ]; do
  PEER="${STATEFULSET}-${i}.${HEADLESS}.${NAMESPACE}.svc"
  [ "$PEER" = "$SELF" ] || CANDIDATES="$CANDIDATES $PEER"
  i=$((i + 1))
done
CHOSEN=""
for CANDIDATE in $CANDIDATES $SELF; do
  time_left || break
  # The master's address as this Sentinel knows it: the failover is done when it changes.
  set -- $(sentinel_at "$CANDIDATE" sentinel get-master-addr-by-name "$MASTER_NAME")
  if [ "$#" -ne 2 ]; then
    echo "sentinel ${CANDIDATE} did not answer: $*"
    continue
  fi
  BEFORE="$1:$2"
  # redis-cli exits 0 on an error reply (e.g. NOGOODSLAVE): read the answer instead.
  ANSWER="$(sentinel_at "$CANDIDATE" sentinel failover "$MASTER_NAME")"
  if [ "$ANSWER" = "OK" ]; then
    CHOSEN="$CANDIDATE"
    break
  fi
  echo "sentinel ${CANDIDATE} refused: ${ANSWER}"
done
[ -n "$CHOSEN" ] || give_up "no Sentinel would fail over"

# Sentinel names the promoted replica only once it has acknowledged being master.
while time_left; do
  set -- $(sentinel_at "$CHOSEN" sentinel get-master-addr-by-name "$MASTER_NAME")
  if [ "$#" -eq 2 ] && [ "$1:$2" != "$BEFORE" ]; then
    redis replicaof "$1" "$2" > /dev/null
    redis client unpause > /dev/null
    if [ "$(redis role | head -n 1)" = "slave" ]; then
      echo "failed over: this pod is now a replica of $1:$2 (through the Sentinel of ${CHOSEN})"
      exit 0
    fi
  fi
  sleep 0.2
done
give_up "still master after ${FAILOVER_WAIT_SECONDS}s"
