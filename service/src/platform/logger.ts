import { pino, type DestinationStream, type Logger } from 'pino';
import type { Config } from '../config.js';

export type { Logger };

/** JSON logs on stdout; every line carries the instance id, request lines also the request id. */
export function createLogger(
  config: Pick<Config, 'logLevel' | 'instanceId'>,
  process: 'api' | 'worker' | 'migrate',
  destination?: DestinationStream,
): Logger {
  return pino(
    {
      level: config.logLevel,
      base: { process, instance: config.instanceId },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.token'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
