import { startDevstack, type Devstack, type DevstackOptions } from '../../devstack/index.js';
import { loadConfig, type Config } from '../config.js';
import { runMigrations } from '../db/migrate.js';
import { createLogger } from '../platform/logger.js';

export interface TestStack {
  stack: Devstack;
  config: Config;
  env: Record<string, string>;
}

/** Test-wide defaults; a suite may override any of them. */
export const TEST_ENV = {
  NODE_ENV: 'test',
  LOG_LEVEL: 'silent',
  HOST: '127.0.0.1',
  PORT: '0',
  MANAGEMENT_PORT: '0',
  WORKER_HEALTH_PORT: '0',
  READINESS_TIMEOUT_MS: '1000',
  SHUTDOWN_GRACE_MS: '5000',
};

/** A suite's own devstack with the schema migrated, and the service config that points at it. */
export async function startTestStack(
  options: DevstackOptions = {},
  overrides: Record<string, string> = {},
): Promise<TestStack> {
  const stack = await startDevstack(options);
  try {
    const env = { ...TEST_ENV, ...stack.env(), ...overrides };
    const config = loadConfig(env, 'api');
    await runMigrations(config.mysql, createLogger({ ...config, logLevel: 'silent' }, 'migrate'));
    return { stack, config, env };
  } catch (error) {
    await stack.stop();
    throw error;
  }
}
