#!/bin/sh
# Before the master stops, ask Sentinel to promote a replica and wait until this pod is no longer
# master, so clients reconnect to the new master instead of waiting for down-after-milliseconds.
set -u
export REDISCLI_AUTH="$(cat /var/run/secrets/parley/redis-password)"
ROLE="$(redis-cli -p 6379 role 2>/dev/null | head -n 1)"
[ "$ROLE" = "master" ] || exit 0
redis-cli -p 26379 sentinel failover "$MASTER_NAME" || exit 0
deadline=$(( $(date +%s) + FAILOVER_WAIT_SECONDS ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  ROLE="$(redis-cli -p 6379 role 2>/dev/null | head -n 1)"
  [ "$ROLE" = "slave" ] && exit 0
  sleep 1
done
exit 0
