import { mkdtempSync, rmSync } from "node:fs";
import { createServer, connect as netConnect } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { startGateway } from "../../src/server/gateway.js";
import type { Gateway } from "../../src/server/gateway.js";
import { parseConfig } from "../../src/server/config.js";
import type { ConfigInput } from "../../src/server/config.js";

export const TEST_TOKEN = "test-token-0123456789abcdef";

/** A fixed, small environment for the processes the tests start. */
export const TEST_ENV: Readonly<Record<string, string>> = {
  PATH: process.env["PATH"] ?? "/usr/bin:/bin",
  LANG: "C.UTF-8",
  SHLVL: "1",
  HOME: process.env["HOME"] ?? "/",
};

export interface TestGateway {
  gateway: Gateway;
  url: string;
  token: string;
  dataDir: string;
  close(): Promise<void>;
}

/** A real gateway on 127.0.0.1:0 with a temporary data dir and a silent log. */
export async function startTestGateway(options: { token?: string; config?: ConfigInput } = {}): Promise<TestGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), "switchboard-client-"));
  const gateway = await startGateway({
    host: "127.0.0.1",
    port: 0,
    dataDir,
    token: options.token ?? TEST_TOKEN,
    logger: pino({ level: "silent" }),
    ...(options.config ? { config: parseConfig(options.config) } : {}),
  });
  let closing: Promise<void> | undefined;
  return {
    gateway,
    url: gateway.url,
    token: gateway.token,
    dataDir,
    close() {
      closing ??= gateway.close().finally(() => rmSync(dataDir, { recursive: true, force: true }));
      return closing;
    },
  };
}

/**
 * A TCP proxy on 127.0.0.1:0 in front of the gateway, so a test can cut every connection
 * through it at a moment of its choosing (as a network failure would) and count how often
 * the client comes back.
 */
export class CutProxy {
  readonly url: string;
  /** TCP connections accepted so far (HTTP included). */
  connections = 0;
  /** WebSocket upgrades seen so far: how often a client (re)connected. */
  upgrades = 0;
  /** While true, new connections are accepted and dropped at once (the gateway looks down). */
  down = false;
  private readonly pairs = new Set<[Socket, Socket]>();
  private readonly sockets = new Set<[Socket, Socket]>();

  private constructor(
    private readonly server: Server,
    target: number,
  ) {
    const address = server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${address.port}`;
    server.on("connection", (client) => {
      this.connections++;
      if (this.down) {
        client.destroy();
        return;
      }
      const upstream = netConnect(target, "127.0.0.1");
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      client.once("data", (chunk: Buffer) => {
        if (/^upgrade:\s*websocket/im.test(chunk.toString("latin1"))) {
          this.upgrades++;
          this.sockets.add(pair);
        }
      });
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
        this.sockets.delete(pair);
      };
      client.on("error", drop);
      upstream.on("error", drop);
      client.on("close", drop);
      upstream.on("close", drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  static async start(targetUrl: string): Promise<CutProxy> {
    const target = Number(new URL(targetUrl).port);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return new CutProxy(server, target);
  }

  /** Live WebSocket connections through the proxy. */
  get openSockets(): number {
    return this.sockets.size;
  }

  /** Cuts every connection at once (both directions, no close handshake). */
  cut(): void {
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
    this.sockets.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Resolves once `check` returns true; rejects after `ms`. */
export async function waitUntil(check: () => boolean, ms = 5_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A process that prints `1\n2\n...N\n` in bursts over roughly `ms` milliseconds. */
export function countingCommand(lines: number, ms: number): string[] {
  const ticks = Math.max(1, Math.round(ms / 10));
  const perTick = Math.ceil(lines / ticks);
  const script = `let i=0;const t=setInterval(()=>{for(let k=0;k<${perTick}&&i<${lines};k++)process.stdout.write(String(++i)+"\\n");if(i>=${lines})clearInterval(t)},10)`;
  return [process.execPath, "-e", script];
}

export function countingText(lines: number): string {
  let out = "";
  for (let i = 1; i <= lines; i++) out += `${i}\n`;
  return out;
}
