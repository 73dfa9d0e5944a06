/**
 * src/ compiled for the processes the test run and the bench start: a deployed node runs compiled
 * JavaScript, and tsx costs every process start-up CPU and a wake-up each second. `out` is a
 * directory of the repository's root, laid out as dist/ (scripts/bundle-sources.mjs), so that
 * paths relative to a module (web/dist, build/Release, package.json) resolve as from src/.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The options the bench's own scripts are compiled with (bench/compiled.ts). */
export const COMPILE_OPTIONS = { format: "esm", platform: "node", target: "node20", logLevel: "error" } as const;

const BUNDLER = fileURLToPath(new URL("bundle-sources.mjs", import.meta.url));

/** Bundles `repo`/src into `out`. esbuild's plugins, which the bundle needs, run only in its async API. */
export function compileSources(repo: string, out: string): void {
  execFileSync(process.execPath, [BUNDLER, repo, out], { stdio: "inherit" });
}
