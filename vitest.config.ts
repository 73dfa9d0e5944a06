import { defineConfig } from "vitest/config";
import { LongestFirst } from "./test/sequencer.js";

/**
 * Tests that assert a latency a person would notice (Ctrl-C during a flood shows the prompt
 * within 1 s; a lagging viewer gets its screen within LAG_SCREEN_WAIT_MS): they run after the
 * rest of the suite, one at a time, so that two other test files on 2 cores do not decide them.
 */
const ALONE = ["test/web/ui-terminal-flood.test.ts", "test/screen/screen-lag.test.ts"];

export default defineConfig({
  test: {
    // Builds the SDK package (switchboard-client) that the SDK's own tests load, and compiles src/
    // for the CLI and gateway processes the tests start.
    globalSetup: ["test/global-setup.ts"],
    // Per file: the clean-ups registered outside a test.
    setupFiles: ["test/setup-file.ts"],
    // Real processes, sockets and SQLite files: give slow CI machines room, but keep every
    // test bounded so a hang fails instead of stalling the suite.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    sequence: { sequencer: LongestFirst },
    projects: [
      {
        extends: true,
        // Two cores: a third worker made the whole run slower, not faster (docs/benchmarks.md,
        // "The test suite"). Each file its own process: files sharing one failed timing-bound
        // tests in whole runs (same section). The latency tests run alone, after.
        test: {
          name: "suite",
          include: ["test/**/*.test.ts"],
          exclude: ALONE,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      { extends: true, test: { name: "alone", include: ALONE, maxWorkers: 1, sequence: { groupOrder: 1 } } },
    ],
  },
});
