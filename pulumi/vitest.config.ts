import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: 'pulumi',
    include: ['test/**/*.test.ts'],
    // The Pulumi runtime keeps its mock monitor in process-wide state: one fork per file keeps
    // scenarios from seeing each other's resources.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
