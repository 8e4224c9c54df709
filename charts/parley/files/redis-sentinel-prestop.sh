#!/bin/sh
# Keeps this pod's Sentinel up while the redis container's preStop hands the master role away:
# every container of the pod gets SIGTERM at once, and that hook falls back to this Sentinel when
# no other pod's Sentinel answers. Returns as soon as the Redis here is not master (a replica, or stopped), or
# after FAILOVER_WAIT_SECONDS, the redis hook's own bound.
set -u
export REDISCLI_AUTH="$(cat /var/run/secrets/parley/redis-password)"
deadline=$(($(date +%s) + FAILOVER_WAIT_SECONDS))
while [ "$(date +%s)" -lt "$deadline" ]; do
  if [ "$(timeout 3 redis-cli -p 6379 role 2>/dev/null | head -n 1)" != "master" ]; then
    echo "redis is not master here"
    exit 0
  fi
  sleep 1
done
echo "redis still master here after ${FAILOVER_WAIT_SECONDS}s"
