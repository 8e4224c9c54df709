{{/* One StatefulSet template for the MySQL primary and the replicas. Args: root, role. */}}
{{- define "parley.mysql.statefulset" -}}
{{- $root := .root -}}
{{- $role := .role -}}
{{- $component := ternary "mysql-primary" "mysql-replica" (eq $role "primary") -}}
{{- $ctx := dict "root" $root "component" $component -}}
{{- $name := include "parley.componentName" $ctx -}}
{{- $spec := ternary $root.Values.mysql.primary $root.Values.mysql.replicas (eq $role "primary") -}}
{{- $configMap := include "parley.componentName" (dict "root" $root "component" "mysql") -}}
{{- $secretsDir := include "parley.secretsDir" $root -}}
{{- $image := include "parley.imageRef" (dict "image" $root.Values.mysql.image "default" "" "path" "mysql.image") -}}
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ $name }}
  labels:
    {{- include "parley.labels" $ctx | nindent 4 }}
spec:
  serviceName: {{ $name }}-headless
  replicas: {{ ternary 1 $root.Values.mysql.replicas.count (eq $role "primary") }}
  podManagementPolicy: Parallel
  selector:
    matchLabels:
      {{- include "parley.selectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "parley.stableLabels" $ctx | nindent 8 }}
        app.kubernetes.io/database: mysql
      annotations:
        checksum/config: {{ include "parley.dataChecksum" (dict "root" $root "template" "mysql-configmap.yaml") }}
    spec:
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 999
        runAsGroup: 999
        fsGroup: 999
        seccompProfile:
          type: RuntimeDefault
      terminationGracePeriodSeconds: 60
      affinity:
        podAntiAffinity:
          # Keep the primary and its replicas on different nodes.
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    app.kubernetes.io/instance: {{ $root.Release.Name }}
                    app.kubernetes.io/database: mysql
      {{- with $root.Values.mysql.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.mysql.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      initContainers:
        - name: config
          image: {{ $image }}
          imagePullPolicy: {{ $root.Values.mysql.image.pullPolicy }}
          command: ["sh", "/config/server-id.sh"]
          env:
            - name: ROLE
              value: {{ $role }}
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            - name: HEADLESS
              value: {{ $name }}-headless
          resources:
            requests: { cpu: 10m, memory: 16Mi }
            limits: { memory: 32Mi }
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - { name: config, mountPath: /config, readOnly: true }
            - { name: conf-d, mountPath: /conf.d }
        {{- if ne $role "primary" }}
        # Seeds an empty data directory from the primary by CLONE (files/mysql-replica-seed.sh). It
        # runs mysqld with the main container's config and buffer pool, hence its resources.
        - name: seed
          image: {{ $image }}
          imagePullPolicy: {{ $root.Values.mysql.image.pullPolicy }}
          command: ["sh", "/config/replica-seed.sh"]
          env:
            - name: PARLEY_PRIMARY_HOST
              value: {{ include "parley.componentName" (dict "root" $root "component" "mysql") }}
          resources:
            {{- toYaml $spec.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - { name: data, mountPath: /var/lib/mysql }
            - { name: conf-d, mountPath: /etc/mysql/conf.d, readOnly: true }
            - { name: tmp, mountPath: /tmp }
            - { name: mysql-files, mountPath: /var/lib/mysql-files }
            - { name: config, mountPath: /config, readOnly: true }
            - { name: secrets, mountPath: {{ $secretsDir }}, readOnly: true }
        {{- end }}
      containers:
        - name: mysql
          image: {{ $image }}
          imagePullPolicy: {{ $root.Values.mysql.image.pullPolicy }}
          args: ["mysqld"]
          ports:
            - { name: mysql, containerPort: 3306, protocol: TCP }
          env:
            - name: MYSQL_ROOT_PASSWORD_FILE
              value: {{ $secretsDir }}/mysql-root-password
            # root only over the local socket: the app and migrations have their own users.
            - name: MYSQL_ROOT_HOST
              value: localhost
            - name: PARLEY_DATABASE
              value: {{ $root.Values.mysql.database | quote }}
            - name: PARLEY_USER
              value: {{ $root.Values.mysql.user | quote }}
            - name: PARLEY_MIGRATION_USER
              value: {{ $root.Values.mysql.migrationUser | quote }}
          startupProbe:
            exec:
              command: ["sh", "-c", "MYSQL_PWD=\"$(cat {{ $secretsDir }}/mysql-root-password)\" mysqladmin -uroot --protocol=socket ping"]
            periodSeconds: 5
            failureThreshold: 120
          livenessProbe:
            exec:
              command: ["sh", "-c", "MYSQL_PWD=\"$(cat {{ $secretsDir }}/mysql-root-password)\" mysqladmin -uroot --protocol=socket ping"]
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 6
          readinessProbe:
            exec:
              {{- if eq $role "primary" }}
              command: ["sh", "-c", "MYSQL_PWD=\"$(cat {{ $secretsDir }}/mysql-root-password)\" mysql -uroot --protocol=socket -e 'SELECT 1'"]
              {{- else }}
              # A replica serves reads only while both replication threads run.
              command: ["sh", "-c", "MYSQL_PWD=\"$(cat {{ $secretsDir }}/mysql-root-password)\" mysql -uroot --protocol=socket -e 'SHOW REPLICA STATUS\\G' | grep -c -E 'Replica_(IO|SQL)_Running: Yes' | grep -q 2"]
              {{- end }}
            periodSeconds: 5
            timeoutSeconds: 5
            failureThreshold: 3
          resources:
            {{- toYaml $spec.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - { name: data, mountPath: /var/lib/mysql }
            - { name: conf-d, mountPath: /etc/mysql/conf.d, readOnly: true }
            - { name: run, mountPath: /var/run/mysqld }
            - { name: tmp, mountPath: /tmp }
            - { name: mysql-files, mountPath: /var/lib/mysql-files }
            {{- if eq $role "primary" }}
            - name: config
              mountPath: /docker-entrypoint-initdb.d/10-primary-init.sh
              subPath: primary-init.sh
              readOnly: true
            {{- end }}
            - { name: secrets, mountPath: {{ $secretsDir }}, readOnly: true }
      volumes:
        - name: config
          configMap:
            name: {{ $configMap }}
            items:
              - { key: common.cnf, path: common.cnf }
              - { key: {{ $role }}.cnf, path: {{ $role }}.cnf }
              - { key: server-id.sh, path: server-id.sh }
              {{- if eq $role "primary" }}
              - { key: primary-init.sh, path: primary-init.sh }
              {{- else }}
              - { key: replica-seed.sh, path: replica-seed.sh }
              {{- end }}
        - { name: conf-d, emptyDir: {} }
        - { name: run, emptyDir: {} }
        - { name: tmp, emptyDir: {} }
        - { name: mysql-files, emptyDir: {} }
        - name: secrets
          secret:
            secretName: {{ include "parley.secretName" $root }}
            defaultMode: 0400
            items:
              - { key: mysql-root-password, path: mysql-root-password }
              - { key: mysql-replication-password, path: mysql-replication-password }
              {{- if eq $role "primary" }}
              - { key: mysql-password, path: mysql-password }
              - { key: mysql-migration-password, path: mysql-migration-password }
              {{- end }}
  persistentVolumeClaimRetentionPolicy:
    whenDeleted: Retain
    whenScaled: Retain
  volumeClaimTemplates:
    - metadata:
        name: data
        labels:
          {{- include "parley.selectorLabels" $ctx | nindent 10 }}
      spec:
        accessModes: [ReadWriteOnce]
        {{- with $spec.persistence.storageClass }}
        storageClassName: {{ . }}
        {{- end }}
        resources:
          requests:
            storage: {{ $spec.persistence.size }}
{{- end }}

{{/*
InnoDB buffer pool settings for one role, as [mysqld] lines. Args: spec (mysql.primary or
mysql.replicas), path (its name in values, for messages).

Unless set explicitly, the pool gets half of the container's memory limit. The limit is a hard cap
(the kernel kills mysqld past it) and the other half is mysqld's memory outside the pool, which
grows with load: each connection's thread stack and sort, join and read buffers (max_connections is
1000 and every API and worker pod opens a pool), performance_schema's instruments sized from
max_connections, the redo log buffer, binary log caches and in-memory temporary tables.

InnoDB rounds the pool size up to a whole number of chunks (innodb_buffer_pool_chunk_size, 128 MiB)
times innodb_buffer_pool_instances, whose default depends on the host, so a size derived from the
limit could grow past it. The chart sets the instances (one per GiB of pool, at most 8) and rounds
the size down to whole chunks per instance itself.
*/}}
{{- define "parley.mysql.bufferPool" -}}
{{- $chunk := 134217728 -}}
{{- $gib := 1073741824 -}}
{{- $bytes := 0 -}}
{{- if .spec.innodbBufferPoolSize -}}
{{- $bytes = include "parley.quantityBytes" (dict "value" .spec.innodbBufferPoolSize "path" (printf "%s.innodbBufferPoolSize" .path)) | int64 -}}
{{- else -}}
{{- $limit := dig "limits" "memory" "" (.spec.resources | default dict) -}}
{{- if not $limit -}}
{{- fail (printf "%s: set resources.limits.memory or innodbBufferPoolSize: the InnoDB buffer pool is sized from the memory limit (half of it)" .path) -}}
{{- end -}}
{{- $bytes = div (include "parley.quantityBytes" (dict "value" $limit "path" (printf "%s.resources.limits.memory" .path)) | int64) 2 -}}
{{- end -}}
{{- $instances := min 8 (max 1 (div $bytes $gib)) -}}
{{- $unit := mul $chunk $instances -}}
{{- $size := mul (div $bytes $unit) $unit -}}
{{- if lt $size $chunk -}}
{{- fail (printf "%s: an InnoDB buffer pool of %d bytes is less than one 128 MiB chunk: raise resources.limits.memory (the pool is half of it) or set innodbBufferPoolSize" .path $bytes) -}}
{{- end -}}
innodb_buffer_pool_size={{ $size }}
innodb_buffer_pool_instances={{ $instances }}
{{- end }}
