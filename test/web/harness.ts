/**
 * Browser-test plumbing: build the UI and drive Debian's Chromium with playwright-core (never a
 * downloaded browser). Pages reach the gateway through test/helpers/fault-proxy.ts, which can
 * cut every connection to simulate a network drop.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { chromium } from "playwright-core";
import type { Browser, Page } from "playwright-core";
import { TEST_RUN_DIR } from "../helpers/run-dir.js";
import { sleep } from "../helpers/sleep.js";

/** Debian's Chromium (apt), not a Playwright download. */
export const CHROMIUM_PATH = "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-gpu",
  "--no-first-run",
];

const run = promisify(execFile);

/** How long a file waits for the UI build another file started. */
const BUILD_WAIT_MS = 120_000;

/**
 * Bundles web/src into web/dist (what the gateway serves at `/`), once per test run, by the
 * first file that asks: the build empties web/dist, so a second one would pull the bundle from
 * under the pages of a file running beside it. Outside a vitest run it simply builds. A build
 * newer than everything it is made of stays (`npm run build` made it, as `.ci/run` does before
 * the tests): it held both workers 3-4 s at the start of a run.
 */
export async function buildWeb(): Promise<void> {
  const runDir = process.env[TEST_RUN_DIR];
  if (runDir === undefined) return build();
  const marker = join(runDir, "web-build");
  try {
    mkdirSync(marker);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    return awaitBuild(join(marker, "result"));
  }
  try {
    if (!webBuildCurrent()) await build();
    writeFileSync(join(marker, "result"), "ok");
  } catch (error) {
    writeFileSync(join(marker, "result"), String(error));
    throw error;
  }
}

const REPO = new URL("../..", import.meta.url).pathname;

async function build(): Promise<void> {
  await run(process.execPath, ["scripts/build-web.mjs"], { cwd: REPO });
}

/** What scripts/build-web.mjs builds web/dist from: the UI imports src/, esbuild reads tsconfig.json, xterm comes from the lockfile. */
const WEB_INPUTS = ["web/src", "src", "scripts/build-web.mjs", "tsconfig.json", "package-lock.json"];
/** The file scripts/build-web.mjs writes last: a build that has it finished. */
const WEB_LAST_WRITTEN = "index.html.gz";

/** Whether web/dist is a finished build newer than every file of WEB_INPUTS. */
function webBuildCurrent(): boolean {
  const dist = join(REPO, "web/dist");
  if (!existsSync(join(dist, WEB_LAST_WRITTEN))) return false;
  const built = Math.min(...mtimes(dist));
  return WEB_INPUTS.every((input) => Math.max(...mtimes(join(REPO, input))) < built);
}

/** The modification times (ms) of `path`, or of every file under it. */
function mtimes(path: string): number[] {
  if (!statSync(path).isDirectory()) return [statSync(path).mtimeMs];
  return readdirSync(path, { recursive: true, encoding: "utf8" }).flatMap((name) => {
    const stat = statSync(join(path, name));
    return stat.isDirectory() ? [] : [stat.mtimeMs];
  });
}

/** Waits for the result another file's build writes: "ok", or its error. */
async function awaitBuild(resultFile: string): Promise<void> {
  const deadline = Date.now() + BUILD_WAIT_MS;
  for (;;) {
    let result: string | undefined;
    try {
      result = readFileSync(resultFile, "utf8");
    } catch (error) {
      // Not written yet: the build is still running.
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    if (result === "ok") return;
    if (result !== undefined) throw new Error(`the web UI build in another test file failed: ${result}`);
    if (Date.now() > deadline) throw new Error(`the web UI build did not finish in ${BUILD_WAIT_MS} ms`);
    await sleep(200);
  }
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/** The UI's read-only debug hook (web/src/app.ts `exposeDebug`). */
export interface DebugView {
  kind: "terminal" | "agent";
  session: string;
  restored: boolean;
  control?: string;
  cols?: number;
  rows?: number;
  lastSeq: number;
  ended?: string | null;
  /** Which xterm buffer is shown: `normal`, or `alternate` (a full-screen program). */
  screen?: "normal" | "alternate";
  text?: string;
  runs?: { runId: string; status: string; prompt: string | null; text: string }[];
}

export function debugView(page: Page): Promise<DebugView | null> {
  return page.evaluate(
    () => (window as unknown as { __switchboard?: { view(): unknown } }).__switchboard?.view() ?? null,
  ) as Promise<DebugView | null>;
}

/** The terminal's whole buffer as text (wrapped lines joined). */
export async function terminalText(page: Page): Promise<string> {
  return (await debugView(page))?.text ?? "";
}

/** Waits until the terminal's text satisfies `test`. */
export async function waitForTerminal(
  page: Page,
  test: (text: string) => boolean,
  timeoutMs = 15_000,
  what = "terminal text",
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let text = "";
  while (Date.now() < deadline) {
    text = await terminalText(page);
    if (test(text)) return text;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}; the terminal shows:\n${text.slice(-2000)}`);
}
