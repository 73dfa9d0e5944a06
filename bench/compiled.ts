/**
 * The bench's child nodes on compiled JavaScript, as a deployed node runs (`npm run build`), not
 * under `--import tsx`: tsx's esbuild service wakes about once a second in every process, which
 * an idle node's CPU or a delivery's would count. src/ (scripts/compile-sources.ts) and the named
 * bench scripts are compiled once per bench process into a directory of the repository's root; it
 * is removed when the process exits.
 */
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSync } from "esbuild";
import { COMPILE_OPTIONS, compileSources } from "../scripts/compile-sources.js";

const PREFIX = ".bench-build-";
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

function build(repo: string): string {
  // A build a killed bench left behind.
  for (const name of readdirSync(repo)) {
    const pid = Number(name.slice(PREFIX.length));
    if (name.startsWith(PREFIX) && Number.isSafeInteger(pid) && !running(pid))
      rmSync(join(repo, name), { recursive: true, force: true });
  }
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
