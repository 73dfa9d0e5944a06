import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { startGateway } from "../src/server/gateway.js";
import type { Gateway } from "../src/server/gateway.js";
import { createLogger } from "../src/server/ops/logger.js";
import { buildWeb, launchBrowser } from "../test/web/harness.js";
import { renderStandalone } from "./report.js";
import { fmt, percentile } from "./stats.js";
import type { BenchRow, BenchSection } from "./types.js";

/**
 * The agent page while a long answer streams in (Markdown with headings, lists, code blocks and
 * tables), on a CPU slowed down as a phone's is: how long each animation frame's re-render of the
 * answer takes (the page's `requestAnimationFrame` callbacks, timed in the page), and how many
 * frames took longer than 50 ms with style and layout counted (long animation frames).
 *
 * `npx tsx bench/ui-stream.ts` prints the section.
 */

const TOKEN = "bench-ui-stream-token-0123456789abcdef";
/** The answer is about this long… */
export const ANSWER_BYTES = 60_000;
/** …written by a command agent in pieces of this many bytes, one every STREAM_PAUSE_MS (~8 s in all). */
export const STREAM_CHUNK_BYTES = 250;
export const STREAM_PAUSE_MS = 33;
/** Chromium's CPU throttling: 4 is what its DevTools call a mid-tier phone. */
export const CPU_SLOWDOWN = 4;
/** A frame longer than this stutters (the Long Animation Frames API's threshold). */
const LONG_FRAME_MS = 50;
/** How long the page is watched after the run ended, for the work it leaves for idle time. */
const IDLE_AFTER_MS = 3_000;
/** Nothing in this benchmark may take longer than this. */
const STEP_TIMEOUT_MS = 120_000;

/** An agent's answer as agents write them: sections with prose, lists, code and now and then a table. */
export function longAnswer(bytes: number): string {
  const parts: string[] = [];
  let length = 0;
  for (let i = 1; length < bytes; i++) {
    const section = [
      `## Step ${i}: update \`module${i}.ts\``,
      "",
      `The **${i}th** change keeps the _public_ API as it was and moves the parsing into \`parse${i}()\`, see [the docs](https://example.com/docs/${i}). Nothing else calls it.`,
      "",
      `- read the input of step ${i}`,
      `- check it against the schema`,
      `  - and say which field is wrong`,
      `- write the result`,
      "",
      "```ts",
      `export function parse${i}(input: string): Result {`,
      `  const fields = input.split(",");`,
      `  if (fields.length !== ${i % 7}) throw new Error("expected ${i % 7} fields");`,
      `  return { ok: true, fields };`,
      "}",
      "```",
      "",
      ...(i % 4 === 0
        ? [
            "| file | lines | status |",
            "|---|--:|:-:|",
            `| module${i}.ts | ${i * 10} | ok |`,
            `| test${i}.ts | ${i} | new |`,
            "",
          ]
        : []),
    ].join("\n");
    parts.push(section);
    length += section.length + 1;
  }
  return parts.join("\n");
}

/** A command agent that streams the file named by its argument in pieces, as a model writes. */
const STREAMER = `
const { readFileSync } = require("node:fs");
const text = readFileSync(process.argv[2], "utf8");
let at = 0;
const timer = setInterval(() => {
  process.stdout.write(text.slice(at, at + ${STREAM_CHUNK_BYTES}));
  at += ${STREAM_CHUNK_BYTES};
  if (at >= text.length) clearInterval(timer);
}, ${STREAM_PAUSE_MS});
`;

/**
 * Times every animation-frame callback of the page (and the one that shows the run ended: the
 * end-of-run frame) and every idle callback (the check of a finished answer against its whole
 * rendering), and counts long animation frames, once `recording` is set.
 */
const FRAME_TIMER = `
window.__bench = { recording: false, frames: [], endFrame: null, idle: [], longFrames: 0 };
const raf = window.requestAnimationFrame.bind(window);
window.requestAnimationFrame = (callback) => raf((time) => {
  const start = performance.now();
  callback(time);
  const bench = window.__bench;
  if (!bench.recording) return;
  bench.frames.push(performance.now() - start);
  if (bench.endFrame === null && document.querySelector("[data-test=run-done]")) bench.endFrame = bench.frames.at(-1);
});
const ric = window.requestIdleCallback.bind(window);
window.requestIdleCallback = (callback, options) => ric((deadline) => {
  const start = performance.now();
  callback(deadline);
  if (window.__bench.recording) window.__bench.idle.push(performance.now() - start);
}, options);
new PerformanceObserver((list) => {
  if (window.__bench.recording) window.__bench.longFrames += list.getEntries().length;
}).observe({ type: "long-animation-frame" });
`;

interface Measured {
  frames: number[];
  /** The frame that showed the run ended (null if none did while recording). */
  endFrame: number | null;
  /** Idle callbacks, each timed. */
  idle: number[];
  longFrames: number;
  seconds: number;
  answerChars: number;
}

async function measure(browser: Browser, gateway: Gateway, dir: string): Promise<Measured> {
  const answer = longAnswer(ANSWER_BYTES);
  writeFileSync(join(dir, "answer.md"), answer);
  writeFileSync(join(dir, "streamer.cjs"), STREAMER);
  const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
  const post = async (path: string, body: unknown): Promise<{ id: string }> => {
    const res = await fetch(gateway.url + path, { method: "POST", headers, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as { id: string };
  };
  const session = await post("/v1/sessions", {
    kind: "agent",
    agent: { adapter: "command", command: [process.execPath, join(dir, "streamer.cjs"), "{prompt}"] },
    name: "stream-bench",
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.addInitScript(FRAME_TIMER);
  await page.goto(`${gateway.url}/#token=${TOKEN}`);
  await page.waitForSelector("[data-test=whoami]", { timeout: STEP_TIMEOUT_MS });
  await page.evaluate((id) => (location.hash = `#/s/${id}`), session.id);
  await page.waitForSelector(".agent-view[data-restored=true]", { timeout: STEP_TIMEOUT_MS });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Emulation.setCPUThrottlingRate", { rate: CPU_SLOWDOWN });
  await page.evaluate(() => ((window as unknown as { __bench: { recording: boolean } }).__bench.recording = true));
  const started = performance.now();
  await post(`/v1/sessions/${session.id}/prompt`, { text: join(dir, "answer.md") });
  await page.waitForSelector("[data-test=run-done]", { timeout: STEP_TIMEOUT_MS });
  const seconds = (performance.now() - started) / 1000;
  // What the page does once idle after the run (checking the answer against its whole rendering).
  await page.waitForTimeout(IDLE_AFTER_MS);
  const result = (await page.evaluate(() => {
    const bench = (window as unknown as { __bench: Omit<Measured, "seconds" | "answerChars"> & { recording: boolean } })
      .__bench;
    bench.recording = false;
    return {
      frames: bench.frames,
      endFrame: bench.endFrame,
      idle: bench.idle,
      longFrames: bench.longFrames,
      answerChars: document.querySelector(".answer")?.textContent?.length ?? 0,
    };
  })) as Omit<Measured, "seconds">;
  await cdp.send("Emulation.setCPUThrottlingRate", { rate: 1 });
  await page.close();
  return { ...result, seconds };
}

export async function run(): Promise<BenchSection> {
  await buildWeb();
  const dir = mkdtempSync(join(tmpdir(), "switchboard-bench-ui-stream-"));
  let gateway: Gateway | undefined;
  let browser: Browser | undefined;
  try {
    gateway = await startGateway({
      host: "127.0.0.1",
      port: 0,
      dataDir: join(dir, "data"),
      token: TOKEN,
      logger: createLogger({ level: "silent" }),
    });
    browser = await launchBrowser();
    const m = await measure(browser, gateway, dir);
    const sorted = [...m.frames].sort((a, b) => a - b);
    const total = m.frames.reduce((sum, ms) => sum + ms, 0);
    const kib = fmt(longAnswer(ANSWER_BYTES).length / 1024);
    const rows: BenchRow[] = [
      {
        measure: `re-render per frame while a ${kib} KiB answer streams (${CPU_SLOWDOWN}× CPU slowdown), ${fmt(m.frames.length)} frames`,
        ours: `median ${fmt(percentile(sorted, 50), 1)} ms, p95 ${fmt(percentile(sorted, 95), 1)} ms, max ${fmt(sorted.at(-1) ?? NaN, 1)} ms`,
      },
      {
        measure: "the end-of-run frame (the one that shows the run ended)",
        ours: m.endFrame === null ? "none" : `${fmt(m.endFrame, 1)} ms`,
      },
      {
        measure: `idle callbacks in the ${fmt(IDLE_AFTER_MS / 1000)} s after (checking the answer against its whole rendering)`,
        ours: `${fmt(m.idle.length)}, longest ${fmt(Math.max(0, ...m.idle), 1)} ms, ${fmt(m.idle.reduce((sum, ms) => sum + ms, 0))} ms in all`,
      },
      {
        measure: `time spent re-rendering, of the ${fmt(m.seconds, 1)} s the answer took`,
        ours: `${fmt(total)} ms (${fmt((100 * total) / (m.seconds * 1000))}%)`,
      },
      { measure: `long animation frames (> ${LONG_FRAME_MS} ms with style and layout)`, ours: fmt(m.longFrames) },
    ];
    return {
      title: "Web UI: a streaming answer",
      rows,
      method: [
        `Debian's Chromium (headless) on the agent page, CPU slowed ${CPU_SLOWDOWN}× (\`Emulation.setCPUThrottlingRate\`), while a command agent streams a ${kib} KiB Markdown answer (headings, lists, code blocks, tables) in ${STREAM_CHUNK_BYTES}-byte pieces every ${STREAM_PAUSE_MS} ms.`,
        "A frame's re-render is the page's `requestAnimationFrame` callback, timed in the page (it ends by reading the scroll height, so it includes the forced layout). The idle callbacks after the end are where the page checks the finished answer against rendering it whole. No baseline or goal: these figures watch for regressions.",
      ],
      notes: [`The page showed ${fmt(m.answerChars)} characters of text at the end.`],
    };
  } finally {
    await browser?.close();
    await gateway?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(renderStandalone(await run()));
}
