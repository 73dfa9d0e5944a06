import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The environment variable naming the directory the run's sources were compiled to (test/global-setup.ts). */
export const COMPILED_SOURCES = "SWITCHBOARD_TEST_COMPILED";

const REPO = fileURLToPath(new URL("../..", import.meta.url));

/**
 * The command that runs the CLI from the sources: under vitest, `node <main.js>` bundled when the
 * run began (scripts/bundle-sources.mjs), which the suite's hundreds of CLI and gateway children
 * start on a fraction of the CPU `--import tsx` takes (docs/benchmarks.md, "The test suite");
 * elsewhere (`npm run nemesis`), `node --import tsx src/cli/main.ts`.
 */
export function cliCommand(): string[] {
  const dir = process.env[COMPILED_SOURCES];
  if (dir === undefined) return [process.execPath, "--import", "tsx", join(REPO, "src", "cli", "main.ts")];
  return [process.execPath, join(dir, "cli", "main.js")];
}
