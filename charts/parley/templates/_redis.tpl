{{/*
Bytes in a redis.conf memory size: a number, or a string with kb, mb or gb (powers of 1024, as
Redis reads them; the schema admits no other unit).
*/}}
{{- define "parley.redis.sizeBytes" -}}
{{- $value := include "parley.redis.sizeText" . -}}
{{- $number := regexFind "^[0-9]+" $value -}}
{{- $units := dict "" 1 "kb" 1024 "mb" 1048576 "gb" 1073741824 -}}
{{- printf "%d" (mul (int64 $number) (index $units (trimPrefix $number $value))) -}}
{{- end }}

{{/* A redis.conf size as written: a YAML number is a float to Helm, printed without an exponent. */}}
{{- define "parley.redis.sizeText" -}}
{{- if or (kindIs "float64" .) (kindIs "int64" .) (kindIs "int" .) -}}
{{- printf "%d" (int64 .) -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end }}

{{/*
MAXMEMORY for redis.conf. Under noeviction (which BullMQ needs) a full Redis refuses writes with an
OOM error the app reports; without maxmemory it grows until the kernel kills the container at its
memory limit. Unless redis.maxmemory is given, it is 75 % of that limit: maxmemory counts the
dataset and client buffers only, and the rest of the limit is for what it leaves out, which the
container pays for as well: the pages a fork for an AOF rewrite or a replica's full sync copies
while writes go on, the replication output buffers and backlog, and allocator fragmentation.
ElastiCache reserves the same 25 % of a node's memory for the same reasons (reserved-memory-percent,
https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/redis-memory-management.html).
*/}}
{{- define "parley.redis.maxmemory" -}}
{{- $redis := .Values.redis -}}
{{- $limit := dig "limits" "memory" nil ($redis.resources | default dict) -}}
{{- $explicit := $redis.maxmemory -}}
{{- if kindIs "invalid" $explicit -}}
{{- if kindIs "invalid" $limit -}}
{{- fail "redis.maxmemory is not set and redis.resources.limits.memory is empty: set a memory limit (maxmemory is then 75 % of it) or redis.maxmemory, or Redis grows until the kernel kills it instead of refusing writes" -}}
{{- end -}}
{{- $limitBytes := include "parley.quantityBytes" (dict "value" $limit "path" "redis.resources.limits.memory") -}}
{{- printf "%d" (div (mul (int64 $limitBytes) 3) 4) -}}
{{- else -}}
{{- if not (kindIs "invalid" $limit) -}}
{{- $limitBytes := include "parley.quantityBytes" (dict "value" $limit "path" "redis.resources.limits.memory") | int64 -}}
{{- $bytes := include "parley.redis.sizeBytes" $explicit | int64 -}}
{{- if or (le $bytes 0) (ge $bytes $limitBytes) -}}
{{- fail (printf "redis.maxmemory (%v) must be above 0 and below redis.resources.limits.memory (%v): past the limit Redis is killed instead of refusing writes; leave redis.maxmemory null for 75 %% of the limit" $explicit $limit) -}}
{{- end -}}
{{- end -}}
{{- include "parley.redis.sizeText" $explicit -}}
{{- end -}}
{{- end }}
