#!/bin/sh
# Before the master stops, ask Sentinel to promote a replica and wait until this pod is no longer
# master, so clients reconnect to the new master instead of waiting for down-after-milliseconds.
set -u
export REDISCLI_AUTH="$(cat /var/run/secrets/parley/redis-password)"
ROLE="$(redis-cli -p 6379 role 2>/dev/null | head -n 1)"
[ "$ROLE" = "master" ] || exit 0
# redis-cli exits 0 on an error reply (e.g. NOGOODSLAVE): read the answer instead.
ANSWER="$(redis-cli -p 26379 sentinel failover "$MASTER_NAME" 2>&1)"
if [ "$ANSWER" != "OK" ]; then
  echo "sentinel failover refused: $ANSWER"
  exit 0
fi
deadline=$(( $(date +%s) + FAILOVER_WAIT_SECONDS ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  ROLE="$(redis-cli -p 6379 role 2>/dev/null | head -n 1)"
  if [ "$ROLE" = "slave" ]; then
    echo "failed over: this pod is now a replica"
    exit 0
  fi
  sleep 1
done
echo "still master after ${FAILOVER_WAIT_SECONDS}s"
exit 0
