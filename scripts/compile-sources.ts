/**
 * src/ compiled as `npm run build` lays out dist/ (esbuild, the transform tsx applies), for the
 * processes the test run and the bench start: a deployed node runs compiled JavaScript, and tsx
 * costs every process start-up CPU and a wake-up each second. `out` is a directory of the
 * repository's root, so that paths relative to a module (web/dist, build/Release, package.json)
 * resolve as from src/.
 */
import { cpSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { buildSync } from "esbuild";

/** The options both the sources and the bench's own scripts are compiled with. */
export const COMPILE_OPTIONS = { format: "esm", platform: "node", target: "node20", logLevel: "error" } as const;

/** Compiles `repo`/src into `out`, `.mjs` files copied as they are. */
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
