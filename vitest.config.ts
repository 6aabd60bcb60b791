import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: tfjs-wasm is single-threaded, so two workers keep both busy.
    maxWorkers: 2,
    // The CLI prints GitHub annotations inside a workflow run; the tests that want them set it themselves.
    env: { GITHUB_ACTIONS: '' },
  },
});
