/**
 * Shared pieces of the security tests (docs/security.md): a real gateway on 127.0.0.1:0 with several
 * configured identities, HTTP calls per identity, and `/v1/ws` and `/ws/session` clients (the
 * `ws` package) that keep every frame and the close code. Every resource registers its cleanup
 * with `onTestFinished` (or the `defer` given) on the line after it is created.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onTestFinished } from "vitest";
import WebSocket from "ws";
import type { Clock, ManualClock } from "../../src/core/clock.js";
import type { SessionEvent } from "../../src/protocol/index.js";
import type { ConfigInput } from "../../src/server/config/config.js";
import { startGateway } from "../../src/server/gateway.js";
import { api, createSession } from "../helpers/gateway.js";
import { sleep } from "../helpers/sleep.js";
import type { Gateway } from "../../src/server/gateway.js";
import { createLogger } from "../../src/server/ops/logger.js";
import type { Logger } from "../../src/server/ops/logger.js";
import { WS_PING_INTERVAL_MS } from "../../src/server/ws/ws-common.js";

/** Registers cleanup; defaults to the running test's `onTestFinished`. */
export type Defer = (fn: () => unknown) => void;
const perTest: Defer = (fn) => onTestFinished(async () => void (await fn()));

/**
 * The identities every security gateway knows. Each token is distinctive, so a test can scan
 * logs and bodies for any fragment of it. `carol` is configured by `tokenSha256` only.
 */
export const TOKENS = {
  admin: "sec-admin-7f3a9c0d2e8b41f6a5c7d9e0b1f2a3c4",
  alice: "sec-alice-4b8e2f6a1c9d3e7f0a5b8c2d6e9f1a4b",
  bob: "sec-bob-9d2c7e1f5a3b8c6d0e4f7a2b9c5d1e8f",
  carol: "sec-carol-2e6a9d4c8f1b5e3a7c0d9f2b6e8a4c1d",
  vera: "sec-vera-5c1f8a3e7d2b6c9f0e4a1d8b3f7c2e6a",
  mallory: "sec-mallory-8a4d1c7f3e9b2a6c5f0d8e1b4a7c3f9d",
} as const;
export type Who = keyof typeof TOKENS;

export function sha256Hex(value: string): string {
  return createHash("sha256").update(value, "utf8").digest("hex");
}

/**
 * `auth.tokens` of the security gateways: alice, bob and mallory are operators with no globs
 * (they see their own sessions only); carol is an operator for sessions named `shared-*`;
 * vera is a viewer of `shared-*`. The admin is the gateway's own token.
 */
export function authTokens(): NonNullable<ConfigInput["auth"]>["tokens"] {
  return [
    { name: "alice", token: TOKENS.alice, role: "operator" },
    { name: "bob", token: TOKENS.bob, role: "operator" },
    { name: "carol", tokenSha256: sha256Hex(TOKENS.carol), role: "operator", sessions: ["shared-*"] },
    { name: "vera", token: TOKENS.vera, role: "viewer", sessions: ["shared-*"] },
    { name: "mallory", token: TOKENS.mallory, role: "operator" },
  ];
}

export interface SecGatewayOptions {
  /** Merged over `{auth: {tokens: authTokens()}}`. */
  config?: Omit<ConfigInput, "auth">;
  tokens?: NonNullable<ConfigInput["auth"]>["tokens"];
  clock?: Clock;
  logger?: Logger;
  defer?: Defer;
  countLoopbackConnections?: boolean;
  /** Runs on the fresh data dir before the gateway starts (to seed files a previous run would have left). */
  beforeStart?: (dataDir: string) => void;
  /**
   * Give the config as a file (`DATA_DIR/config.json`, not watched) rather than inline, so a test
   * can rewrite it and call `reload()`; `writeConfig` rewrites it with other tokens.
   */
  configFile?: boolean;
}

/** The config file of a gateway started with `configFile` (see {@link secGateway}). */
export function writeSecConfig(gw: Gateway, tokens: NonNullable<ConfigInput["auth"]>["tokens"]): void {
  const file = configFiles.get(gw);
  if (file === undefined) throw new Error("the gateway was started without configFile");
  const config = JSON.parse(readFileSync(file, "utf8")) as ConfigInput;
  writeFileSync(file, JSON.stringify({ ...config, auth: { tokens } }));
}

const configFiles = new WeakMap<Gateway, string>();

/** A gateway on 127.0.0.1:0 with the security identities; closed (and its data dir removed) by `defer`. */
export async function secGateway(options: SecGatewayOptions = {}): Promise<Gateway> {
  const defer = options.defer ?? perTest;
  const dataDir = mkdtempSync(join(tmpdir(), "switchboard-security-"));
  defer(() => rmSync(dataDir, { recursive: true, force: true }));
  options.beforeStart?.(dataDir);
  const config: ConfigInput = { ...options.config, auth: { tokens: options.tokens ?? authTokens() } };
  const configFile = options.configFile ? join(dataDir, "config.json") : undefined;
  if (configFile !== undefined) writeFileSync(configFile, JSON.stringify(config));
  const gw = await startGateway({
    host: "127.0.0.1",
    port: 0,
    dataDir,
    token: TOKENS.admin,
    ...(configFile !== undefined ? { config: configFile, watchConfig: false } : { config }),
    logger: options.logger ?? createLogger({ level: "silent" }),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.countLoopbackConnections ? { countLoopbackConnections: true } : {}),
  });
  defer(() => gw.close());
  if (configFile !== undefined) configFiles.set(gw, configFile);
  return gw;
}

export interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

/** HTTP calls as one identity (`null` = no credentials). */
export function http(gw: Gateway, who: Who | null): ReturnType<typeof api> {
  return api(gw.url, who ? TOKENS[who] : "");
}

/** A PTY running `cat`: it takes input, signals and resize. */
export function catPty(gw: Gateway, who: Who, name?: string) {
  return createSession(gw, { command: ["cat"], pty: true, cols: 80, rows: 24, ...(name ? { name } : {}) }, TOKENS[who]);
}

/** Every event of a session as the admin sees it. */
export async function eventsOf(gw: Gateway, id: string): Promise<SessionEvent[]> {
  const r = await http(gw, "admin").get(`/v1/sessions/${id}/events?limit=10000`);
  if (r.status !== 200) throw new Error(`events of ${id} -> ${r.status} ${r.text}`);
  return r.json.events as SessionEvent[];
}

/** Events after a session's creation: without the `resize` a PTY session logs with its first size. */
export async function changesOf(gw: Gateway, id: string): Promise<SessionEvent[]> {
  return (await eventsOf(gw, id)).filter((e) => !(e.seq === 1 && e.type === "resize"));
}

export function wsUrl(gw: Gateway, path: string): string {
  return gw.url.replace(/^http/, "ws") + path;
}

export class UpgradeRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`upgrade refused with ${status}: ${body}`);
  }
}

export type Frame = Record<string, any>;

/**
 * A WebSocket client that keeps every JSON frame it receives and its close code. `waitFor`
 * resolves with the first frame (from `from` on) that matches, so a frame that arrived before
 * the call is not missed.
 */
export class WsClient {
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  closeCode: number | undefined;
  /** Protocol-level pings received from the server (ws answers each with a pong by itself). */
  pings = 0;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data, isBinary) => {
      this.frames.push(isBinary ? { binary: true } : (JSON.parse(data.toString()) as Frame));
      this.wake();
    });
    ws.on("ping", () => {
      this.pings++;
      this.wake();
    });
    this.closed = new Promise((resolve) =>
      ws.once("close", (code, reason) => {
        this.closeCode = code;
        this.wake();
        resolve({ code, reason: reason.toString() });
      }),
    );
  }

  /** Opens `path` as `who` (bearer header unless `options.headers` says otherwise); rejects with UpgradeRefused. */
  static open(
    gw: Gateway,
    path: string,
    who: Who | null,
    options: WebSocket.ClientOptions & { protocols?: string[]; defer?: Defer } = {},
  ): Promise<WsClient> {
    const { protocols, defer = perTest, ...rest } = options;
    const headers = {
      ...(who ? { authorization: `Bearer ${TOKENS[who]}` } : {}),
      ...(rest.headers as Record<string, string> | undefined),
    };
    const ws = protocols
      ? new WebSocket(wsUrl(gw, path), protocols, { ...rest, headers })
      : new WebSocket(wsUrl(gw, path), { ...rest, headers });
    defer(() => ws.terminate());
    const client = new WsClient(ws);
    return new Promise((resolve, reject) => {
      ws.once("open", () => {
        ws.off("error", reject);
        resolve(client);
      });
      ws.once("unexpected-response", (_req, res) => {
        ws.off("error", reject);
        // The refused socket also reports an error; the status is the answer.
        ws.on("error", () => undefined);
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => reject(new UpgradeRefused(res.statusCode ?? 0, Buffer.concat(chunks).toString("utf8"))));
      });
      ws.once("error", reject);
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** The first frame at index ≥ `from` that matches; rejects after `ms` or when the socket closes first. */
  async waitFor(match: (f: Frame) => boolean, what: string, from = 0, ms = 5000): Promise<Frame> {
    let found: Frame | undefined;
    await this.until(() => (found = this.frames.slice(from).find(match)) !== undefined, what, ms, from);
    return found!;
  }

  /**
   * Resolves once the `stdout` frames at index ≥ `from`, joined, contain `text`: a PTY's output is
   * a byte stream, and an echo can come in pieces (`k` then `377`) when the gateway reads the
   * terminal while its line discipline is still echoing. Rejects as {@link until} does.
   */
  async waitForStdout(text: string, what: string, from = 0, ms = 5000): Promise<void> {
    let seen = from;
    let joined = "";
    await this.until(
      () => {
        for (; seen < this.frames.length; seen++) {
          const f = this.frames[seen]!;
          if (f["type"] === "stdout") joined += String(f["data"]);
        }
        return joined.includes(text);
      },
      what,
      ms,
      from,
    );
  }

  /** Resolves once `done()` holds, checked on every frame; rejects after `ms` or when the socket closes first. */
  async until(done: () => boolean, what: string, ms = 5000, from = 0): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (done()) return;
      if (this.closeCode !== undefined)
        throw new Error(
          `socket closed (${this.closeCode}) before ${what}; frames: ${JSON.stringify(this.frames.slice(from)).slice(0, 500)}`,
        );
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `timed out waiting for ${what}; frames: ${JSON.stringify(this.frames.slice(from)).slice(0, 500)}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        const waiters = this.waiters;
        function done() {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        }
        waiters.add(done);
      });
    }
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close();
    return this.closed;
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

let refCounter = 0;

/** A `/v1/ws` connection: `request` sends a frame with a fresh `ref` and resolves with its `ack` or `error`. */
export class Mux {
  private constructor(readonly client: WsClient) {}

  static async open(gw: Gateway, who: Who | null, options: Parameters<typeof WsClient.open>[3] = {}): Promise<Mux> {
    const client = await WsClient.open(gw, "/v1/ws", who, options);
    await client.waitFor((f) => f["op"] === "hello", "hello");
    return new Mux(client);
  }

  get frames(): Frame[] {
    return this.client.frames;
  }

  get connId(): string {
    return this.client.frames.find((f) => f["op"] === "hello")?.["connId"] as string;
  }

  async request(frame: Record<string, unknown>): Promise<Frame> {
    const ref = `r${++refCounter}`;
    const from = this.client.frames.length;
    this.client.send({ ...frame, ref });
    return this.client.waitFor(
      (f) => f["ref"] === ref && (f["op"] === "ack" || f["op"] === "error" || f["op"] === "subscribed"),
      `answer to ${String(frame["op"])}`,
      from,
    );
  }
}

/** Asserts an HTTP answer is the documented error: `{error: {code, message}}` with `status`. */
export function errorOf(r: HttpAnswer): { status: number; code: string; message: string } {
  const error = (r.json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  return { status: r.status, code: String(error?.code), message: String(error?.message) };
}

/**
 * Moves a gateway's ManualClock forward by `ms` the way real time would pass for connected
 * clients: the gateway's dead-peer sweep runs on the same clock (a ping every
 * WS_PING_INTERVAL_MS, two unanswered ones terminate), so time advances one ping interval at
 * a time and each still-open client gets to answer (ws pongs by itself) before the next sweep.
 * The clients stay silent at the application level: a hung holder is still a hung holder.
 */
export async function advanceLive(
  gw: Gateway,
  clock: ManualClock,
  ms: number,
  clients: ReadonlyArray<WsClient | Mux>,
): Promise<void> {
  const sockets = clients.map((c) => (c instanceof Mux ? c.client : c));
  let left = ms;
  while (left > 0) {
    const step = Math.min(left, WS_PING_INTERVAL_MS);
    const before = sockets.map((c) => c.pings);
    clock.advance(step);
    left -= step;
    // A full interval always contains one sweep; a shorter step may or may not.
    const wait = step === WS_PING_INTERVAL_MS ? 2000 : 20;
    for (const [i, c] of sockets.entries()) {
      const deadline = Date.now() + wait;
      while (c.closeCode === undefined && c.pings === before[i] && Date.now() < deadline) await sleep(2);
    }
    // The pong was written before this request: one round trip lets the gateway read it.
    await fetch(`${gw.url}/healthz`).then((r) => r.arrayBuffer());
  }
}
