import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import type { Browser, Page } from "playwright-core";
import { startGateway } from "../src/server/gateway.js";
import type { Gateway } from "../src/server/gateway.js";
import { createLogger } from "../src/server/ops/logger.js";
import { buildWeb, launchBrowser } from "../test/web/harness.js";
import { renderStandalone } from "./report.js";
import { fmt, median, percentile } from "./stats.js";
import type { BenchRow, BenchSection } from "./types.js";

/**
 * The web UI in Debian's Chromium: how long from page load until a 10,000-line
 * terminal is restored on screen, and the page's frame rate while a session it shows floods
 * output, against the same page's frame rate while that session is idle.
 */

const TOKEN = "bench-web-admin-token-0123456789abcdef";
/** Lines in the restored terminal. */
export const RESTORE_LINES = 10_000;
/** Page loads measured (the figure is their median; the first, cold one is not counted). */
export const RESTORE_ROUNDS = 7;
/** Frames are counted over this long, idle and flooding. */
export const FPS_WINDOW_MS = 3_000;
/** The flood: `seq 1 FLOOD_BATCH` (~49 KB, 10,000 lines) every FLOOD_PAUSE_S seconds, FLOOD_BATCHES times (~12 MB). */
export const FLOOD_BATCH = 10_000;
export const FLOOD_PAUSE_S = 0.02;
export const FLOOD_BATCHES = 250;
/** Goals: restored within this long of the page load… */
export const GOAL_RESTORE_MS = 1_500;
/** …at least this frame rate while flooding… */
export const GOAL_FLOOD_FPS = 30;
/** …and a bundle no larger than this, gzipped. */
export const GOAL_BUNDLE_GZIP_KIB = 200;
/** Nothing in this benchmark may take longer than this. */
const STEP_TIMEOUT_MS = 60_000;

const ROOT = new URL("..", import.meta.url).pathname;
const H = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };

async function post(gateway: Gateway, path: string, body: unknown): Promise<{ id: string }> {
  const res = await fetch(gateway.url + path, { method: "POST", headers: H, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string };
}

async function waitUntil(what: string, test: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`bench/web: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Milliseconds from navigation start until the terminal view says it is restored. */
async function restoreOnce(page: Page, base: string, id: string, round: number): Promise<number> {
  await page.goto(`${base}/?round=${round}#/s/${id}`);
  const handle = await page.waitForFunction(
    () => (document.querySelector(".terminal-view[data-restored=true]") ? performance.now() : false),
    undefined,
    { polling: "raf", timeout: STEP_TIMEOUT_MS },
  );
  const ms = (await handle.jsonValue()) as number;
  const text = (await page.evaluate(
    () => (window as unknown as { __switchboard: { view(): { text: string } } }).__switchboard.view().text,
  )) as string;
  if (!text.includes(`line ${RESTORE_LINES} of`))
    throw new Error("bench/web: the restored terminal lacks its last line");
  return ms;
}

/**
 * `requestAnimationFrame` callbacks per second over `windowMs`. Passed as source text: tsx
 * would wrap a named inner function in a helper that does not exist in the page.
 */
function framesPerSecond(page: Page, windowMs: number): Promise<number> {
  return page.evaluate(`new Promise((resolve) => {
    let frames = 0;
    const start = performance.now();
    const tick = (now) => {
      frames++;
      if (now - start < ${windowMs}) requestAnimationFrame(tick);
      else resolve((frames * 1000) / (now - start));
    };
    requestAnimationFrame(tick);
  })`) as Promise<number>;
}

export async function run(): Promise<BenchSection> {
  await buildWeb();
  const bundleName = readdirSync(join(ROOT, "web/dist")).find((f) => /^app-.*\.js$/.test(f));
  if (bundleName === undefined) throw new Error("bench/web: no web/dist/app-*.js after the build");
  const appJs = readFileSync(join(ROOT, "web/dist", bundleName));
  const bundle = { raw: appJs.length / 1024, gzip: gzipSync(appJs).length / 1024 };

  const dataDir = mkdtempSync(join(tmpdir(), "switchboard-bench-web-"));
  let gateway: Gateway | undefined;
  let browser: Browser | undefined;
  try {
    gateway = await startGateway({
      host: "127.0.0.1",
      port: 0,
      dataDir,
      token: TOKEN,
      logger: createLogger({ level: "silent" }),
    });
    const gw = gateway;
    browser = await launchBrowser();
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${gw.url}/#token=${TOKEN}`);
    await page.waitForSelector("[data-test=whoami]", { timeout: STEP_TIMEOUT_MS });

    // 1. Restore: a finished PTY session with 10,000 lines of output.
    const restored = await post(gw, "/v1/sessions", {
      command: [
        "seq",
        "-f",
        "line %g of the restore benchmark: some words to make it look like real output",
        "1",
        String(RESTORE_LINES),
      ],
      pty: true,
      cols: 120,
      rows: 40,
      name: "restore-bench",
    });
    await waitUntil("the restore session to exit", async () => {
      const s = (await (await fetch(`${gw.url}/v1/sessions/${restored.id}`, { headers: H })).json()) as {
        state: string;
      };
      return s.state !== "running";
    });
    const info = (await (await fetch(`${gw.url}/v1/sessions/${restored.id}`, { headers: H })).json()) as {
      head: number;
      outputBytes: number;
    };
    const restoreMs: number[] = [];
    for (let round = 0; round <= RESTORE_ROUNDS; round++) {
      const ms = await restoreOnce(page, gw.url, restored.id, round);
      if (round > 0) restoreMs.push(ms);
    }
    // The same page without a terminal: what loading the app alone costs.
    const shellMs: number[] = [];
    for (let round = 0; round < 3; round++) {
      await page.goto(`${gw.url}/?shell=${round}#/`);
      const handle = await page.waitForFunction(
        () => (document.querySelector(".main .row") ? performance.now() : false),
        undefined,
        { polling: "raf", timeout: STEP_TIMEOUT_MS },
      );
      shellMs.push((await handle.jsonValue()) as number);
    }

    // 2. Frame rate: the page shows a session that waits for a line, then floods.
    const flood = await post(gw, "/v1/sessions", {
      command: [
        "sh",
        "-c",
        `read go; i=0; while [ $i -lt ${FLOOD_BATCHES} ]; do i=$((i+1)); seq 1 ${FLOOD_BATCH}; sleep ${FLOOD_PAUSE_S}; done`,
      ],
      pty: true,
      cols: 120,
      rows: 40,
      name: "flood-bench",
    });
    // The benchmark holds control over HTTP, so the page watches as a viewer and the "go" can be typed here.
    await post(gw, `/v1/sessions/${flood.id}/control`, { action: "acquire" });
    await page.goto(`${gw.url}/?flood#/s/${flood.id}`);
    await page.waitForSelector(".terminal-view[data-restored=true]", { timeout: STEP_TIMEOUT_MS });
    const idleFps = await framesPerSecond(page, FPS_WINDOW_MS);
    const floodStart = performance.now();
    await post(gw, `/v1/sessions/${flood.id}/input`, { data: "\r" });
    await new Promise((r) => setTimeout(r, 300));
    const floodFps = await framesPerSecond(page, FPS_WINDOW_MS);
    // Does the page keep up? After the flood ends, how long until it shows the exit.
    let exitedAt = 0;
    await waitUntil("the flood to end", async () => {
      const s = (await (await fetch(`${gw.url}/v1/sessions/${flood.id}`, { headers: H })).json()) as { state: string };
      exitedAt = performance.now();
      return s.state !== "running";
    });
    await page.waitForSelector("[data-test=exit-summary]", { timeout: STEP_TIMEOUT_MS });
    const lagMs = Math.max(0, performance.now() - exitedAt);
    const floodSeconds = (exitedAt - floodStart) / 1000;
    const floodTotal = (await (await fetch(`${gw.url}/v1/sessions/${flood.id}`, { headers: H })).json()) as {
      outputBytes: number;
    };

    const restoreMedian = median(restoreMs);
    const restoreP90 = percentile(
      [...restoreMs].sort((a, b) => a - b),
      90,
    );
    const shellMedian = median(shellMs);
    const rows: BenchRow[] = [
      {
        measure: `page load → restored ${fmt(RESTORE_LINES)}-line terminal (${fmt(info.outputBytes / 1024)} KiB, ${fmt(info.head)} events), median of ${RESTORE_ROUNDS}`,
        ours: `${fmt(restoreMedian)} ms (p90 ${fmt(restoreP90)} ms)`,
        baseline: `page load → session list ${fmt(shellMedian)} ms`,
        ratio: (restoreMedian / shellMedian).toFixed(2),
        goal: `≤ ${fmt(GOAL_RESTORE_MS)} ms`,
        met: restoreMedian <= GOAL_RESTORE_MS,
      },
      {
        measure: `frame rate while the shown session floods (${fmt(floodTotal.outputBytes / 1e6, 1)} MB in ${fmt(floodSeconds, 1)} s)`,
        ours: `${fmt(floodFps, 1)} fps`,
        baseline: `same page, session idle ${fmt(idleFps, 1)} fps`,
        ratio: (floodFps / idleFps).toFixed(2),
        goal: `≥ ${GOAL_FLOOD_FPS} fps`,
        met: floodFps >= GOAL_FLOOD_FPS,
      },
      { measure: `flood ended → the page shows the exit (it kept up)`, ours: `${fmt(lagMs)} ms` },
      {
        measure: `bundle: web/dist/app-*.js`,
        ours: `${fmt(bundle.gzip)} KiB gzip (${fmt(bundle.raw)} KiB raw)`,
        goal: `≤ ${GOAL_BUNDLE_GZIP_KIB} KiB gzip`,
        met: bundle.gzip <= GOAL_BUNDLE_GZIP_KIB,
      },
    ];
    return {
      title: "Web UI",
      rows,
      method: [
        "Debian's Chromium (headless, playwright-core) against a gateway on 127.0.0.1, 1280×800 viewport.",
        `**Restore**: a finished PTY session that printed ${fmt(RESTORE_LINES)} lines (\`seq -f\`, 120×40); each round loads the page fresh on \`#/s/<id>\` (cookie set) until the terminal view marks itself restored (every event up to the head written into xterm.js), by the page's \`performance.now()\`. Baseline: the same page load showing only the session list.`,
        `**Frame rate**: \`requestAnimationFrame\` callbacks per second over ${FPS_WINDOW_MS / 1000} s, the shown PTY session idle, then printing \`seq 1 ${fmt(FLOOD_BATCH)}\` every ${FLOOD_PAUSE_S * 1000} ms; the page is a viewer. The exit row runs from when the benchmark saw the session end (polling every 50 ms) until the page showed it.`,
      ],
      notes: [`Restore rounds (ms): ${restoreMs.map((m) => fmt(m)).join(", ")}.`],
    };
  } finally {
    await browser?.close();
    await gateway?.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(renderStandalone(await run()));
}
