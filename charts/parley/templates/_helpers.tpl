{{/* Names ------------------------------------------------------------------------------------ */}}
{{- define "parley.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "parley.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "<fullname>-<component>", e.g. parley-api */}}
{{- define "parley.componentName" -}}
{{- printf "%s-%s" (include "parley.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels ----------------------------------------------------------------------------------- */}}
{{- define "parley.selectorLabels" -}}
app.kubernetes.io/name: {{ include "parley.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "parley.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "parley.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{ include "parley.ownerLabels" . }}
{{- end }}

{{/* Labels without the chart or app version, for the pod templates of the data stores: a label
that changes with every release would roll MySQL and Redis on every upgrade, nothing of theirs
changed. */}}
{{- define "parley.stableLabels" -}}
{{ include "parley.selectorLabels" . }}
{{ include "parley.ownerLabels" . }}
{{- end }}

{{- define "parley.ownerLabels" -}}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: parley
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* A checksum of a ConfigMap template's data only: its metadata carries the chart version. */}}
{{- define "parley.dataChecksum" -}}
{{- (include (print .root.Template.BasePath "/" .template) .root | fromYaml).data | toJson | sha256sum -}}
{{- end }}

{{/* Images: digest wins; otherwise an exact tag that is never "latest" ------------------------ */}}
{{- define "parley.imageRef" -}}
{{- $tag := toString (default .default .image.tag) -}}
{{- if eq $tag "latest" -}}
{{- fail (printf "%s: image tag \"latest\" is not allowed; pin an exact tag or a digest" .path) -}}
{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end }}

{{- define "parley.image" -}}
{{- include "parley.imageRef" (dict "image" .Values.image "default" .Chart.AppVersion "path" "image") }}
{{- end }}

{{/*
Bytes in a Kubernetes memory quantity: a number, or a string with a binary (Ki, Mi, Gi, Ti) or
decimal (k, M, G, T) suffix, as the API server reads them. Args: value, path (for the message).
*/}}
{{- define "parley.quantityBytes" -}}
{{- $quantity := .value -}}
{{- if not (kindIs "string" $quantity) -}}
{{- $quantity = printf "%.0f" (float64 $quantity) -}}
{{- end -}}
{{- $factors := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 -}}
{{- $number := regexFind `^[0-9]+(\.[0-9]+)?` $quantity -}}
{{- $suffix := trimPrefix $number $quantity -}}
{{- if eq $suffix "m" -}}
{{- fail (printf "%s (%s): 'm' is millibytes; Mi (mebibytes) was surely meant" .path $quantity) -}}
{{- end -}}
{{- if or (not $number) (not (hasKey $factors $suffix)) -}}
{{- fail (printf "%s: %q is not a quantity of bytes (e.g. 2Gi, 512Mi, 1G)" .path $quantity) -}}
{{- end -}}
{{- mulf (float64 $number) (index $factors $suffix) | floor | int64 -}}
{{- end }}

{{- define "parley.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "parley.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding every credential of the release. */}}
{{- define "parley.secretName" -}}
{{- default (include "parley.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "parley.secretsDir" -}}/var/run/secrets/parley{{- end }}

{{/* Data endpoints ------------------------------------------------------------------------- */}}
{{- define "parley.mysql.writerHost" -}}
{{- if .Values.mysql.enabled -}}
{{- include "parley.componentName" (dict "root" . "component" "mysql") -}}
{{- else -}}
{{- .Values.mysql.external.writerHost -}}
{{- end -}}
{{- end }}

{{- define "parley.mysql.readerHost" -}}
{{- if .Values.mysql.enabled -}}
{{- if gt (int .Values.mysql.replicas.count) 0 -}}
{{- include "parley.componentName" (dict "root" . "component" "mysql-read") -}}
{{- end -}}
{{- else -}}
{{- .Values.mysql.external.readerHost -}}
{{- end -}}
{{- end }}

{{- define "parley.mysql.port" -}}
{{- if .Values.mysql.enabled }}3306{{ else }}{{ .Values.mysql.external.port }}{{ end -}}
{{- end }}

{{- define "parley.mysql.database" -}}
{{- if .Values.mysql.enabled }}{{ .Values.mysql.database }}{{ else }}{{ .Values.mysql.external.database }}{{ end -}}
{{- end }}

{{- define "parley.mysql.user" -}}
{{- if .Values.mysql.enabled }}{{ .Values.mysql.user }}{{ else }}{{ .Values.mysql.external.user }}{{ end -}}
{{- end }}

{{- define "parley.mysql.migrationUser" -}}
{{- if .Values.mysql.enabled }}{{ .Values.mysql.migrationUser }}{{ else }}{{ default .Values.mysql.external.user .Values.mysql.external.migrationUser }}{{ end -}}
{{- end }}

{{- define "parley.redis.headless" -}}
{{- printf "%s-headless" (include "parley.componentName" (dict "root" . "component" "redis")) -}}
{{- end }}

{{/* REDIS_SENTINELS for the in-cluster Sentinels: every pod by its stable DNS name. */}}
{{- define "parley.redis.sentinels" -}}
{{- $redis := include "parley.componentName" (dict "root" . "component" "redis") -}}
{{- $headless := include "parley.redis.headless" . -}}
{{- $hosts := list -}}
{{- range $i := until (int .Values.redis.replicas) -}}
{{- $hosts = append $hosts (printf "%s-%d.%s.%s.svc:26379" $redis $i $headless $.Release.Namespace) -}}
{{- end -}}
{{- join "," $hosts -}}
{{- end }}

{{- define "parley.s3.endpoint" -}}
{{- if .Values.minio.enabled -}}
{{- printf "http://%s:9000" (include "parley.componentName" (dict "root" . "component" "minio")) -}}
{{- else -}}
{{- .Values.s3.endpoint -}}
{{- end -}}
{{- end }}

{{/* Validation of cross-field rules the JSON schema cannot express. ------------------------- */}}
{{- define "parley.validate" -}}
{{- $v := .Values -}}
{{- if and $v.ingress.enabled $v.gateway.enabled -}}
{{- fail "ingress.enabled and gateway.enabled are exclusive: choose one least-connections entry" -}}
{{- end -}}
{{- /*
No default IngressClass: each supported controller's default class name is also the default of a
controller that ignores this chart's annotations, and a guess could hand the Ingress to it.
*/ -}}
{{- if and $v.ingress.enabled (not $v.ingress.className) -}}
{{- $edge := include "parley.ingress.controller" . | fromJson -}}
{{- fail (printf "ingress.className is required with ingress.enabled: name the IngressClass of your %s (ingress.controller=%s). %s installs IngressClass `%s` (controller %s) by default, but %s uses that name too and would ignore this Ingress's annotations; `kubectl get ingressclass` shows each class's controller" $edge.name $v.ingress.controller $edge.name $edge.defaultClass $edge.ingressClassController $edge.lookalike) -}}
{{- end -}}
{{- if le (int64 $v.config.attachments.pendingTtlSeconds) (int64 $v.config.attachments.uploadTtlSeconds) -}}
{{- fail (printf "config.attachments.pendingTtlSeconds (%d) must be longer than config.attachments.uploadTtlSeconds (%d): an upload swept while its presigned POST is still valid could be uploaded again, with no record left to verify or remove it" (int64 $v.config.attachments.pendingTtlSeconds) (int64 $v.config.attachments.uploadTtlSeconds)) -}}
{{- end -}}
{{- if and $v.worker.keda.enabled $v.worker.autoscaling.enabled -}}
{{- fail "worker.keda.enabled and worker.autoscaling.enabled are exclusive: KEDA creates its own HPA; set worker.autoscaling.enabled=false" -}}
{{- end -}}
{{- if and (not $v.mysql.enabled) (not $v.mysql.external.writerHost) -}}
{{- fail "mysql.enabled=false needs mysql.external.writerHost" -}}
{{- end -}}
{{- if and (not $v.mysql.enabled) (not $v.secrets.existingSecret) -}}
{{- fail "mysql.enabled=false needs secrets.existingSecret: the chart cannot know an external database's passwords" -}}
{{- end -}}
{{- if not $v.redis.enabled -}}
{{- if and (not $v.redis.external.url) (not $v.redis.external.sentinels) -}}
{{- fail "redis.enabled=false needs redis.external.url or redis.external.sentinels" -}}
{{- end -}}
{{- if and $v.redis.external.url $v.redis.external.sentinels -}}
{{- fail "set redis.external.url or redis.external.sentinels, not both" -}}
{{- end -}}
{{- end -}}
{{- range $name := list "api" "worker" -}}
{{- $pdb := (index $v $name).pdb -}}
{{- if and $pdb.enabled (not (kindIs "invalid" $pdb.minAvailable)) (not (kindIs "invalid" $pdb.maxUnavailable)) -}}
{{- fail (printf "%s.pdb: set minAvailable or maxUnavailable, not both (set the other to null)" $name) -}}
{{- end -}}
{{- $workload := index $v $name -}}
{{- $fewest := int $workload.replicas -}}
{{- if and (eq $name "worker") $v.worker.keda.enabled -}}
{{- $fewest = int $v.worker.keda.minReplicaCount -}}
{{- else if $workload.autoscaling.enabled -}}
{{- $fewest = int $workload.autoscaling.minReplicas -}}
{{- end -}}
{{- if $pdb.enabled -}}
{{- include "parley.validatePdb" (dict "path" (printf "%s.pdb" $name) "pdb" $pdb "pods" $fewest "what" (printf "%s pods (the fewest it runs)" $name)) -}}
{{- end -}}
{{- $hpa := (index $v $name).autoscaling -}}
{{- if and $hpa.enabled (gt (int $hpa.minReplicas) (int $hpa.maxReplicas)) -}}
{{- fail (printf "%s.autoscaling.minReplicas (%d) is greater than maxReplicas (%d)" $name (int $hpa.minReplicas) (int $hpa.maxReplicas)) -}}
{{- end -}}
{{- end -}}
{{- /*
API shutdown (service/src/main-api.ts): the preStop sleep runs first; then SIGTERM turns readiness
503 and starts two drains together (Promise.all): HTTP requests finish, bounded by
SHUTDOWN_GRACE_MS, while sockets close with 1001 at instants spread evenly over
REALTIME_DRAIN_WINDOW_MS, the last one given CLOSE_HANDSHAKE_MS (5 s,
features/realtime/connection.ts) for its close handshake before it is cut. Running in parallel, the
drain lasts the longer of the two, not their sum: max(shutdownGraceMs, drainWindowMs + 5 s). The
grace period must exceed the preStop sleep plus that; what is left over is for the Redis and MySQL
closes after it (milliseconds when they answer).
*/ -}}
{{- $closeHandshakeMs := 5000 -}}
{{- $httpDrainMs := int64 $v.config.shutdownGraceMs -}}
{{- $socketDrainMs := add (int64 $v.config.realtime.drainWindowMs) $closeHandshakeMs -}}
{{- $drainSeconds := div (add (max $httpDrainMs $socketDrainMs) 999) 1000 -}}
{{- $apiShutdown := add $v.api.preStopSleepSeconds $drainSeconds -}}
{{- if le (int $v.api.terminationGracePeriodSeconds) (int $apiShutdown) -}}
{{- fail (printf "api.terminationGracePeriodSeconds (%d) must exceed api.preStopSleepSeconds + the in-app drain (%d s) so requests and WebSockets finish before SIGKILL: the drain is the longer of config.shutdownGraceMs (%d ms, HTTP requests) and config.realtime.drainWindowMs + 5 s close handshake (%d ms, sockets), which run in parallel" (int $v.api.terminationGracePeriodSeconds) (int $apiShutdown) $httpDrainMs $socketDrainMs) -}}
{{- end -}}
{{- /*
Idle sockets through the edge. An idle socket carries nothing but the heartbeat: the API pings every
REALTIME_HEARTBEAT_MS and the client answers, so the proxy sees traffic at least that often. Its
idle timeout must be at least twice that: one whole interval of slack for a ping delayed by a busy
event loop, and no stricter than the API itself, which cuts a peer only once it has missed a ping.
*/ -}}
{{- $heartbeatMs := int64 $v.config.realtime.heartbeatMs -}}
{{- range $edge := list (dict "on" $v.ingress.enabled "path" "ingress" "seconds" $v.ingress.websocketTimeoutSeconds) (dict "on" $v.gateway.enabled "path" "gateway" "seconds" $v.gateway.websocketTimeoutSeconds) -}}
{{- if and $edge.on (lt (mul (int64 $edge.seconds) 1000) (mul 2 $heartbeatMs)) -}}
{{- fail (printf "%s.websocketTimeoutSeconds (%d) must be at least twice config.realtime.heartbeatMs (%d ms): the edge would cut idle sockets between two heartbeats" $edge.path (int64 $edge.seconds) $heartbeatMs) -}}
{{- end -}}
{{- end -}}
{{- /*
Worker shutdown (service/src/main-worker.ts, worker.ts, platform/lifecycle.ts) runs its closes in
turn, each bounded by the lifecycle. 'job workers' is bounded by WORKER_SHUTDOWN_GRACE_MS
(longestJobSeconds) + 5 s: at the grace it hands the running jobs back to their queues, which takes
a moment more. Six others are bounded by DEFAULT_CLOSE_TIMEOUT_MS (10 s) each: the replication
heartbeat (with a replica), the S3 client, the job queues, Redis, MySQL and last the management
server. After the last close the process exits within 1 s (exitWhenIdle). So the margin past the
longest job is 5 + 6 × 10 + 1 = 66 s.
*/ -}}
{{- $workerCloseMargin := 66 -}}
{{- $workerShutdown := add $v.worker.longestJobSeconds $workerCloseMargin -}}
{{- if lt (int $v.worker.terminationGracePeriodSeconds) (int $workerShutdown) -}}
{{- fail (printf "worker.terminationGracePeriodSeconds (%d) must be at least worker.longestJobSeconds + %d s (%d): the job workers wait up to longestJobSeconds (WORKER_SHUTDOWN_GRACE_MS) for running jobs and take up to 5 s more to hand them back, then the replication heartbeat, S3 client, job queues, Redis, MySQL and management server closes may take up to 10 s each, and the process exits within 1 s" (int $v.worker.terminationGracePeriodSeconds) (int $workerCloseMargin) (int $workerShutdown)) -}}
{{- end -}}
{{- /*
Every Redis pod runs a Sentinel. Sentinel declares the master down when `quorum` of them see it
down, and the failover then needs a leader elected by max(quorum, majority) of all of them
(sentinelGetLeader in Redis's sentinel.c). The master's pod takes its own Sentinel down with it.
*/ -}}
{{- if $v.redis.enabled -}}
{{- $sentinels := int $v.redis.replicas -}}
{{- $quorum := int $v.redis.sentinel.quorum -}}
{{- $majority := add (div $sentinels 2) 1 -}}
{{- if eq (mod $sentinels 2) 0 -}}
{{- fail (printf "redis.replicas (%d) must be odd: each pod runs a Sentinel and a failover needs a majority of them, so an even count survives no more lost pods than one pod fewer (2 survives none) and can split into halves that both lack a majority; use 1 for development (no failover) or 3, 5, ..." $sentinels) -}}
{{- end -}}
{{- if gt $quorum $sentinels -}}
{{- fail (printf "redis.sentinel.quorum (%d) cannot exceed redis.replicas (%d): Sentinel could never agree on a failover" $quorum $sentinels) -}}
{{- end -}}
{{- if and (gt $sentinels 1) (eq $quorum $sentinels) -}}
{{- fail (printf "redis.sentinel.quorum (%d) must be below redis.replicas (%d): the master's pod takes its own Sentinel down with it, and the others are then too few to agree that the master is down" $quorum $sentinels) -}}
{{- end -}}
{{- if lt $quorum $majority -}}
{{- fail (printf "redis.sentinel.quorum (%d) must be at least a majority of the %d Sentinels (%d): a smaller quorum lets fewer than half of them, cut off from a healthy master, declare it down and fail it over" $quorum $sentinels $majority) -}}
{{- end -}}
{{- end -}}
{{- if and $v.metrics.podMonitor.enabled $v.metrics.serviceMonitor.enabled -}}
{{- fail "metrics.podMonitor and metrics.serviceMonitor both enabled would scrape every pod twice: choose one" -}}
{{- end -}}
{{- if and $v.mysql.enabled $v.mysql.pdb.enabled (gt (int $v.mysql.replicas.count) 1) -}}
{{- include "parley.validatePdb" (dict "path" "mysql.pdb" "pdb" (dict "maxUnavailable" $v.mysql.pdb.maxUnavailable) "pods" (int $v.mysql.replicas.count) "what" "MySQL replicas") -}}
{{- end -}}
{{- if and $v.redis.enabled $v.redis.pdb.enabled (ge (int $v.redis.replicas) 3) -}}
{{- $majority := add (div (int $v.redis.replicas) 2) 1 -}}
{{- $spare := sub (int $v.redis.replicas) $majority -}}
{{- if and (not (kindIs "string" $v.redis.pdb.maxUnavailable)) (gt (int $v.redis.pdb.maxUnavailable) $spare) -}}
{{- fail (printf "redis.pdb.maxUnavailable (%d) would let a drain take down %d of %d Redis pods, and with them the Sentinel majority (%d) that a failover needs: at most %d" (int $v.redis.pdb.maxUnavailable) (int $v.redis.pdb.maxUnavailable) (int $v.redis.replicas) $majority $spare) -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/* What the migrations entry point reads: NODE_ENV, LOG_LEVEL, INSTANCE_ID and MYSQL_*. ---- */}}
{{- define "parley.env.mysql" -}}
{{- $root := . -}}
{{- $dir := include "parley.secretsDir" . -}}
- name: NODE_ENV
  value: {{ .Values.config.nodeEnv | quote }}
- name: LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
- name: INSTANCE_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: MYSQL_HOST
  value: {{ include "parley.mysql.writerHost" . | quote }}
- name: MYSQL_PORT
  value: {{ include "parley.mysql.port" . | quote }}
{{- with include "parley.mysql.readerHost" . }}
- name: MYSQL_REPLICA_HOST
  value: {{ . | quote }}
- name: MYSQL_REPLICA_PORT
  value: {{ include "parley.mysql.port" $root | quote }}
{{- end }}
- name: MYSQL_DATABASE
  value: {{ include "parley.mysql.database" . | quote }}
- name: MYSQL_USER
  value: {{ include "parley.mysql.user" . | quote }}
- name: MYSQL_PASSWORD_FILE
  value: {{ $dir }}/mysql-password
- name: MYSQL_POOL_SIZE
  value: {{ .Values.config.mysqlPoolSize | int64 | toString | quote }}
{{- if and (not .Values.mysql.enabled) .Values.mysql.external.tls.enabled }}
- name: MYSQL_TLS
  value: "true"
{{- if .Values.mysql.external.tls.caConfigMap }}
- name: MYSQL_TLS_CA_FILE
  value: /etc/parley/mysql-ca/{{ .Values.mysql.external.tls.caKey }}
{{- end }}
{{- end }}
{{- end }}

{{- define "parley.trustedProxyHops" -}}
{{- if kindIs "invalid" .Values.config.trustedProxyHops -}}
{{- ternary 1 0 (or .Values.ingress.enabled .Values.gateway.enabled) -}}
{{- else -}}
{{- .Values.config.trustedProxyHops -}}
{{- end -}}
{{- end }}

{{/*
REALTIME_ALLOWED_ORIGINS. Unset (null), the origin of the public host the chart routes to: a page
served beside the API on that host is same-origin, so allowing it opens nothing to other sites,
and anything else stays refused. Wildcard Gateway hostnames name no origin and are skipped; https
only, since a browser page on plain http would have no business with a chat session.
*/}}
{{- define "parley.realtime.allowedOrigins" -}}
{{- $origins := .Values.config.realtime.allowedOrigins -}}
{{- if kindIs "invalid" $origins -}}
{{- $origins = list -}}
{{- if .Values.ingress.enabled -}}
{{- $origins = append $origins (printf "https://%s" .Values.ingress.host) -}}
{{- else if .Values.gateway.enabled -}}
{{- range .Values.gateway.hostnames -}}
{{- if not (hasPrefix "*" .) -}}
{{- $origins = append $origins (printf "https://%s" .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- join "," (uniq $origins) -}}
{{- end }}

{{/* The live connection's settings: the API container only (the worker opens no sockets). */}}
{{- define "parley.env.realtime" -}}
{{- $rt := .Values.config.realtime -}}
- name: REALTIME_ALLOWED_ORIGINS
  value: {{ include "parley.realtime.allowedOrigins" . | quote }}
- name: REALTIME_HEARTBEAT_MS
  value: {{ $rt.heartbeatMs | int64 | toString | quote }}
- name: REALTIME_MAX_FRAME_BYTES
  value: {{ $rt.maxFrameBytes | int64 | toString | quote }}
- name: REALTIME_MAX_FRAMES_PER_SECOND
  value: {{ $rt.maxFramesPerSecond | int64 | toString | quote }}
- name: REALTIME_MAX_SUBSCRIPTIONS
  value: {{ $rt.maxSubscriptions | int64 | toString | quote }}
- name: REALTIME_MAX_SOCKETS_PER_USER
  value: {{ $rt.maxSocketsPerUser | int64 | toString | quote }}
- name: REALTIME_MAX_BUFFERED_BYTES
  value: {{ $rt.maxBufferedBytes | int64 | toString | quote }}
- name: REALTIME_RESUME_MAX_MESSAGES
  value: {{ $rt.resumeMaxMessages | int64 | toString | quote }}
- name: REALTIME_RESUME_MAX_AGE_SECONDS
  value: {{ $rt.resumeMaxAgeSeconds | int64 | toString | quote }}
- name: REALTIME_DRAIN_WINDOW_MS
  value: {{ $rt.drainWindowMs | int64 | toString | quote }}
- name: REALTIME_TICKET_TTL_SECONDS
  value: {{ $rt.ticketTtlSeconds | int64 | toString | quote }}
{{- end }}

{{/* Leaderboards: the API awards points (and expires period boards), the worker flushes them and rebuilds. */}}
{{- define "parley.env.leaderboards" -}}
{{- $lb := .Values.config.leaderboards -}}
- name: LEADERBOARD_POINTS_MESSAGE
  value: {{ $lb.pointsMessage | int64 | toString | quote }}
- name: LEADERBOARD_POINTS_ROOM_CREATED
  value: {{ $lb.pointsRoomCreated | int64 | toString | quote }}
- name: LEADERBOARD_FLUSH_INTERVAL_MS
  value: {{ $lb.flushIntervalMs | int64 | toString | quote }}
- name: LEADERBOARD_PERIOD_GRACE_SECONDS
  value: {{ $lb.periodGraceSeconds | int64 | toString | quote }}
{{- end }}

{{- define "parley.env.attachments" -}}
{{- $a := .Values.config.attachments -}}
- name: ATTACHMENTS_ALLOWED_TYPES
  value: {{ join "," $a.allowedTypes | quote }}
- name: ATTACHMENTS_MAX_BYTES
  value: {{ $a.maxBytes | int64 | toString | quote }}
- name: ATTACHMENTS_UPLOAD_TTL_SECONDS
  value: {{ $a.uploadTtlSeconds | int64 | toString | quote }}
- name: ATTACHMENTS_DOWNLOAD_TTL_SECONDS
  value: {{ $a.downloadTtlSeconds | int64 | toString | quote }}
- name: ATTACHMENTS_PENDING_TTL_SECONDS
  value: {{ $a.pendingTtlSeconds | int64 | toString | quote }}
- name: ATTACHMENTS_REJECTED_TTL_SECONDS
  value: {{ $a.rejectedTtlSeconds | int64 | toString | quote }}
- name: ATTACHMENTS_SWEEP_EVERY_MS
  value: {{ $a.sweepEveryMs | int64 | toString | quote }}
{{- end }}

{{/*
A job's attempts and backoff are fixed by whoever adds it, and the API adds jobs as the worker does:
both processes get them, or jobs the API adds would keep the service's defaults.
*/}}
{{- define "parley.env.jobOptions" -}}
{{- $jobs := .Values.worker.jobs -}}
- name: JOBS_ATTEMPTS
  value: {{ $jobs.attempts | int64 | toString | quote }}
- name: JOBS_BACKOFF_MS
  value: {{ mul $jobs.backoffSeconds 1000 | int64 | toString | quote }}
{{- end }}

{{/* How the worker runs jobs: concurrency per queue, locks, its heartbeat and Bull Board. Worker only. */}}
{{- define "parley.env.jobWorkers" -}}
{{- $jobs := .Values.worker.jobs -}}
- name: JOBS_CONCURRENCY_MAINTENANCE
  value: {{ $jobs.concurrency.maintenance | int64 | toString | quote }}
- name: JOBS_CONCURRENCY_LEADERBOARDS
  value: {{ $jobs.concurrency.leaderboards | int64 | toString | quote }}
- name: JOBS_CONCURRENCY_ATTACHMENTS
  value: {{ $jobs.concurrency.attachments | int64 | toString | quote }}
- name: JOBS_CONCURRENCY_BACKUPS
  value: {{ $jobs.concurrency.backups | int64 | toString | quote }}
- name: JOBS_LOCK_MS
  value: {{ mul $jobs.lockSeconds 1000 | int64 | toString | quote }}
- name: WORKER_HEARTBEAT_MS
  value: {{ mul .Values.worker.heartbeatSeconds 1000 | int64 | toString | quote }}
- name: JOBS_BOARD
  value: {{ $jobs.board | quote }}
{{- end }}

{{/* Environment of the api and worker. Secrets come as *_FILE paths. ---------------------- */}}
{{- define "parley.env" -}}
{{- $dir := include "parley.secretsDir" . -}}
{{ include "parley.env.mysql" . }}
- name: HOST
  value: "0.0.0.0"
- name: PORT
  value: {{ .Values.api.port | quote }}
- name: MANAGEMENT_PORT
  value: {{ .Values.api.managementPort | quote }}
- name: WORKER_HEALTH_PORT
  value: {{ .Values.worker.healthPort | quote }}
- name: BODY_LIMIT_BYTES
  value: {{ .Values.config.bodyLimitBytes | int64 | toString | quote }}
- name: SHUTDOWN_GRACE_MS
  value: {{ .Values.config.shutdownGraceMs | int64 | toString | quote }}
- name: READINESS_TIMEOUT_MS
  value: {{ .Values.config.readinessTimeoutMs | int64 | toString | quote }}
- name: JWT_ISSUER
  value: {{ .Values.config.jwtIssuer | quote }}
- name: ACCESS_TOKEN_TTL_SECONDS
  value: {{ .Values.config.accessTokenTtlSeconds | int64 | toString | quote }}
- name: REFRESH_TOKEN_TTL_SECONDS
  value: {{ .Values.config.refreshTokenTtlSeconds | int64 | toString | quote }}
- name: RATE_LIMIT_AUTH
  value: {{ .Values.config.rateLimits.auth | quote }}
- name: RATE_LIMIT_API
  value: {{ .Values.config.rateLimits.api | quote }}
- name: RATE_LIMIT_UPLOAD
  value: {{ .Values.config.rateLimits.upload | quote }}
- name: TRUSTED_PROXY_HOPS
  value: {{ include "parley.trustedProxyHops" . | quote }}
{{ include "parley.env.jobOptions" . }}
{{ include "parley.env.leaderboards" . }}
{{ include "parley.env.attachments" . }}
{{- if .Values.redis.enabled }}
- name: REDIS_SENTINELS
  value: {{ include "parley.redis.sentinels" . | quote }}
- name: REDIS_SENTINEL_MASTER
  value: {{ .Values.redis.masterName | quote }}
- name: REDIS_PASSWORD_FILE
  value: {{ $dir }}/redis-password
- name: REDIS_SENTINEL_PASSWORD_FILE
  value: {{ $dir }}/redis-password
{{- else if .Values.redis.external.url }}
- name: REDIS_URL
  value: {{ .Values.redis.external.url | quote }}
{{- else }}
- name: REDIS_SENTINELS
  value: {{ join "," .Values.redis.external.sentinels | quote }}
- name: REDIS_SENTINEL_MASTER
  value: {{ .Values.redis.external.masterName | quote }}
{{- end }}
{{- if and (not .Values.redis.enabled) .Values.redis.external.authEnabled }}
- name: REDIS_PASSWORD_FILE
  value: {{ $dir }}/redis-password
{{- end }}
- name: S3_REGION
  value: {{ .Values.s3.region | quote }}
{{- with include "parley.s3.endpoint" . }}
- name: S3_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: S3_FORCE_PATH_STYLE
  value: {{ or .Values.s3.forcePathStyle .Values.minio.enabled | quote }}
- name: S3_ATTACHMENTS_BUCKET
  value: {{ .Values.s3.attachmentsBucket | quote }}
- name: S3_BACKUPS_BUCKET
  value: {{ .Values.s3.backupsBucket | quote }}
{{- if or .Values.s3.existingSecret .Values.minio.enabled }}
- name: S3_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "parley.s3.secretName" . }}
      key: access-key-id
- name: S3_SECRET_ACCESS_KEY_FILE
  value: /var/run/secrets/parley-s3/secret-access-key
{{- end }}
- name: JWT_PRIVATE_KEY_FILE
  value: {{ $dir }}/jwt-private-key
{{- end }}

{{- define "parley.s3.secretName" -}}
{{- if .Values.s3.existingSecret -}}
{{- .Values.s3.existingSecret -}}
{{- else -}}
{{- include "parley.componentName" (dict "root" . "component" "minio") -}}
{{- end -}}
{{- end }}

{{/* Secret volumes: only the keys each process needs, read-only, 0400. */}}
{{- define "parley.secretVolumes" -}}
- name: secrets
  secret:
    secretName: {{ include "parley.secretName" .root }}
    defaultMode: 0400
    items:
      {{- range .keys }}
      - key: {{ . }}
        path: {{ . }}
      {{- end }}
{{- include "parley.mysqlCaVolume" .root }}
{{- if or .root.Values.s3.existingSecret .root.Values.minio.enabled }}
- name: s3-secret
  secret:
    secretName: {{ include "parley.s3.secretName" .root }}
    defaultMode: 0400
    items:
      - key: secret-access-key
        path: secret-access-key
{{- end }}
{{- end }}

{{- define "parley.secretVolumeMounts" -}}
- name: secrets
  mountPath: {{ include "parley.secretsDir" .root }}
  readOnly: true
{{- include "parley.mysqlCaMount" .root }}
{{- if or .root.Values.s3.existingSecret .root.Values.minio.enabled }}
- name: s3-secret
  mountPath: /var/run/secrets/parley-s3
  readOnly: true
{{- end }}
{{- end }}

{{/* Keys of the app Secret the api and worker read. */}}
{{- define "parley.appSecretKeys" -}}
{{- $keys := list "mysql-password" "jwt-private-key" -}}
{{- if or .Values.redis.enabled .Values.redis.external.authEnabled -}}
{{- $keys = append $keys "redis-password" -}}
{{- end -}}
{{- toJson $keys -}}
{{- end }}

{{- define "parley.topologySpread" -}}
{{- if .spread.enabled }}
topologySpreadConstraints:
  - maxSkew: {{ .spread.maxSkew }}
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: {{ .spread.zoneWhenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "parley.selectorLabels" . | nindent 8 }}
    matchLabelKeys: [pod-template-hash]
  - maxSkew: {{ .spread.maxSkew }}
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "parley.selectorLabels" . | nindent 8 }}
    matchLabelKeys: [pod-template-hash]
{{- end }}
{{- end }}

{{- define "parley.hpaMetrics" -}}
metrics:
  {{- if gt (int .targetCPUUtilizationPercentage) 0 }}
  - type: Resource
    resource:
      name: cpu
      target:
        type: Utilization
        averageUtilization: {{ .targetCPUUtilizationPercentage }}
  {{- end }}
  {{- if gt (int .targetMemoryUtilizationPercentage) 0 }}
  - type: Resource
    resource:
      name: memory
      target:
        type: Utilization
        averageUtilization: {{ .targetMemoryUtilizationPercentage }}
  {{- end }}
{{- end }}

{{/* A NetworkPolicy peer: the pods of one component of this release. */}}
{{- define "parley.np.peer" -}}
- podSelector:
    matchLabels:
      {{- include "parley.selectorLabels" . | nindent 6 }}
{{- end }}

{{/* The CA bundle for TLS to an external MySQL (e.g. RDS), from a ConfigMap. */}}
{{- define "parley.mysqlCaVolume" -}}
{{- if and (not .Values.mysql.enabled) .Values.mysql.external.tls.enabled .Values.mysql.external.tls.caConfigMap }}
- name: mysql-ca
  configMap:
    name: {{ .Values.mysql.external.tls.caConfigMap }}
    items:
      - key: {{ .Values.mysql.external.tls.caKey }}
        path: {{ .Values.mysql.external.tls.caKey }}
{{- end }}
{{- end }}

{{- define "parley.mysqlCaMount" -}}
{{- if and (not .Values.mysql.enabled) .Values.mysql.external.tls.enabled .Values.mysql.external.tls.caConfigMap }}
- name: mysql-ca
  mountPath: /etc/parley/mysql-ca
  readOnly: true
{{- end }}
{{- end }}

{{/* Backups: the worker only (the API never reads the key). ---------------------------------- */}}
{{- define "parley.backups.secretName" -}}
{{- default (include "parley.secretName" .) .Values.backups.encryption.existingSecret -}}
{{- end }}

{{- define "parley.backups.keyDir" -}}/var/run/secrets/parley-backup{{- end }}

{{- define "parley.env.backups" -}}
{{- $b := .Values.backups -}}
- name: BACKUP_ENABLED
  value: {{ $b.enabled | quote }}
{{- if $b.enabled }}
- name: BACKUP_SCHEDULE
  value: {{ $b.schedule | quote }}
- name: BACKUP_KEEP
  value: {{ $b.keep | int64 | toString | quote }}
- name: BACKUP_COMPRESSION_LEVEL
  value: {{ $b.compressionLevel | int64 | toString | quote }}
- name: BACKUP_ENCRYPTION_KEY_FILE
  value: {{ include "parley.backups.keyDir" . }}/encryption-key
{{- if $b.encryption.previousKeysKey }}
- name: BACKUP_PREVIOUS_KEYS_FILE
  value: {{ include "parley.backups.keyDir" . }}/previous-keys
{{- end }}
{{- end }}
{{- end }}

{{- define "parley.backups.volume" -}}
{{- if .Values.backups.enabled -}}
- name: backup-key
  secret:
    secretName: {{ include "parley.backups.secretName" . }}
    defaultMode: 0400
    items:
      - key: {{ .Values.backups.encryption.key }}
        path: encryption-key
      {{- with .Values.backups.encryption.previousKeysKey }}
      - key: {{ . }}
        path: previous-keys
      {{- end }}
{{- end }}
{{- end }}

{{- define "parley.backups.volumeMount" -}}
{{- if .Values.backups.enabled -}}
- name: backup-key
  mountPath: {{ include "parley.backups.keyDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
A PodDisruptionBudget that means something: one that lets a drain evict every pod at once is an
outage, and one that never lets a pod go blocks every node drain. `pods` is the fewest pods the
workload runs; percentages are checked as the eviction API rounds them (maxUnavailable up,
minAvailable up).
*/}}
{{- define "parley.validatePdb" -}}
{{- $pods := int .pods -}}
{{- range $field := list "maxUnavailable" "minAvailable" -}}
{{- $value := index $.pdb $field -}}
{{- if not (kindIs "invalid" $value) -}}
{{- $count := 0 -}}
{{- if kindIs "string" $value -}}
{{- $percent := int (trimSuffix "%" $value) -}}
{{- $count = int (div (add (mul $percent $pods) 99) 100) -}}
{{- else -}}
{{- $count = int $value -}}
{{- end -}}
{{- if and (eq $field "maxUnavailable") (gt $count $pods) -}}
{{- fail (printf "%s.maxUnavailable (%v) is above the %d %s: set at most %d" $.path $value $pods $.what (max 1 (sub $pods 1))) -}}
{{- end -}}
{{- if and (eq $field "maxUnavailable") (gt $pods 1) (eq $count $pods) -}}
{{- fail (printf "%s.maxUnavailable (%v) would let one drain evict all %d %s at once: set at most %d" $.path $value $pods $.what (sub $pods 1)) -}}
{{- end -}}
{{- if and (eq $field "maxUnavailable") (eq $count 0) -}}
{{- fail (printf "%s.maxUnavailable (%v) never lets a pod be evicted, so every node drain blocks: set at least 1" $.path $value) -}}
{{- end -}}
{{- if and (eq $field "minAvailable") (ge $count $pods) -}}
{{- fail (printf "%s.minAvailable (%v) keeps all %d %s, so every node drain blocks: set at most %d, or use maxUnavailable" $.path $value $pods $.what (max 0 (sub $pods 1))) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/*
The ingress controller the chart configures, as JSON: its project's name, the IngressClass its Helm
chart installs by default and that class's spec.controller, the other controller that uses the same
class name, and the namespace its install docs use.
*/}}
{{- define "parley.ingress.controller" -}}
{{- if eq .Values.ingress.controller "haproxy" -}}
{{- dict "name" "HAProxy Kubernetes Ingress Controller" "defaultClass" "haproxy" "ingressClassController" "haproxy.org/ingress-controller/haproxy" "lookalike" "HAProxy Ingress (haproxy-ingress.github.io)" "namespace" "haproxy-controller" | toJson -}}
{{- else -}}
{{- dict "name" "F5 NGINX Ingress Controller" "defaultClass" "nginx" "ingressClassController" "nginx.org/ingress-controller" "lookalike" "the retired community ingress-nginx" "namespace" "nginx-ingress" | toJson -}}
{{- end -}}
{{- end }}

{{/*
The namespace selector of the ingress controller that the API's NetworkPolicy lets in, as JSON, or
"" for none: networkPolicy.ingressNamespaceSelector, or when that is null and an Ingress is
rendered, the namespace of the controller's usual install.
*/}}
{{- define "parley.np.ingressNamespaceSelector" -}}
{{- $selector := .Values.networkPolicy.ingressNamespaceSelector -}}
{{- if not (kindIs "invalid" $selector) -}}
{{- toJson $selector -}}
{{- else if .Values.ingress.enabled -}}
{{- $edge := include "parley.ingress.controller" . | fromJson -}}
{{- dict "matchLabels" (dict "kubernetes.io/metadata.name" $edge.namespace) | toJson -}}
{{- end -}}
{{- end }}
