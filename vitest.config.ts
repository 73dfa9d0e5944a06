import { readFileSync, readdirSync } from "node:fs";
import { defineConfig } from "vitest/config";
import { LongestFirst } from "./test/sequencer.js";

/**
 * Tests that assert a latency a person would notice (Ctrl-C during a flood shows the prompt
 * within 1 s), or that need the screen thread (nice 10) to get a core (a lagging viewer's
 * screens): they run after the rest of the suite, one at a time, so that the test files beside
 * them do not decide them (docs/benchmarks.md, "The test suite").
 */
const ALONE = [
  "test/web/ui-terminal-flood.test.ts",
  // Its screens; the tests of bytes without a screen are screen-lag-bytes, in the pool.
  "test/screen/screen-lag.test.ts",
  // Compares honest p99 beside hostile clients with the same run's honest-only phase: a neighbour
  // file starting between the two phases decided it (docs/security.md, Fuzzing).
  "test/security/hostile-nemesis.test.ts",
  // Its worst /healthz and echo during 100 MB downloads: in the pool, a neighbour's burst of
  // processes took one probe past the bound now and then (docs/benchmarks.md, "The test suite").
  "test/security/loop-isolation.test.ts",
];

/**
 * Files that mostly wait: a 30 s measurement of an idle gateway, Redis commands counted over
 * idle windows, grace periods and timeouts of seconds, the nemeses' gaps between faults. The
 * first sixteen used at most 35% of a core over their run (docs/benchmarks.md, "The test
 * suite"). `npm test` runs them in a vitest of their own beside the other two workers
 * (scripts/test.sh), so that their waits do not hold a worker.
 */
const QUIET = [
  "test/server/idle-cpu.test.ts",
  "test/cluster/idle-node.test.ts",
  "test/sessions/terminal-process.test.ts",
  "test/sessions/terminate-escalation.test.ts",
  "test/sessions/holder-stops.test.ts",
  "test/cluster/redis-subscriber.test.ts",
  "test/client/control-leases.test.ts",
  "test/client/resume.test.ts",
  "test/mcp/tools.test.ts",
  "test/cluster/nemesis.test.ts",
  "test/server/nemesis-single.test.ts",
  "test/plugins/agent-room.test.ts",
  "test/server/fd-limit.test.ts",
  "test/cluster/forwarded-lease.test.ts",
  "test/cluster/adversary-regressions.test.ts",
  // 150 writer threads closed as they start, 4 s of its 14 s in waits: 27% of a core.
  "test/log/writer-thread-close.test.ts",
  // Busier (38-66% of a core, children included), none timing-bound: the files above leave this
  // lane some 350 s shorter than the other two, and these shorten those by about their time over
  // two. Busier files beside the workers slowed both (docs/benchmarks.md, "The test suite").
  "test/server/disk-full.test.ts",
  "test/agents/held-agent-restart.test.ts",
  "test/server/sessions-http.test.ts",
  "test/cluster/mirror-sweep.test.ts",
  "test/agents/log-room.test.ts",
  "test/agents/real-agents.test.ts",
  "test/client/faults.test.ts",
  "test/plugins/lifecycle.test.ts",
  // 23 s of its 29 s waiting out keep-alive and linger timers; 6 s holding a core on purpose.
  "test/server/connection-close.test.ts",
];

/**
 * The test files under `dir`, not looking into node_modules (test/agents/packages has the agents
 * the real-agent tests run: some 100,000 files).
 */
function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return entry.name === "node_modules" ? [] : testFiles(path);
    return entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

/** Files shorter than this (seconds, test/durations.json) share their worker's process. */
const SHARED_BELOW_S = 8;

/**
 * Files that share their worker's process and loaded modules, file after file (`isolate: false`):
 * a process and its imports per file cost ~1 s of a worker (docs/benchmarks.md, "The test
 * suite"). Only short files: not those that mock modules, spy or fake timers, not the browser
 * tests, not a file the durations do not list. The long ones, which hold the timing-bound tests
 * and the big heaps, keep a process each.
 */
const durations = JSON.parse(readFileSync("test/durations.json", "utf8")) as Record<string, number>;
const SHARED = testFiles("test").filter(
  (f) =>
    (durations[f] ?? Infinity) < SHARED_BELOW_S &&
    !f.startsWith("test/web/ui-") &&
    !QUIET.includes(f) &&
    !/\bvi\.(mock|doMock|spyOn|stubGlobal|stubEnv|useFakeTimers)\(/.test(readFileSync(f, "utf8")),
);

/**
 * Test files at once. Two: the suite keeps two cores busy, and a third worker failed
 * timing-bound tests (docs/benchmarks.md, "The test suite"). SWITCHBOARD_TEST_WORKERS overrides
 * it, to measure another count.
 */
const WORKERS = Number(process.env["SWITCHBOARD_TEST_WORKERS"] ?? 2);

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
        // The latency tests run alone, after.
        test: {
          name: "suite",
          include: ["test/**/*.test.ts"],
          exclude: ["**/node_modules/**", ...ALONE, ...SHARED, ...QUIET],
          maxWorkers: WORKERS,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: "shared",
          include: SHARED.filter((f) => !ALONE.includes(f)),
          maxWorkers: WORKERS,
          isolate: false,
          sequence: { groupOrder: 0 },
        },
      },
      { extends: true, test: { name: "alone", include: ALONE, maxWorkers: 1, sequence: { groupOrder: 1 } } },
      // Beside the others under `npm test`; after them in a plain `vitest run`.
      { extends: true, test: { name: "quiet", include: QUIET, maxWorkers: 1, sequence: { groupOrder: 2 } } },
    ],
  },
});
