import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: 'service',
    include: ['src/**/*.test.ts', 'devstack/**/*.test.ts', 'bench/**/*.test.ts'],
    // Suites start their own MariaDB/Redis/S3 stacks; starting several at once on 2 cores is fine,
    // but generous hook timeouts absorb a slow first `mariadb-install-db`.
    hookTimeout: 120_000,
    testTimeout: 60_000,
    teardownTimeout: 60_000,
    pool: 'forks',
  },
});
