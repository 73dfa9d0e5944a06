/**
 * src/ compiled for the processes the test run and the bench start: a deployed node runs compiled
 * JavaScript, and tsx costs every process start-up CPU and a wake-up each second. `out` is a
 * directory of the repository's root laid out as dist/, so that paths relative to a module
 * (web/dist, build/Release, package.json) resolve as from src/.
 */
import { execFileSync } from "node:child_process";
import { cpSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSync } from "esbuild";

/** The options both the sources and the bench's own scripts are compiled with. */
export const COMPILE_OPTIONS = { format: "esm", platform: "node", target: "node20", logLevel: "error" } as const;

/**
 * Compiles `repo`/src into `out` file by file, as `npm run build` lays out dist/ (esbuild, the
 * transform tsx applies), `.mjs` files copied as they are: what the bench measures.
 */
export function compileSources(repo: string, out: string): void {
  const src = join(repo, "src");
  const sources = readdirSync(src, { recursive: true, encoding: "utf8" });
  buildSync({
    entryPoints: sources.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")).map((f) => join(src, f)),
    outdir: out,
    outbase: src,
    ...COMPILE_OPTIONS,
  });
  for (const file of sources.filter((f) => f.endsWith(".mjs"))) cpSync(join(src, file), join(out, file));
}

const BUNDLER = fileURLToPath(new URL("bundle-sources.mjs", import.meta.url));

/**
 * Bundles `repo`/src into `out` (scripts/bundle-sources.mjs): what the test run's children run, a
 * gateway's start on ~40% less CPU. esbuild's plugins, which the bundle needs, run only in its
 * async API, hence the child process.
 */
export function bundleSources(repo: string, out: string): void {
  execFileSync(process.execPath, [BUNDLER, repo, out], { stdio: "inherit" });
}
