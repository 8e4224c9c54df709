// `pulumi up` entry point: validate the stack's configuration, then build Parley from it.
import { loadStackConfig, readSecretOverrides } from './src/config.js';
import { deployParley } from './src/program.js';

const parley = deployParley(loadStackConfig(), readSecretOverrides());

export const {
  hostname,
  url,
  namespace,
  attachmentsBucket,
  backupsBucket,
  serviceRoleArn,
  storageKeyArn,
  secretName,
  backupKeySecret,
  releaseStatus,
  mysqlWriterHost,
  mysqlReaderHost,
  redisUrl,
} = parley.outputs;
