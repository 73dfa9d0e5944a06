/**
 * The bench's child nodes on compiled JavaScript, as a deployed node runs (`npm run build`), not
 * under `--import tsx`: tsx's esbuild service wakes about once a second in every process, which
 * an idle node's CPU or a delivery's would count. src/ (scripts/compile-sources.ts) and the named
 * bench scripts are compiled once per bench process into a directory of the repository's root; it
 * is removed when the process exits. `bundledCommand` runs src/ bundled, as `npm run build` ships
 * the CLI (scripts/bundle-sources.mjs); `compiledCommand` file by file, as a library's import
 * loads dist/.
 */
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSync } from "esbuild";
import { COMPILE_OPTIONS, bundleSources, compileSources } from "../scripts/compile-sources.js";

const PREFIX = ".bench-build-";
/** Where the bundle goes: a directory of the repository's root, as the build's. */
const BUNDLE_PREFIX = ".bench-bundle-";
/** Where in the build the bench's scripts go (src/ is compiled to its root, as dist/ lays it out). */
const BENCH_DIR = "_bench";

/** Each checkout's build, by its directory. */
const builds = new Map<string, string>();

/** Whether the process named by a build directory's suffix still runs. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes the directories named `prefix<pid>` in `repo` whose bench no longer runs (killed). */
function removeLeftBehind(repo: string, prefix: string): void {
  for (const name of readdirSync(repo)) {
    const pid = Number(name.slice(prefix.length));
    if (name.startsWith(prefix) && Number.isSafeInteger(pid) && !running(pid))
      rmSync(join(repo, name), { recursive: true, force: true });
  }
}

function build(repo: string): string {
  removeLeftBehind(repo, PREFIX);
  const out = join(repo, `${PREFIX}${process.pid}`);
  compileSources(repo, out);
  const scripts = readdirSync(join(repo, "bench")).filter((f) => /^cluster-.*-(sio|floor|pty)\.ts$/.test(f));
  // The bench's own node scripts import packages only: any directory of the repository will do.
  buildSync({
    entryPoints: scripts.map((f) => join(repo, "bench", f)),
    outdir: join(out, BENCH_DIR),
    ...COMPILE_OPTIONS,
  });
  process.on("exit", () => rmSync(out, { recursive: true, force: true }));
  return out;
}

/**
 * The command line that runs `file` (a path in the checkout at `repo`: `src/…` or `bench/…`)
 * compiled: `[node, <build>/cli/main.js]` for `src/cli/main.ts`. `repo` defaults to this checkout.
 */
export function compiledCommand(file: string, checkout = fileURLToPath(new URL("..", import.meta.url))): string[] {
  const repo = resolve(checkout);
  const out = builds.get(repo) ?? build(repo);
  builds.set(repo, out);
  const path = file.replace(/\.ts$/, ".js");
  const js = path.startsWith("src/") ? join(out, relative("src", path)) : join(out, BENCH_DIR, relative("bench", path));
  if (!existsSync(js)) throw new Error(`${file} is not among the compiled files (${out})`);
  return [process.execPath, js];
}

/** Each checkout's bundle, by its directory. */
const bundles = new Map<string, string>();

/**
 * The command line that runs `file` (a file of src/ started by path: `src/cli/main.ts`,
 * `src/screen/screen-worker.ts`) bundled as `npm run build` ships it: `[node, <bundle>/cli/main.js]`.
 */
export function bundledCommand(file: string, checkout = fileURLToPath(new URL("..", import.meta.url))): string[] {
  const repo = resolve(checkout);
  let out = bundles.get(repo);
  if (out === undefined) {
    removeLeftBehind(repo, BUNDLE_PREFIX);
    const dir = join(repo, `${BUNDLE_PREFIX}${process.pid}`);
    bundleSources(repo, dir);
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
    bundles.set(repo, dir);
    out = dir;
  }
  const js = join(out, relative("src", file.replace(/\.ts$/, ".js")));
  if (!existsSync(js)) throw new Error(`${file} is not an entry of the bundle (${out})`);
  return [process.execPath, js];
}
