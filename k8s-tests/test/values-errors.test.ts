/**
 * A wrong value must stop `helm template` (and so `helm install`) with a message that names it.
 */
import { describe, expect, it } from 'vitest';
import { scenarioFile } from '../lib/objects.js';
import { HelmError, renderChartText } from '../lib/render.js';

async function failure(setValues: Record<string, string>, files: string[] = []): Promise<string> {
  try {
    await renderChartText(files, setValues);
  } catch (error) {
    if (error instanceof HelmError) return error.stderr;
    throw error;
  }
  throw new Error(`helm template accepted ${JSON.stringify(setValues)}`);
}

describe('helm template rejects wrong values with a clear message', () => {
  it.each([
    [{ 'api.replica': '2' }, "additional properties 'replica' not allowed"],
    [{ 'ingress.controller': 'nginx' }, "value must be one of 'nginx-inc', 'haproxy'"],
    [{ 'image.tag': 'latest' }, '/image/tag'],
    [{ 'image.digest': 'sha256:abc' }, '/image/digest'],
    [{ 'config.logLevel': 'verbose' }, '/config/logLevel'],
    [{ 's3.attachmentsBucket': 'Not_A_Bucket' }, '/s3/attachmentsBucket'],
    [
      { 'api.autoscaling.targetCPUUtilizationPercentage': '150' },
      '/api/autoscaling/targetCPUUtilizationPercentage',
    ],
    [{ 'redis.external.url': 'http://cache:6379' }, '/redis/external/url'],
    [{ 'redis.maxmemory': '1tb' }, '/redis/maxmemory'],
    // The workers export the queue depth KEDA scales on: at zero replicas nothing would report it.
    [{ 'worker.keda.minReplicaCount': '0' }, '/worker/keda/minReplicaCount'],
    // longestJobSeconds × 1000 is WORKER_SHUTDOWN_GRACE_MS, which the service accepts from 1 ms to 1 h.
    [{ 'worker.longestJobSeconds': '0' }, "at '/worker/longestJobSeconds': minimum"],
    [
      { 'worker.longestJobSeconds': '3601', 'worker.terminationGracePeriodSeconds': '3700' },
      "at '/worker/longestJobSeconds': maximum",
    ],
    [{ 'worker.jobs.board': 'on' }, "value must be one of 'off', 'read-only', 'read-write'"],
    [{ 'worker.jobs.concurency.backups': '2' }, "additional properties 'concurency' not allowed"],
    [{ 'worker.jobs.concurrency.backup': '2' }, "additional properties 'backup' not allowed"],
    [{ 'worker.jobs.concurrency.attachments': '0' }, "at '/worker/jobs/concurrency/attachments': minimum"],
    // Whole seconds: × 1000 is the milliseconds the service reads.
    [{ 'worker.jobs.backoffSeconds': '0.5' }, '/worker/jobs/backoffSeconds'],
    [{ 'worker.jobs.backoffMs': '2000' }, "additional properties 'backoffMs' not allowed"],
    [{ 'worker.heartbeatSeconds': '0' }, "at '/worker/heartbeatSeconds': minimum"],
    [{ 'gateway.parentRefs[0].sectionname': 'https' }, "additional properties 'sectionname' not allowed"],
    [{ 'metrics.prometheusRule.jobFailureRatio': '0' }, "at '/metrics/prometheusRule/jobFailureRatio'"],
    [
      { 'metrics.prometheusRule.jobFailureRatio': '2' },
      "at '/metrics/prometheusRule/jobFailureRatio': maximum",
    ],
    // BACKUP_SCHEDULE is a cron pattern, BACKUP_KEEP and BACKUP_COMPRESSION_LEVEL bounded as the service bounds them.
    [{ 'backups.schedule': 'daily' }, '/backups/schedule'],
    [{ 'backups.keep': '0' }, '/backups/keep'],
    [{ 'backups.compressionLevel': '10' }, '/backups/compressionLevel'],
    [{ 'backups.encryption.secretName': 'x' }, "additional properties 'secretName' not allowed"],
    [
      { 'metrics.prometheusRule.replicaLagUnknownFor': '5min' },
      '/metrics/prometheusRule/replicaLagUnknownFor',
    ],
    // What a browser sends as Origin, exactly: the service would refuse to start on anything else.
    [
      { 'config.realtime.allowedOrigins[0]': 'https://chat.example.com/' },
      '/config/realtime/allowedOrigins/0',
    ],
    [
      { 'config.realtime.allowedOrigins[0]': 'https://chat.example.com:443' },
      '/config/realtime/allowedOrigins/0',
    ],
    [
      { 'config.realtime.allowedOrigins[0]': 'https://Chat.example.com' },
      '/config/realtime/allowedOrigins/0',
    ],
    [
      { 'config.realtime.allowedOrigins': 'https://a.example\\,https://b.example' },
      '/config/realtime/allowedOrigins',
    ],
    [{ 'config.realtime.heartbeatMs': '0' }, "at '/config/realtime/heartbeatMs': minimum"],
    [{ 'config.realtime.drainWindowMs': '600001' }, "at '/config/realtime/drainWindowMs': maximum"],
    [{ 'config.realtime.heartbeatMS': '1000' }, "additional properties 'heartbeatMS' not allowed"],
    [{ 'config.leaderboards.pointsPerMessage': '2' }, "additional properties 'pointsPerMessage' not allowed"],
    [{ 'config.leaderboards.flushIntervalMs': '99' }, "at '/config/leaderboards/flushIntervalMs': minimum"],
    // A Gateway API duration has at most five digits per unit.
    [{ 'gateway.websocketTimeoutSeconds': '100000' }, "at '/gateway/websocketTimeoutSeconds': maximum"],
    // DNS needs its peers and ports: null drops the key, which the schema requires.
    [{ 'networkPolicy.dns.peers': 'null' }, "missing property 'peers'"],
    [
      { 'networkPolicy.dns.peers[0].ipblock.cidr': '169.254.20.10/32' },
      "additional properties 'ipblock' not allowed",
    ],
    [{ 'networkPolicy.dns.ports[0].protocol': 'ICMP' }, "at '/networkPolicy/dns/ports/0/protocol'"],
    [
      { 'networkPolicy.externalDataPeers[0].namespaceSelector.matchLabel.team': 'data' },
      "additional properties 'matchLabel' not allowed",
    ],
    [
      { 'networkPolicy.ingressNamespaceSelector.matchLabel.team': 'edge' },
      "additional properties 'matchLabel' not allowed",
    ],
  ])('schema: %o', async (values, message) => {
    expect(await failure(values)).toContain(message);
  });

  it.each([
    [
      { 'ingress.enabled': 'true', 'gateway.enabled': 'true' },
      'ingress.enabled and gateway.enabled are exclusive',
    ],
    // The default IngressClass names are ambiguous: `nginx` is also the retired community
    // ingress-nginx's, `haproxy` also HAProxy Ingress's. Guessing could hand the Ingress to a
    // controller that ignores its annotations.
    [{ 'ingress.enabled': 'true' }, 'ingress.className is required with ingress.enabled'],
    [
      { 'ingress.enabled': 'true' },
      'F5 NGINX Ingress Controller installs IngressClass `nginx` (controller nginx.org/ingress-controller)',
    ],
    [
      { 'ingress.enabled': 'true', 'ingress.controller': 'haproxy' },
      'HAProxy Kubernetes Ingress Controller installs IngressClass `haproxy` (controller haproxy.org/ingress-controller/haproxy)',
    ],
    [{ 'worker.keda.enabled': 'true' }, 'worker.keda.enabled and worker.autoscaling.enabled are exclusive'],
    [{ 'mysql.enabled': 'false' }, 'mysql.enabled=false needs mysql.external.writerHost'],
    [
      { 'mysql.enabled': 'false', 'mysql.external.writerHost': 'db' },
      'mysql.enabled=false needs secrets.existingSecret',
    ],
    [
      { 'redis.enabled': 'false' },
      'redis.enabled=false needs redis.external.url or redis.external.sentinels',
    ],
    [{ 'api.pdb.minAvailable': '2' }, 'api.pdb: set minAvailable or maxUnavailable, not both'],
    [
      { 'api.autoscaling.minReplicas': '12' },
      'api.autoscaling.minReplicas (12) is greater than maxReplicas (10)',
    ],
    [{ 'api.terminationGracePeriodSeconds': '20' }, 'api.terminationGracePeriodSeconds (20) must exceed'],
    // The socket drain (window + 5 s close handshake) outlasts the HTTP grace: it sets the bound.
    [
      { 'config.realtime.drainWindowMs': '40000' },
      'api.terminationGracePeriodSeconds (45) must exceed api.preStopSleepSeconds + the in-app drain (55 s)',
    ],
    [
      { 'config.realtime.drainWindowMs': '40000' },
      'config.realtime.drainWindowMs + 5 s close handshake (45000 ms, sockets)',
    ],
    [
      { 'worker.terminationGracePeriodSeconds': '60' },
      'worker.terminationGracePeriodSeconds (60) must be at least worker.longestJobSeconds + 66 s (366)',
    ],
    // Above the longest job is not enough: the hand-back, the queues, S3, Redis, MySQL and the
    // management server close after it.
    [
      { 'worker.terminationGracePeriodSeconds': '365' },
      'worker.terminationGracePeriodSeconds (365) must be at least worker.longestJobSeconds + 66 s (366)',
    ],
    // An idle socket carries only the heartbeat: the edge must outlast two of them.
    [
      { 'ingress.enabled': 'true', 'ingress.className': 'nginx', 'config.realtime.heartbeatMs': '1800001' },
      'ingress.websocketTimeoutSeconds (3600) must be at least twice config.realtime.heartbeatMs (1800001 ms)',
    ],
    [
      {
        'gateway.enabled': 'true',
        'gateway.websocketTimeoutSeconds': '60',
        'config.realtime.heartbeatMs': '30001',
      },
      'gateway.websocketTimeoutSeconds (60) must be at least twice config.realtime.heartbeatMs (30001 ms)',
    ],
    [{ 'redis.replicas': '1' }, 'redis.sentinel.quorum (2) cannot exceed redis.replicas (1)'],
    // Each pod runs a Sentinel: the count and quorum decide whether a failover can ever happen.
    [{ 'redis.replicas': '2' }, 'redis.replicas (2) must be odd'],
    [{ 'redis.replicas': '4', 'redis.sentinel.quorum': '3' }, 'redis.replicas (4) must be odd'],
    [
      { 'redis.sentinel.quorum': '1' },
      'redis.sentinel.quorum (1) must be at least a majority of the 3 Sentinels (2)',
    ],
    [
      { 'redis.replicas': '5', 'redis.sentinel.quorum': '2' },
      'redis.sentinel.quorum (2) must be at least a majority of the 5 Sentinels (3)',
    ],
    [{ 'redis.sentinel.quorum': '3' }, 'redis.sentinel.quorum (3) must be below redis.replicas (3)'],
    // Without a bound Redis grows until the kernel kills it, instead of refusing writes.
    [
      { 'redis.resources.limits.memory': 'null' },
      'redis.maxmemory is not set and redis.resources.limits.memory is empty',
    ],
    [
      { 'redis.maxmemory': '0' },
      'redis.maxmemory (0) must be above 0 and below redis.resources.limits.memory (512Mi)',
    ],
    [
      { 'redis.maxmemory': '1gb' },
      'redis.maxmemory (1gb) must be above 0 and below redis.resources.limits.memory (512Mi)',
    ],
    [{ 'redis.resources.limits.memory': '512m' }, "redis.resources.limits.memory (512m): 'm' is millibytes"],
    [
      { 'metrics.podMonitor.enabled': 'true', 'metrics.serviceMonitor.enabled': 'true' },
      'would scrape every pod twice',
    ],
    [{ 'redis.image.tag': 'latest' }, '/redis/image/tag'],
    // An empty tag would render `image: redis:` and fail as a YAML parse error far from the cause.
    [{ 'redis.image.tag': '' }, "at '/redis/image/tag': minLength"],
    [{ 'mysql.image.tag': '' }, "at '/mysql/image/tag': minLength"],
    // The InnoDB buffer pool is half the memory limit: with no limit the chart cannot size it.
    [
      { 'mysql.primary.resources.limits': 'null' },
      'mysql.primary: set resources.limits.memory or innodbBufferPoolSize',
    ],
    [
      { 'mysql.replicas.resources.limits.memory': 'null' },
      'mysql.replicas: set resources.limits.memory or innodbBufferPoolSize',
    ],
    [
      { 'mysql.primary.resources.limits.memory': '200Mi' },
      'mysql.primary: an InnoDB buffer pool of 104857600 bytes is less than one 128 MiB chunk',
    ],
    [{ 'mysql.replicas.innodbBufferPoolSize': 'lots' }, "at '/mysql/replicas/innodbBufferPoolSize'"],
    [{ 'minio.enabled': 'true', 'minio.image.tag': '' }, "at '/minio/image/tag': minLength"],
  ])('cross-field rule: %o', async (values, message) => {
    expect(await failure(values)).toContain(message);
  });

  // The scripts and settings are written for 8.4, and replicas CLONE the primary, which works only
  // within one series: an exact 8.4 LTS or 9.x release.
  it.each(['8.0.39', '8.3.0', '5.7.44', '8.4', 'lts', 'innovation', 'latest', '10.0.0'])(
    'refuses the MySQL tag %s',
    async (tag) => {
      expect(await failure({ 'mysql.image.tag': tag })).toContain(
        `at '/mysql/image/tag': '${tag}' does not match pattern`,
      );
    },
  );

  it.each(['8.4.6', '8.4.10', '8.4.6-oracle', '8.4.6-oraclelinux9', '9.4.0', '9.5.0-oraclelinux9'])(
    'accepts the MySQL tag %s',
    async (tag) => {
      await expect(renderChartText([], { 'mysql.image.tag': tag })).resolves.toContain(`image: mysql:${tag}`);
    },
  );

  // A NetworkPolicy rule with no peers or no ports allows every peer or every port.
  it.each(['peers', 'ports'])('schema: an empty networkPolicy.dns.%s', async (key) => {
    const error = await renderChartText(
      [],
      {},
      { extraArgs: ['--set-json', `networkPolicy.dns.${key}=[]`] },
    ).then(
      () => '',
      (caught: unknown) => (caught instanceof HelmError ? caught.stderr : String(caught)),
    );
    expect(error).toContain(`at '/networkPolicy/dns/${key}': minItems`);
  });

  it('refuses an Ingress annotation that would replace one the chart sets', async () => {
    const message = await failure({ 'ingress.annotations.nginx\\.org/proxy-read-timeout': '60s' }, [
      scenarioFile('default'),
    ]);
    expect(message).toContain('ingress.annotations.nginx.org/proxy-read-timeout is set by the chart');
  });

  it('refuses a session-affinity annotation on the Ingress', async () => {
    const message = await failure({ 'ingress.annotations.nginx\\.com/sticky-cookie-services': 'x' }, [
      scenarioFile('default'),
    ]);
    expect(message).toContain('session affinity is not supported');
  });
});

describe('a PodDisruptionBudget must let drains through without taking a workload down', () => {
  it.each([
    // api runs at least autoscaling.minReplicas (3) pods.
    [{ 'api.pdb.maxUnavailable': '4' }, 'api.pdb.maxUnavailable (4) is above the 3 api pods'],
    [{ 'api.pdb.maxUnavailable': '3' }, 'would let one drain evict all 3 api pods'],
    [
      { 'api.pdb.maxUnavailable': 'null', 'api.pdb.minAvailable': '100%' },
      'api.pdb.minAvailable (100%) keeps all 3 api pods',
    ],
    [{ 'api.pdb.maxUnavailable': '0' }, 'never lets a pod be evicted, so every node drain blocks'],
    [
      { 'worker.pdb.maxUnavailable': 'null', 'worker.pdb.minAvailable': '2' },
      'worker.pdb.minAvailable (2) keeps all 2 worker pods',
    ],
    [
      { 'worker.autoscaling.enabled': 'false', 'worker.replicas': '1', 'worker.pdb.maxUnavailable': '2' },
      'worker.pdb.maxUnavailable (2) is above the 1 worker pods',
    ],
    [{ 'mysql.pdb.maxUnavailable': '2' }, 'would let one drain evict all 2 MySQL replicas'],
    [
      { 'redis.pdb.maxUnavailable': '2' },
      'and with them the Sentinel majority (2) that a failover needs: at most 1',
    ],
  ])('%j', async (values, message) => {
    expect(await failure(values)).toContain(message);
  });

  it('accepts one pod at a time, and a single pod that may go', async () => {
    await expect(renderChartText([], { 'api.pdb.maxUnavailable': '2' })).resolves.toContain(
      'PodDisruptionBudget',
    );
    await expect(
      renderChartText([], {
        'worker.autoscaling.enabled': 'false',
        'worker.replicas': '1',
        'worker.pdb.maxUnavailable': '1',
      }),
    ).resolves.toContain('PodDisruptionBudget');
  });
});
