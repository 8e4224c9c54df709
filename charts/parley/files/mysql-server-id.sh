#!/bin/sh
# server-id must be unique per server: 1 for the primary, 100 + ordinal for replicas.
set -eu
cp /config/*.cnf /conf.d/
if [ "$ROLE" = "primary" ]; then
  ID=1
else
  ID=$((100 + ${POD_NAME##*-}))
fi
printf '[mysqld]\nserver-id=%s\nreport-host=%s.%s\n' "$ID" "$POD_NAME" "$HEADLESS" > /conf.d/server-id.cnf
