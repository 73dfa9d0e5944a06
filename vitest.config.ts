import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Builds the SDK package (switchboard-client) that the SDK's own tests load.
    globalSetup: ["test/global-setup.ts"],
    // Real processes, sockets and SQLite files: give slow CI machines room, but keep every
    // test bounded so a hang fails instead of stalling the suite.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Two cores: more workers than that only adds contention to timing-sensitive tests.
    maxWorkers: 2,
  },
});
