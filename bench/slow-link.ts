import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { parseConfig } from "../src/server/config/config.js";
import { startGateway } from "../src/server/gateway.js";
import type { Gateway } from "../src/server/gateway.js";
import { createLogger } from "../src/server/ops/logger.js";
import { buildWeb, launchBrowser } from "../test/web/harness.js";
import { renderStandalone } from "./report.js";
import { fmt } from "./stats.js";
import { longAnswer } from "./ui-stream.js";
import type { BenchSection } from "./types.js";

/**
 * A phone on a slow link opens a busy session: a terminal with 50 MB of history, an agent
 * session whose transcript is ~10 MB. Chromium (phone viewport) reaches the gateway through a
 * throttling proxy written here (1 Mbit/s each way, 50 ms one-way delay: 100 ms RTT); the page
 * is loaded first (as a phone's service worker has it), then the session is opened; measured:
 * time until the view says it is restored (the terminal's screen, the agent's turns), and the
 * bytes the proxy carried to the phone meanwhile. With the gateway's compression on and off, and
 * unthrottled beside it.
 *
 * `npx tsx bench/slow-link.ts` prints the section; SLOW_LINK_TERMINAL_MB and SLOW_LINK_AGENT_MB
 * change the sizes.
 */

const TOKEN = "bench-slow-link-token-0123456789abcdef";
/** The link: bits per second each way, and the one-way delay. */
export const LINK_BITS_PER_SECOND = 1_000_000;
export const LINK_DELAY_MS = 50;
/** The proxy forwards at most this much at a time (one "packet train"), and stops reading a side past LINK_QUEUE_BYTES queued. */
const LINK_PIECE_BYTES = 16 * 1024;
const LINK_QUEUE_BYTES = 256 * 1024;
const TERMINAL_MB = Number(process.env["SLOW_LINK_TERMINAL_MB"] ?? 50);
const AGENT_MB = Number(process.env["SLOW_LINK_AGENT_MB"] ?? 10);
/** Bytes of answer per agent turn. */
const TURN_BYTES = 250_000;
const GOAL_MS = 1500;
/** Nothing in this benchmark may take longer than this. */
const STEP_TIMEOUT_MS = 600_000;
const PHONE = { width: 390, height: 844 };
/** A line of the terminal's history, CR LF included. */
const LINE_BYTES = 47;

/** One direction of the link: pieces leave at LINK_BITS_PER_SECOND and arrive LINK_DELAY_MS later, in order. */
class Link {
  bytes = 0;
  private busyUntil = 0;
  private queued = 0;

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly throttled: () => boolean,
  ) {
    from.on("data", (chunk: Buffer) => this.carry(chunk));
    from.on("end", () => this.after(() => to.end()));
    from.on("error", () => to.destroy());
  }

  private carry(chunk: Buffer): void {
    for (let at = 0; at < chunk.length; at += LINK_PIECE_BYTES) {
      const piece = chunk.subarray(at, at + LINK_PIECE_BYTES);
      this.queued += piece.length;
      this.after(() => {
        this.bytes += piece.length;
        this.queued -= piece.length;
        if (!this.to.destroyed) this.to.write(piece);
        if (this.queued < LINK_QUEUE_BYTES / 2) this.from.resume();
      }, piece.length);
    }
    if (this.queued > LINK_QUEUE_BYTES) this.from.pause();
  }

  /** Runs `fn` when `size` more bytes have crossed the link, in order with everything before. */
  private after(fn: () => void, size = 0): void {
    if (!this.throttled()) {
      // Unthrottled: still in order behind whatever is queued.
      this.busyUntil = Math.max(this.busyUntil, performance.now());
      setTimeout(fn, Math.max(0, this.busyUntil - performance.now()));
      return;
    }
    const now = performance.now();
    this.busyUntil = Math.max(this.busyUntil, now) + (size * 8 * 1000) / LINK_BITS_PER_SECOND;
    setTimeout(fn, this.busyUntil + LINK_DELAY_MS - now);
  }
}

/** The throttling proxy in front of the gateway: counts what it carried toward the phone. */
class SlowLinkProxy {
  readonly server: Server;
  throttled = true;
  private readonly down: Link[] = [];
  private readonly sockets = new Set<Socket>();

  constructor(target: { host: string; port: number }) {
    this.server = createServer((client) => {
      const upstream = createConnection(target);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
      }
      new Link(client, upstream, () => this.throttled);
      this.down.push(new Link(upstream, client, () => this.throttled));
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Bytes carried toward the phone so far. */
  get downBytes(): number {
    return this.down.reduce((n, l) => n + l.bytes, 0);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** A command agent that answers every prompt with the file named in it. */
const ANSWERER = `process.stdout.write(require("node:fs").readFileSync(process.argv[2], "utf8"));`;

async function call(gw: Gateway, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(gw.url + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + STEP_TIMEOUT_MS;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The two busy sessions: a terminal whose output is `TERMINAL_MB`, an agent session of `AGENT_MB` of answers. */
async function busySessions(gw: Gateway, dir: string): Promise<{ terminal: string; agent: string }> {
  const lines = Math.round((TERMINAL_MB * 1e6) / LINE_BYTES);
  const terminal = (await call(gw, "POST", "/v1/sessions", {
    kind: "terminal",
    pty: true,
    command: ["sh", "-c", `seq -f '[build] %010g compiling src/module.ts: ok' 1 ${lines}; exec cat`],
    cols: 80,
    rows: 24,
  })) as { id: string };
  writeFileSync(join(dir, "answer.md"), longAnswer(TURN_BYTES));
  writeFileSync(join(dir, "answerer.cjs"), ANSWERER);
  const agent = (await call(gw, "POST", "/v1/sessions", {
    kind: "agent",
    agent: { adapter: "command", command: [process.execPath, join(dir, "answerer.cjs"), "{prompt}"] },
    name: "slow-link-agent",
  })) as { id: string };
  const turns = Math.round((AGENT_MB * 1e6) / TURN_BYTES);
  for (let i = 0; i < turns; i++)
    await call(gw, "POST", `/v1/sessions/${agent.id}/prompt`, { text: join(dir, "answer.md") });
  await until("the terminal's history", async () => {
    const s = await call(gw, "GET", `/v1/sessions/${terminal.id}`);
    return (s["outputBytes"] as number) >= lines * LINE_BYTES;
  });
  await until("the agent's turns", async () => {
    // A filtered page ends where a bounded scan does: page on to the head.
    let finished = 0;
    for (let since = 0; ;) {
      const page = (await call(gw, "GET", `/v1/sessions/${agent.id}/events?since=${since}&types=chat.final`)) as {
        events: unknown[];
        head: number;
        next: number;
      };
      finished += page.events.length;
      if (page.next >= page.head || page.next <= since) break;
      since = page.next;
    }
    return finished >= turns;
  });
  return { terminal: terminal.id, agent: agent.id };
}

interface Opened {
  ms: number;
  /** Bytes carried toward the phone from the click to the view restored. */
  bytes: number;
}

/** Opens `session` in a page that has the app loaded: time and bytes until its view is restored. */
async function open(browser: Browser, base: string, proxy: SlowLinkProxy, session: string): Promise<Opened> {
  const context = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  try {
    await page.goto(`${base}/#token=${TOKEN}`);
    await page.waitForSelector("[data-test=whoami]", { timeout: STEP_TIMEOUT_MS });
    const bytes = proxy.downBytes;
    const started = performance.now();
    await page.evaluate((id) => (location.hash = `#/s/${id}`), session);
    await page.waitForSelector(".view[data-restored=true]", { timeout: STEP_TIMEOUT_MS });
    // An agent's page: until its last turn is on the page, rendered.
    if (await page.$(".agent-view"))
      await page.waitForSelector(".agent-view .runs .run:last-child [data-test=run-done]", {
        timeout: STEP_TIMEOUT_MS,
      });
    return { ms: performance.now() - started, bytes: proxy.downBytes - bytes };
  } finally {
    await context.close();
  }
}

type Mode = "compressed" | "plain";

export async function run(): Promise<BenchSection> {
  await buildWeb();
  const dir = mkdtempSync(join(tmpdir(), "switchboard-bench-slow-link-"));
  const gateways = new Map<Mode, Gateway>();
  const proxies: SlowLinkProxy[] = [];
  let browser: Browser | undefined;
  try {
    const dataDir = join(dir, "data");
    const start = async (mode: Mode) =>
      startGateway({
        host: "127.0.0.1",
        port: 0,
        dataDir,
        token: TOKEN,
        config: parseConfig(
          mode === "plain"
            ? { compression: { websocket: false, http: false } }
            : { compression: { websocket: true, http: true } },
        ),
        logger: createLogger({ level: "silent" }),
      });
    // The sessions are made once, on the compressing gateway; the plain one reads the same data dir after it.
    const first = await start("compressed");
    const ids = await busySessions(first, dir);
    gateways.set("compressed", first);
    browser = await launchBrowser();
    const results: { mode: Mode; link: "1 Mbit/s" | "unthrottled"; kind: "terminal" | "agent"; r: Opened }[] = [];
    const measureOn = async (mode: Mode) => {
      const gw = gateways.get(mode)!;
      const url = new URL(gw.url);
      const proxy = new SlowLinkProxy({ host: url.hostname, port: Number(url.port) });
      proxies.push(proxy);
      const base = await proxy.listen();
      for (const throttled of [true, false]) {
        proxy.throttled = throttled;
        for (const kind of ["terminal", "agent"] as const)
          results.push({
            mode,
            link: throttled ? "1 Mbit/s" : "unthrottled",
            kind,
            r: await open(browser!, base, proxy, ids[kind]),
          });
      }
    };
    await measureOn("compressed");
    await first.close();
    gateways.delete("compressed");
    gateways.set("plain", await start("plain"));
    await measureOn("plain");
    const row = (kind: "terminal" | "agent", mode: Mode, link: string) => {
      const r = results.find((x) => x.kind === kind && x.mode === mode && x.link === link)!.r;
      return `${fmt(r.ms / 1000, 2)} s, ${fmt(r.bytes / 1024)} KiB`;
    };
    const table = [
      "| session opened on a phone | link | compression off | compression on |",
      "| --- | --- | --: | --: |",
      ...(["terminal", "agent"] as const).flatMap((kind) =>
        ["1 Mbit/s", "unthrottled"].map(
          (link) =>
            `| ${kind === "terminal" ? `terminal, ${TERMINAL_MB} MB of history (its screen)` : `agent, ${AGENT_MB} MB transcript (its turns)`} | ${link} | ${row(kind, "plain", link)} | ${row(kind, "compressed", link)} |`,
        ),
      ),
    ].join("\n");
    const met = (kind: "terminal" | "agent") =>
      results.find((x) => x.kind === kind && x.mode === "compressed" && x.link === "1 Mbit/s")!.r.ms <= GOAL_MS;
    return {
      title: "Slow link: a phone opens a busy session",
      rows: (["terminal", "agent"] as const).map((kind) => ({
        measure: `${kind}: first screen over 1 Mbit/s, 100 ms RTT (time, bytes to the phone)`,
        ours: row(kind, "compressed", "1 Mbit/s"),
        baseline: row(kind, "plain", "1 Mbit/s"),
        goal: `≤ ${fmt(GOAL_MS / 1000, 1)} s`,
        met: met(kind),
      })),
      tables: [table],
      method: [
        `A throttling TCP proxy in the bench (1 Mbit/s each way, ${LINK_DELAY_MS} ms one-way delay, ${LINK_PIECE_BYTES / 1024} KiB pieces) between Chromium (phone viewport) and the gateway.`,
        "The page is loaded first; the time runs from opening the session (its link) until its view is restored (`data-restored`: the terminal's screen written; the agent's last turn received and rendered, its run shown done); bytes are those the proxy carried toward the phone meanwhile.",
        `The terminal ran \`seq -f\` lines through its PTY (${TERMINAL_MB} MB); the agent is a command agent answering ${Math.round((AGENT_MB * 1e6) / TURN_BYTES)} prompts with a ${fmt(TURN_BYTES / 1000)} KB Markdown answer each. Baseline: the same data dir with \`compression: {websocket: false, http: false}\`.`,
      ],
    };
  } finally {
    await browser?.close();
    for (const p of proxies) await p.close();
    for (const gw of gateways.values()) await gw.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(renderStandalone(await run()));
}
