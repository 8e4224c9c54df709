import { defineConfig } from 'vitest/config';

// One `npm test` runs every workspace's suite; each workspace keeps its own config beside its code.
export default defineConfig({
  test: {
    projects: ['*/vitest.config.ts'],
  },
});
