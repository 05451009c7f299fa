import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // End-to-end tests start real sshd nodes and run real containers; give them room.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Two cores: more workers only make sshd and runc fight for CPU.
    maxWorkers: 2,
  },
});
