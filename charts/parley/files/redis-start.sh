#!/bin/sh
# Writes redis.conf and sentinel.conf for this pod, then execs nothing: the redis and sentinel
# containers start from the files written here. Runs in an init container on every start.
set -eu
PASSWORD="$(cat /var/run/secrets/parley/redis-password)"
SELF="${POD_NAME}.${HEADLESS}.${NAMESPACE}.svc"
ORDINAL="${POD_NAME##*-}"

# Ask every reachable Sentinel who the master is; a restarted pod must rejoin the current master
# rather than elect itself.
MASTER=""
i=0
while [ "$i" -lt "$REPLICAS" ]; do
  PEER="${STATEFULSET}-${i}.${HEADLESS}.${NAMESPACE}.svc"
  if [ "$PEER" != "$SELF" ]; then
    ANSWER="$(REDISCLI_AUTH="$PASSWORD" timeout 3 redis-cli -h "$PEER" -p 26379 \
      sentinel get-master-addr-by-name "$MASTER_NAME" 2>/dev/null | head -n 1 || true)"
    if [ -n "$ANSWER" ]; then MASTER="$ANSWER"; break; fi
  fi
  i=$((i + 1))
done
if [ -z "$MASTER" ]; then
  # No Sentinel knows a master: first start of the set. Pod 0 bootstraps as master.
  MASTER="${STATEFULSET}-0.${HEADLESS}.${NAMESPACE}.svc"
fi

cat > /conf/redis.conf <<CONF
bind * -::*
port 6379
dir /data
requirepass ${PASSWORD}
masterauth ${PASSWORD}
appendonly yes
appendfsync everysec
maxmemory ${MAXMEMORY}
# BullMQ loses jobs under any eviction policy.
maxmemory-policy noeviction
replica-announce-ip ${SELF}
protected-mode no
CONF
if [ "$MASTER" != "$SELF" ]; then
  echo "replicaof ${MASTER} 6379" >> /conf/redis.conf
fi

cat > /conf/sentinel.conf <<CONF
port 26379
dir /tmp
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip ${SELF}
requirepass ${PASSWORD}
sentinel sentinel-pass ${PASSWORD}
sentinel monitor ${MASTER_NAME} ${MASTER} 6379 ${QUORUM}
sentinel auth-pass ${MASTER_NAME} ${PASSWORD}
sentinel down-after-milliseconds ${MASTER_NAME} ${DOWN_AFTER_MS}
sentinel failover-timeout ${MASTER_NAME} ${FAILOVER_TIMEOUT_MS}
sentinel parallel-syncs ${MASTER_NAME} 1
CONF
echo "pod ${ORDINAL}: master is ${MASTER}"
