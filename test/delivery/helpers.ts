/**
 * Shared pieces of the delivery tests: a real gateway on 127.0.0.1:0, HTTP calls,
 * and WebSocket clients (the `ws` package) that check positions as they read.
 */
import { mkdtempSync, rmSync } from "node:fs";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import type { Clock } from "../../src/core/clock.js";
import type { SessionEvent } from "../../src/protocol/index.js";
import { parseConfig } from "../../src/server/config/config.js";
import { startGateway } from "../../src/server/gateway.js";
import { Outbox } from "../../src/server/ws/ws-common.js";
import type { Gateway } from "../../src/server/gateway.js";
import { createLogger } from "../../src/server/ops/logger.js";

export const TEST_TOKEN = "delivery-test-token-0123456789abcdef";

/** A function that registers cleanup (afterEach/afterAll/onTestFinished), called right after a resource is created. */
export type Defer = (fn: () => unknown) => void;

export interface StartOptions {
  /** Raw config (parsed with the gateway's own schema). */
  config?: unknown;
  clock?: Clock;
  /** Reuse a data dir (gateway restart); by default a fresh one removed on cleanup. */
  dataDir?: string;
}

/** A fresh data dir, removed by `defer`. */
export function tempDataDir(defer: Defer): string {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-delivery-"));
  defer(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Starts a gateway on 127.0.0.1:0 with a silent logger; `defer` closes it (and removes its data dir). */
export async function startTestGateway(defer: Defer, options: StartOptions = {}): Promise<Gateway> {
  const dataDir = options.dataDir ?? tempDataDir(defer);
  const gw = await startGateway({
    host: "127.0.0.1",
    port: 0,
    dataDir,
    token: TEST_TOKEN,
    config: parseConfig(options.config ?? {}),
    logger: createLogger({ level: "silent" }),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  defer(() => gw.close());
  return gw;
}

export function authHeaders(gw: Gateway): Record<string, string> {
  return { Authorization: `Bearer ${gw.token}` };
}

export function wsUrl(gw: Gateway, path: string): string {
  return gw.url.replace(/^http/, "ws") + path;
}

export async function api<T>(gw: Gateway, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(gw.url + path, {
    method,
    headers: { ...authHeaders(gw), ...(body !== undefined ? { "Content-Type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} -> ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

/** Appends stream output: one event per string in `chunks`. */
export function appendOutput(gw: Gateway, session: string, chunks: readonly string[]): Promise<{ head: number }> {
  return api(
    gw,
    "POST",
    `/v1/sessions/${session}/events`,
    chunks.map((data) => ({ type: "output", data: { stream: "stdout", data } })),
  );
}

export function endStream(gw: Gateway, session: string): Promise<{ head: number }> {
  return api(gw, "POST", `/v1/sessions/${session}/events`, { type: "exit", data: { exitCode: 0, signal: null } });
}

/** Every event of a session, read by pages over HTTP. */
export async function allEvents(gw: Gateway, session: string): Promise<SessionEvent[]> {
  const out: SessionEvent[] = [];
  let since = 0;
  for (;;) {
    const page = await api<{ events: SessionEvent[]; head: number; next: number }>(
      gw,
      "GET",
      `/v1/sessions/${session}/events?since=${since}&limit=10000`,
    );
    out.push(...page.events);
    if (page.next >= page.head) return out;
    since = page.next;
  }
}

/** Raw output bytes over HTTP. */
export async function outputBytes(gw: Gateway, session: string): Promise<Buffer> {
  const res = await fetch(`${gw.url}/v1/sessions/${session}/output?since=0`, { headers: authHeaders(gw) });
  if (!res.ok) throw new Error(`output -> ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

/**
 * Resolves once `ws` is open; rejects with {@link UpgradeRefused} (the HTTP status) when the
 * upgrade is refused. Attach message listeners before awaiting it: ws emits the frames that
 * came with the 101 response in the same tick as `open`.
 */
export function opened(ws: WebSocket): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    ws.once("open", () => {
      ws.off("error", reject);
      resolve(ws);
    });
    ws.once("unexpected-response", (_req, res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => reject(new UpgradeRefused(res.statusCode ?? 0, Buffer.concat(chunks).toString("utf8"))));
      ws.off("error", reject);
      // The refused socket reports an error as well; the status above is the answer.
      ws.on("error", () => undefined);
    });
    ws.once("error", reject);
  });
}

/** Opens a WebSocket with no message listener (for upgrade checks). */
export function openWs(url: string, options: WebSocket.ClientOptions = {}, protocols?: string[]): Promise<WebSocket> {
  return opened(protocols ? new WebSocket(url, protocols, options) : new WebSocket(url, options));
}

export class UpgradeRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`upgrade refused with ${status}: ${body}`);
  }
}

/** Resolves with the close code once the socket is closed. */
export function closed(ws: WebSocket): Promise<number> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve(1006);
  return new Promise((resolve) => ws.once("close", (code) => resolve(code)));
}

/** The client's TCP socket (ws keeps it in `_socket`), to pause reading like a stalled peer. */
export function rawSocket(ws: WebSocket): Socket {
  return (ws as unknown as { _socket: Socket })._socket;
}

export function decodeData(data: string, enc: string | undefined): Buffer {
  return enc === "base64" ? Buffer.from(data, "base64") : Buffer.from(data, "utf8");
}

/** A `/v1/ws` server frame as the tests read it. */
export type MuxFrame = {
  op: string;
  session?: string;
  event?: SessionEvent;
  events?: SessionEvent[];
  code?: string;
  ref?: string | number;
  from?: number;
  head?: number;
  first?: number;
  t?: number;
};

export interface MuxSessionState {
  lastSeq: number;
  bytes: Buffer[];
  byteCount: number;
  ended: boolean;
  events: SessionEvent[];
  resets: number;
  resync: boolean;
}

/**
 * A `/v1/ws` client that keeps every frame and checks, per session, that events arrive with
 * contiguous seqs (after a `reset`, from its `first`) and output with contiguous offsets.
 */
export class MuxClient {
  readonly frames: MuxFrame[] = [];
  /** Per session: last seq seen, output bytes seen, whether the session ended. */
  readonly state = new Map<string, MuxSessionState>();
  readonly errors: string[] = [];
  private waiters = new Set<() => void>();

  /** Data frames (`event`/`events`) received. */
  dataFrames = 0;
  /** Called for every event received, after the position checks. */
  onEvent: ((session: string, event: SessionEvent) => void) | undefined;

  /** With `keep` false, events and bytes are checked and counted but not kept (for floods). */
  constructor(
    readonly ws: WebSocket,
    private readonly keep = true,
  ) {
    ws.on("message", (data) => this.onFrame(JSON.parse(data.toString()) as MuxFrame));
  }

  static async open(
    gw: Gateway,
    defer: Defer,
    options: WebSocket.ClientOptions & { keep?: boolean } = {},
  ): Promise<MuxClient> {
    const { keep, ...wsOptions } = options;
    const ws = new WebSocket(wsUrl(gw, "/v1/ws"), { headers: authHeaders(gw), ...wsOptions });
    defer(() => ws.terminate());
    const client = new MuxClient(ws, keep ?? true);
    await opened(ws);
    return client;
  }

  send(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  /**
   * Subscribes from `since` (keeps the position bookkeeping for that session). Without the byte
   * position that goes with `since`, the first output event sets it.
   */
  subscribe(session: string, since = 0, bytePosition?: number): void {
    const s = this.track(session);
    s.lastSeq = since;
    s.resync = since > 0 && bytePosition === undefined;
    if (bytePosition !== undefined) s.byteCount = bytePosition;
    this.send({ op: "subscribe", session, since });
  }

  track(session: string) {
    let s = this.state.get(session);
    if (!s) {
      s = { lastSeq: 0, bytes: [], byteCount: 0, ended: false, events: [], resets: 0, resync: false };
      this.state.set(session, s);
    }
    return s;
  }

  bytes(session: string): Buffer {
    return Buffer.concat(this.state.get(session)?.bytes ?? []);
  }

  /** Waits for a frame matching `predicate` (including ones already received). */
  async frame(predicate: (f: MuxFrame) => boolean, ms = 5000, what = "a frame"): Promise<MuxFrame> {
    let found: MuxFrame | undefined;
    await this.until(() => (found = this.frames.find(predicate)) !== undefined, ms, what);
    return found!;
  }

  async until(predicate: () => boolean, ms: number, what: string): Promise<void> {
    if (predicate()) return;
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      this.waiters.add(check);
    });
  }

  private onFrame(frame: MuxFrame): void {
    const data = frame.op === "event" || frame.op === "events";
    if (!data || this.keep) this.frames.push(frame);
    if (data) {
      this.dataFrames++;
      const s = this.track(frame.session ?? "");
      for (const e of frame.events ?? (frame.event ? [frame.event] : [])) {
        if (e.seq !== s.lastSeq + 1) this.errors.push(`${frame.session}: seq ${e.seq} after ${s.lastSeq}`);
        s.lastSeq = e.seq;
        if (this.keep) s.events.push(e);
        if (e.type === "output") {
          // After a reset the first output starts wherever retention left off.
          if (s.resync) s.byteCount = e.offset;
          s.resync = false;
          if (e.offset !== s.byteCount) this.errors.push(`${frame.session}: offset ${e.offset} at byte ${s.byteCount}`);
          const b = decodeData(e.data, e.enc);
          if (this.keep) s.bytes.push(b);
          s.byteCount += b.length;
        }
        if (e.type === "exit" || e.type === "lost") s.ended = true;
        this.onEvent?.(frame.session ?? "", e);
      }
    } else if (frame.op === "reset") {
      const s = this.track(frame.session ?? "");
      s.lastSeq = (frame.first ?? 1) - 1;
      s.resets++;
      s.resync = true;
    }
    for (const w of [...this.waiters]) w();
  }
}

/**
 * Watches every server-side {@link Outbox} (the gateway runs in this process): after each call
 * that queues something, records the connection's queued bytes as the Outbox counts them (held
 * events + bytes handed to `ws.send` whose write callback has not fired) and, independently,
 * what is really buffered in user space for that socket (ws's sender queue + the socket's
 * writable buffer). Kernel socket buffers are not gateway memory and are not counted.
 */
export function probeOutboxes(defer: Defer): { maxQueued(): number; maxBuffered(): number; count(): number } {
  type Probed = { queuedBytes: number; ws: { _socket?: Socket; _sender?: { _bufferedBytes?: number } } };
  const seen = new Map<object, { queued: number; buffered: number }>();
  const sample = (outbox: Probed) => {
    const s = seen.get(outbox) ?? { queued: 0, buffered: 0 };
    const socket = outbox.ws._socket;
    const buffered = (socket?.writableLength ?? 0) + (outbox.ws._sender?._bufferedBytes ?? 0);
    s.queued = Math.max(s.queued, outbox.queuedBytes);
    s.buffered = Math.max(s.buffered, buffered);
    seen.set(outbox, s);
  };
  const proto = Outbox.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const name of ["deliver", "sendControl"]) {
    const original = proto[name]!;
    proto[name] = function (this: Probed, ...args: unknown[]) {
      const result = original.apply(this, args);
      sample(this);
      return result;
    };
    defer(() => {
      proto[name] = original;
    });
  }
  return {
    maxQueued: () => Math.max(0, ...[...seen.values()].map((s) => s.queued)),
    maxBuffered: () => Math.max(0, ...[...seen.values()].map((s) => s.buffered)),
    count: () => seen.size,
  };
}
