import { execFileSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundleSources } from "../scripts/compile-sources.js";
import { SEARCH_WORKER_ENV } from "../src/log/search/search-thread.js";
import { SCREEN_WORKER_ENV } from "../src/screen/screen-thread.js";
import { COMPILED_SOURCES } from "./helpers/compiled-cli.js";
import { TEST_RUN_DIR } from "./helpers/run-dir.js";

const REPO = fileURLToPath(new URL("..", import.meta.url));

/**
 * Once per test run, before any test file: builds the SDK package (packages/client,
 * `switchboard-client`), which test/client/sdk-docs.test.ts and package.test.ts load and which
 * two workers must not build at once (`tsc -b` only compares timestamps when nothing changed).
 */
function buildClientPackage(): void {
  const tsc = fileURLToPath(new URL("../node_modules/typescript/bin/tsc", import.meta.url));
  execFileSync(process.execPath, [tsc, "-b", "packages/client/tsconfig.json"], { cwd: REPO, stdio: "inherit" });
}

/** Free space a tmpfs must have to hold the run's directory (the suite's peak is under 2 GiB). */
const TMPFS_MIN_FREE = 4 * 1024 ** 3;

/**
 * Where runs make their directories: /dev/shm (tmpfs) when it is writable and has room, else the
 * temp dir. The tests' SQLite files and Redis directories are real files either way; on tmpfs an
 * fsync returns at once, where on a disk a gateway's start waited for several of them
 * (docs/benchmarks.md, "The test suite").
 */
function runsBase(): string {
  try {
    accessSync("/dev/shm", constants.W_OK);
    const fs = statfsSync("/dev/shm");
    if (fs.bavail * fs.bsize >= TMPFS_MIN_FREE) return "/dev/shm";
  } catch {
    // No /dev/shm here: the temp dir.
  }
  return tmpdir();
}

/**
 * Bundles src/ (scripts/compile-sources.ts) into a directory of the repository's root named after
 * the run; a dir left by a run that no longer exists (killed before its teardown) is removed.
 */
function compileRun(runDir: string): string {
  const bases = [runsBase(), tmpdir()];
  for (const name of readdirSync(REPO)) {
    const run = name.slice(".test-build-".length);
    if (name.startsWith(".test-build-") && !bases.some((base) => existsSync(join(base, run)))) {
      rmSync(join(REPO, name), { recursive: true, force: true });
    }
  }
  const out = join(REPO, `.test-build-${basename(runDir)}`);
  bundleSources(REPO, out);
  return out;
}

/**
 * Gives the run its own directory and its own TMPDIR inside it (the workers and the processes
 * they spawn inherit it), so what the run's tests leave in the temp dir is told apart from what
 * other runs on the machine leave: the teardown names it, then removes the whole directory.
 */
export default function setup(): () => void {
  // Each test project (vitest.config.ts) runs this; the run's first does the work for all.
  if (process.env[TEST_RUN_DIR] !== undefined) return () => undefined;
  buildClientPackage();
  const runDir = mkdtempSync(join(runsBase(), "sb-run-"));
  const tmp = join(runDir, "tmp");
  mkdirSync(tmp);
  const compiled = compileRun(runDir);
  process.env[TEST_RUN_DIR] = runDir;
  process.env[COMPILED_SOURCES] = compiled;
  process.env[SCREEN_WORKER_ENV] = join(compiled, "screen", "screen-worker.js");
  process.env[SEARCH_WORKER_ENV] = join(compiled, "log", "search", "search-worker.js");
  process.env["TMPDIR"] = tmp;
  return () => {
    rmSync(compiled, { recursive: true, force: true });
    // tsx keeps its compile cache for the CLI children in tsx-<uid>: a tool's cache, not a leak.
    const left = readdirSync(tmp).filter((name) => !name.startsWith("tsx-"));
    if (left.length > 0) {
      // What a directory holds (a gateway's data dir, a socket) names the test that left it.
      const named = left.slice(0, 20).map((name) => `${name} [${inside(join(tmp, name))}]`);
      console.warn(
        `tests left ${left.length} entries in the temp dir (now removed): ${named.join(", ")}; ` +
          "create them with tempDir() (test/helpers/tmp.ts) so they are removed after the test",
      );
    }
    rmSync(runDir, { recursive: true, force: true });
  };
}

function inside(path: string): string {
  try {
    return readdirSync(path, { recursive: true }).slice(0, 8).join(" ");
  } catch {
    return "not a directory";
  }
}
