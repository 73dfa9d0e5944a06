/**
 * Browser-test plumbing: build the UI, drive Debian's Chromium with playwright-core (never a
 * downloaded browser), and a TCP proxy that can cut every connection between the page and
 * the gateway to simulate a network drop.
 */
import { execFile } from "node:child_process";
import { Socket, createServer } from "node:net";
import type { Server } from "node:net";
import { promisify } from "node:util";
import { chromium } from "playwright-core";
import type { Browser, Page } from "playwright-core";

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

/** Bundles web/src into web/dist (what the gateway serves at `/`). */
export async function buildWeb(): Promise<void> {
  await run(process.execPath, ["scripts/build-web.mjs"], { cwd: new URL("../..", import.meta.url).pathname });
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/**
 * A loopback TCP proxy in front of the gateway. The browser talks to the proxy, so the
 * Origin and Host it sends agree; `cut()` destroys every open connection at once (HTTP
 * keep-alive and WebSockets alike), like a dropped network or a gateway that reset them.
 */
export class TcpProxy {
  private readonly pairs = new Set<[Socket, Socket]>();
  private cuts = 0;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(target: string): Promise<TcpProxy> {
    const { hostname, port } = new URL(target);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("proxy has no port");
    const proxy = new TcpProxy(server, `http://127.0.0.1:${address.port}`);
    server.on("connection", (client) => proxy.pipe(client, hostname, Number(port)));
    return proxy;
  }

  /** How many connections are open right now. */
  get open(): number {
    return this.pairs.size;
  }

  /** How many connections `cut()` has destroyed so far. */
  get cutCount(): number {
    return this.cuts;
  }

  /** Destroys every open connection; returns how many. New connections are accepted as before. */
  cut(): number {
    const n = this.pairs.size;
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
    this.cuts += n;
    return n;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private pipe(client: Socket, host: string, port: number): void {
    const upstream = new Socket();
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const drop = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    // A cut or a reset is the point of this proxy: both sides are torn down, nothing to report.
    client.on("error", drop);
    upstream.on("error", drop);
    client.on("close", drop);
    upstream.on("close", drop);
    upstream.connect(port, host, () => {
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }
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
