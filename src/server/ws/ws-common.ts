import { WebSocketServer } from "ws";
import type { RawData, WebSocket } from "ws";
import type { Socket } from "node:net";
import { holdEntry, releaseEntry } from "../../log/output-entry.js";
import type { LogEntry } from "../../log/types.js";
import { CLOSE_CODES, DEVICE_REVOKED_MESSAGE, LIMITS, textNestsDeeperThan } from "../../protocol/index.js";
import { WorkTimer } from "../../core/work-timer.js";
import type { LeaseChange } from "../../core/control-lease.js";
import { selectProtocol } from "../identity/auth.js";
import type { Identity } from "../identity/identity.js";
import type { GatewayCore } from "../context.js";
import type { Opener, Revocation } from "./connection-counter.js";
import type { z } from "zod";
import { formatIssues } from "../config/config.js";
import { describeJsonError } from "../config/config.js";
import type { TokenCatchUp } from "./catch-up.js";
import { BinaryFrame, memoryOf, releaseFrames } from "./outbound-frames.js";
import type { Frame } from "./outbound-frames.js";
import { WireFrame, socketOf } from "./wire-frame.js";
import { deflateOptions, deflates } from "./ws-deflate.js";
import { writeNow } from "../../system/socket-write-now.js";

/** Send options: a frame is text, also when it is handed over already encoded, unless it is a {@link BinaryFrame}. */
const TEXT = { binary: false } as const;
const BINARY = { binary: true } as const;

/**
 * What a streaming connection is told when a config reload removed its token or changed its
 * rights (`TokenRegistry.has`): an UNAUTHORIZED error, then the WebSocket closes with 1008 (an SSE
 * stream just ends). A client that reconnects gets its new rights, or 401.
 */
export const REVOKED: Revocation = {
  code: "UNAUTHORIZED",
  message:
    "the token of this connection was removed from the gateway's config, or its role or sessions changed; reconnect with a valid token",
};

/** What the connections of a paired device are told when it is unpaired (`DELETE /v1/devices/:id`). */
export const DEVICE_REVOKED: Revocation = {
  code: "UNAUTHORIZED",
  message: DEVICE_REVOKED_MESSAGE,
};

/** What the connections of a browser sign-in are told when it signs out (`POST /v1/logout`), before they end as {@link REVOKED} ones do. */
export const SIGNED_OUT: Revocation = {
  code: "UNAUTHORIZED",
  message: "this connection's browser sign-in was ended (POST /v1/logout); sign in again",
};

/**
 * The error both WebSocket endpoints send a connection whose control lease was taken over or
 * expired (the changes they call it for): the same code, words and fields on each (`attach`
 * tells the two apart by `reason`).
 */
export function controlLost(change: LeaseChange): {
  code: "CONTROL_LOST";
  message: string;
  reason: "taken-over" | "expired";
  holder?: string;
} {
  return change.action === "taken-over"
    ? {
        code: "CONTROL_LOST",
        message: `control was taken over by ${change.holder.actor.name}`,
        reason: "taken-over",
        holder: change.holder.actor.name,
      }
    : { code: "CONTROL_LOST", message: "control expired after holder silence", reason: "expired" };
}

/** Bytes in flight on a socket above which live events are held and sent together (flood pacing). */
export const WS_BUSY_BYTES = 64 * 1024;
/** A message up to this size, with nothing in flight, is written into the kernel at once (system/socket-write-now.ts). */
export const DIRECT_WRITE_MAX_BYTES = 16 * 1024;
/**
 * The server pings every connection this often; two unanswered pings terminate it. Timed with
 * the gateway's clock, so tests can drive it with a ManualClock.
 */
export const WS_PING_INTERVAL_MS = 15_000;
export const WS_MISSED_PINGS_ALLOWED = 2;

/**
 * The `ws` server of one endpoint: upgrades are handed to it after auth (no server of its own),
 * frames are capped at the configured size (1009 beyond), permessage-deflate when the client offers
 * it and `compression.websocket` is true (ws-deflate.ts), the server picks the
 * subprotocol (the bearer one is never echoed), and connections are tracked by ConnectionTracker.
 */
export function endpointServer(core: GatewayCore): WebSocketServer {
  return new WebSocketServer({
    noServer: true,
    maxPayload: core.limits.frameBytes,
    perMessageDeflate: deflateOptions(core.config.compression.websocket === true),
    handleProtocols: selectProtocol,
    clientTracking: false,
    // Each message at once: handleFrames takes the first of a turn at once and the rest one per
    // turn of the event loop (FRAMES_AT_ONCE), so a flood still shares the loop.
    allowSynchronousEvents: true,
  });
}

/** Turns a run of one session's entries into one frame, or several when they cannot share one. */
type Format = (session: string, entries: readonly LogEntry[]) => Frame | Frame[];

/**
 * The gateway stops reading a connection past this many frames, or budgets (`limits.queueBytes`)
 * of bytes, queued toward it and unwritten; it reads on at half of each. Events stay below both
 * (feeds switch to catch-up at one budget); only answers to the client's own frames (pong, ack,
 * error, never dropped) pile up further, without end before this bound (docs/security.md, Limits).
 */
export const READ_PAUSE_FRAMES = 4096;
export const READ_PAUSE_BUDGETS = 2;
/**
 * How long a connection is not read after its input was refused for its rate
 * (`limits.inputFramesPerSecond`, `limits.inputBytesPerSecond`): a second refills both budgets,
 * and a flood of frames waits in the client's socket meanwhile instead of being read and
 * refused one by one.
 */
export const INPUT_REFUSED_HOLD_MS = 1000;

/**
 * The outbound side of one WebSocket: counts the bytes handed to `ws.send` until their write
 * callback fires (ws's `send()` itself reports no backpressure), and while the socket is busy
 * holds live events and sends them together as one frame per session. Everything leaves in
 * the order it was given. Past {@link READ_PAUSE_FRAMES} frames or {@link READ_PAUSE_BUDGETS}
 * budgets queued, the socket is not read until it drains (`onReadsPaused` is told).
 */
export class Outbox {
  private inflight = 0;
  private inflightFrames = 0;
  private pending: Array<{ session: string; entries: LogEntry[] }> = [];
  private pendingBytes = 0;
  private disposed = false;
  private readsPaused = false;
  /** Holds on reading besides the outbox's own (appends waiting for the store, refused input: see holdReads). */
  private readHolds = 0;
  /** The hold after refused input ({@link holdReadsAfterRefusal}), while it lasts. */
  private refusalHold: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly budgetBytes: number,
    private readonly onDrain: () => void,
    private readonly format: Format,
    private readonly onReadsPaused: () => void = () => {},
    /** The token's catch-up share: it counts this connection's bytes in flight too (see TokenCatchUp). */
    private readonly share?: TokenCatchUp,
  ) {}

  /** Bytes queued toward the client: held events plus bytes not yet written to the socket. */
  get queuedBytes(): number {
    return this.inflight + this.pendingBytes;
  }

  /** False once the socket is closing or closed: what is sent then is dropped, so feeds must stop reading. */
  get open(): boolean {
    return !this.disposed && this.ws.readyState === this.ws.OPEN;
  }

  /** Sends a frame that is not a live event (hello, ack, error, pong, replay), after anything held. */
  sendControl(frame: Frame): void {
    this.flushPending();
    this.write(frame);
    releaseFrames(frame);
  }

  deliver(session: string, entries: readonly LogEntry[], live: boolean): void {
    if (live && (this.inflight >= WS_BUSY_BYTES || this.pending.length > 0)) {
      const last = this.pending[this.pending.length - 1];
      if (last && last.session === session) last.entries.push(...entries);
      else this.pending.push({ session, entries: [...entries] });
      for (const e of entries) {
        // Framed later, when the socket has room: the bytes must stay readable until then.
        holdEntry(e);
        this.pendingBytes += e.size;
      }
      return;
    }
    this.flushPending();
    this.writeAll(this.format(session, entries));
  }

  /** Stops reading the client's frames until the returned release (and the outbox's own pause) ends. */
  holdReads(): () => void {
    if (this.readHolds++ === 0 && !this.readsPaused) this.ws.pause();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.readHolds === 0 && !this.readsPaused && !this.disposed) this.ws.resume();
    };
  }

  /** Stops reading the socket for {@link INPUT_REFUSED_HOLD_MS} (the client sent more input than its rate allows). */
  holdReadsAfterRefusal(): void {
    if (this.disposed || this.refusalHold !== undefined) return;
    const release = this.holdReads();
    this.refusalHold = setTimeout(() => {
      this.refusalHold = undefined;
      release();
    }, INPUT_REFUSED_HOLD_MS);
    this.refusalHold.unref();
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.refusalHold);
    this.refusalHold = undefined;
    const held = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const b of held) for (const e of b.entries) releaseEntry(e);
  }

  private flushPending(): void {
    if (this.pending.length === 0) return;
    const batches = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const b of batches) {
      this.writeAll(this.format(b.session, b.entries));
      for (const e of b.entries) releaseEntry(e);
    }
  }

  /** Writes what `format` gave, and ends the holds its frames were handed over with. */
  private writeAll(frames: Frame | Frame[]): void {
    if (Array.isArray(frames)) for (const f of frames) this.write(f);
    else this.write(frames);
    releaseFrames(frames);
  }

  private write(frame: Frame): void {
    if (this.disposed || this.ws.readyState !== this.ws.OPEN) return;
    // A small message with nothing in flight (a key's echo): into the kernel at once, or the usual way.
    if (frame instanceof WireFrame && this.inflight === 0 && frame.bytes.length <= DIRECT_WRITE_MAX_BYTES) {
      const socket = deflates(this.ws) ? undefined : socketOf(this.ws);
      const sent = socket === undefined ? 0 : writeNow(socket, frame.bytes);
      if (sent === frame.bytes.length) return;
      if (sent > 0) return this.writeRest(socket!, frame.bytes.subarray(sent));
    }
    const size = frame instanceof WireFrame || frame instanceof BinaryFrame ? frame.bytes.length : frame.length;
    this.inflight += size;
    this.inflightFrames++;
    this.share?.add(size);
    if (
      !this.readsPaused &&
      (this.inflightFrames > READ_PAUSE_FRAMES || this.queuedBytes > this.budgetBytes * READ_PAUSE_BUDGETS)
    ) {
      this.readsPaused = true;
      if (this.readHolds === 0) this.ws.pause();
      this.onReadsPaused();
    }
    if (frame instanceof WireFrame) {
      // A message encoded for the wire has its own memory, a view of none: nothing to hold.
      // A deflating connection's messages queue in `ws` behind the one being compressed.
      const socket = deflates(this.ws) ? undefined : socketOf(this.ws);
      if (socket !== undefined) socket.write(frame.bytes, (error) => this.written(size, error));
      else this.ws.send(frame.payload, frame.binary ? BINARY : TEXT, (error) => this.written(size, error));
      return;
    }
    // `ws` reads the bytes until this send's callback: memory they are a view of stays until then.
    const memory = memoryOf(frame);
    memory?.hold();
    const binary = frame instanceof BinaryFrame;
    this.ws.send(binary ? frame.bytes : frame, binary ? BINARY : TEXT, (error) => {
      memory?.release();
      this.written(size, error);
    });
  }

  /** The part of a message {@link writeNow} left: after it, through the stream, counted as in flight. */
  private writeRest(socket: Socket, rest: Uint8Array): void {
    this.inflight += rest.length;
    this.inflightFrames++;
    this.share?.add(rest.length);
    socket.write(rest, (error) => this.written(rest.length, error));
  }

  /** A write of `size` bytes completed (or failed). */
  private written(size: number, error: Error | null | undefined): void {
    this.inflight -= size;
    this.inflightFrames--;
    this.share?.remove(size);
    // A failed write means the socket is going away: nothing more to send or to pump.
    if (this.disposed || error) return;
    if (this.readsPaused && this.inflightFrames < READ_PAUSE_FRAMES / 2 && this.queuedBytes < this.budgetBytes / 2) {
      this.readsPaused = false;
      if (this.readHolds === 0) this.ws.resume();
    }
    if (this.pending.length > 0 && this.inflight < WS_BUSY_BYTES) this.flushPending();
    if (this.queuedBytes < this.budgetBytes / 2) this.onDrain();
  }
}

/**
 * Per-endpoint bookkeeping: connections per token (limit), the metrics gauge, and dead-peer
 * detection — a peer that misses two pings, and sends no frame meanwhile, is terminated, not
 * closed, since a paused peer cannot read a close frame.
 */
export class ConnectionTracker {
  private readonly live = new Map<WebSocket, { missed: number; dispose: (closedByClient: boolean) => void }>();
  /** The pings run while a connection is open. */
  private readonly timer: WorkTimer;

  constructor(
    private readonly core: GatewayCore,
    private readonly endpoint: "multiplex" | "terminal",
  ) {
    this.timer = new WorkTimer({
      clock: core.clock,
      everyMs: WS_PING_INTERVAL_MS,
      run: () => this.sweep(),
      busy: () => this.live.size > 0,
    });
  }

  /** Throws LIMIT_EXCEEDED when the token already has its maximum of connections. */
  checkLimit(identity: Identity): void {
    this.core.connections.check(identity);
  }

  /**
   * Tracks an open connection: `dispose` when it closes (`closedByClient`: with close code 1000,
   * so its leases end at once), `revoke` when its token or sign-in is revoked (see {@link REVOKED}).
   */
  add(
    opener: Opener,
    ws: WebSocket,
    dispose: (closedByClient: boolean) => void,
    revoke: (why: Revocation) => void,
  ): void {
    const release = this.core.connections.open(opener, revoke);
    this.core.metrics.wsConnections.inc({ endpoint: this.endpoint });
    const state = { missed: 0, dispose };
    this.live.set(ws, state);
    this.timer.wake();
    // A frame counts as an answer: a client's pong can sit behind a backlog of its frames that the
    // gateway reads one per turn, for longer than two pings under load (dead-peer.test.ts).
    const heard = (): void => {
      state.missed = 0;
    };
    ws.on("pong", heard);
    ws.on("message", heard);
    ws.on("error", (error) => this.core.logger.debug({ err: error, endpoint: this.endpoint }, "websocket error"));
    ws.once("close", (code) => {
      this.live.delete(ws);
      release();
      this.core.metrics.wsConnections.dec({ endpoint: this.endpoint });
      dispose(code === CLOSE_CODES.NORMAL);
    });
  }

  /** Closes every connection: 1012 when `restarting` (sessions keep running for the next gateway), else 1001. */
  closeAll(restarting = false): void {
    this.timer.close();
    for (const [ws, state] of this.live) {
      // Stop feeding first: a write callback after this point must not read a log that is
      // about to be closed (an uncaught "database connection is not open" at shutdown).
      state.dispose(false);
      if (restarting) ws.close(CLOSE_CODES.SERVICE_RESTART, "gateway restarting; sessions keep running");
      else ws.close(CLOSE_CODES.GOING_AWAY, "gateway shutting down");
    }
    // Connections that cannot take a close frame are cut.
    setTimeout(() => {
      for (const ws of this.live.keys()) ws.terminate();
    }, 1000).unref();
  }

  private sweep(): void {
    for (const [ws, state] of this.live) {
      if (state.missed >= WS_MISSED_PINGS_ALLOWED) {
        ws.terminate();
        continue;
      }
      state.missed++;
      ws.ping();
    }
  }
}

/**
 * Frames of one connection handled at once in a turn of the event loop; the rest wait, one per
 * turn, with the connection not read meanwhile: a keystroke is not deferred, and a flood of small
 * frames still shares the loop (test/server/frame-turns.test.ts, loop-isolation.test.ts).
 */
export const FRAMES_AT_ONCE = 1;

/**
 * Hands a connection's frames to `handle` so that nothing it throws reaches the process (where
 * an uncaught exception ends the gateway and every session with it): the error is logged with
 * the connection's id, the client is told what it can (`tell`: an INTERNAL error frame), the
 * connection is disposed of and its WebSocket closed with 1011. Other connections go on.
 * Frames past {@link FRAMES_AT_ONCE} in a turn wait for the next turns, in order, under `holdReads`.
 */
export function handleFrames(options: {
  ws: WebSocket;
  core: GatewayCore;
  endpoint: "multiplex" | "terminal";
  connId: string;
  handle: (data: RawData, isBinary: boolean) => void;
  tell: () => void;
  dispose: () => void;
  /** Stops reading the connection until the returned release (Outbox.holdReads). */
  holdReads: () => () => void;
}): void {
  const { ws, core, endpoint, connId, handle } = options;
  const run = (data: RawData, isBinary: boolean): void => {
    try {
      handle(data, isBinary);
    } catch (error) {
      core.logger.error({ err: error, endpoint, connId }, "handling a frame failed; the connection is closed (1011)");
      for (const step of [options.tell, options.dispose]) {
        try {
          step();
        } catch (stepError) {
          // The state the first error left may fail these too: the close below still ends the connection.
          core.logger.error({ err: stepError, endpoint, connId }, "ending a failed connection failed");
        }
      }
      ws.close(CLOSE_CODES.INTERNAL, "internal error; the gateway log has details");
    }
  };
  /** Frames handled in this turn, and those waiting for later turns (in arrival order). */
  let thisTurn = 0;
  const waiting: { data: RawData; isBinary: boolean }[] = [];
  let release: (() => void) | undefined;
  const nextTurn = (): void => {
    thisTurn = 0;
    const next = waiting.shift();
    if (next === undefined) return;
    thisTurn = 1;
    setImmediate(nextTurn);
    if (waiting.length === 0) {
      release?.();
      release = undefined;
    }
    run(next.data, next.isBinary);
  };
  ws.on("message", (data, isBinary) => {
    if (waiting.length === 0 && thisTurn < FRAMES_AT_ONCE) {
      if (thisTurn++ === 0) setImmediate(nextTurn);
      run(data, isBinary);
      return;
    }
    waiting.push({ data, isBinary });
    release ??= options.holdReads();
  });
  ws.once("close", () => {
    // Nothing more is handled for a closed connection (its owner is disposed of).
    waiting.length = 0;
    release?.();
    release = undefined;
  });
}

/**
 * Runs the start of an upgraded connection (its greeting, its first replay) so that nothing it
 * throws reaches the process: the error is logged and the WebSocket closed with 1011, as
 * {@link handleFrames} does for its frames.
 */
export function startConnection(
  core: GatewayCore,
  endpoint: "multiplex" | "terminal",
  ws: WebSocket,
  start: () => void,
): void {
  try {
    start();
  } catch (error) {
    core.logger.error({ err: error, endpoint }, "starting a connection failed; it is closed (1011)");
    ws.close(CLOSE_CODES.INTERNAL, "internal error; the gateway log has details");
  }
}

/** The error frame's fields a connection ended by {@link handleFrames} is sent before its 1011. */
export const FRAME_FAILED = {
  code: "INTERNAL",
  message: "the gateway failed handling a frame of this connection and closed it; the gateway log has details",
} as const;

/**
 * The JSON value of a client's text frame, or the error to answer with: INVALID_JSON (binary
 * frames, malformed JSON — never echoing the frame's content), VALIDATION_FAILED past `LIMITS.JSON_DEPTH`.
 */
function parseTextFrame(
  data: RawData,
  isBinary: boolean,
): { ok: true; value: unknown } | { ok: false; code: "INVALID_JSON" | "VALIDATION_FAILED"; message: string } {
  if (isBinary)
    return { ok: false, code: "INVALID_JSON", message: "send JSON text frames; binary frames are not accepted" };
  const text = data.toString();
  // Refused before parsing, as HTTP bodies are: a deep value overflows the stack wherever it is
  // serialized or described later, which would end the gateway.
  if (textNestsDeeperThan(text, LIMITS.JSON_DEPTH))
    return {
      ok: false,
      code: "VALIDATION_FAILED",
      message: `the frame nests arrays and objects deeper than ${LIMITS.JSON_DEPTH} levels; flatten it`,
    };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    return { ok: false, code: "INVALID_JSON", message: `the frame is not valid JSON: ${describeJsonError(error)}` };
  }
}

/** A client frame checked against its endpoint's schema: the frame, or the error to answer (the connection stays up). */
export type CheckedFrame<T> =
  | { ok: true; frame: T }
  | { ok: false; raw: unknown; code: "INVALID_JSON" | "UNKNOWN_OP" | "VALIDATION_FAILED"; message: string };

/**
 * Checks the client frames of one endpoint: JSON text, then a zod union tagged by `tag`
 * (`op` on /v1/ws, `type` on /ws/session). A tag the endpoint does not know is UNKNOWN_OP;
 * a known one with wrong fields is VALIDATION_FAILED with the fields named.
 */
export class ClientFrameCheck<T> {
  private readonly tags: ReadonlySet<string>;

  /**
   * `fast`: optional, a hand check of the endpoint's commonest frame that accepts only what the
   * schema accepts and gives the same frame (see `keystrokeFrame`); undefined leaves it to the schema.
   */
  constructor(
    private readonly schema: z.ZodType<T> & { options: ReadonlyArray<{ shape: Record<string, unknown> }> },
    private readonly tag: "op" | "type",
    private readonly fast: (raw: unknown) => T | undefined = () => undefined,
  ) {
    this.tags = new Set(schema.options.map((o) => (o.shape[tag] as { value: string }).value));
  }

  check(data: RawData, isBinary: boolean): CheckedFrame<T> {
    const text = parseTextFrame(data, isBinary);
    if (!text.ok) return { ok: false, raw: undefined, code: text.code, message: text.message };
    const raw = text.value;
    const quick = this.fast(raw);
    if (quick !== undefined) return { ok: true, frame: quick };
    const parsed = this.schema.safeParse(raw);
    if (parsed.success) return { ok: true, frame: parsed.data };
    const tag = raw !== null && typeof raw === "object" ? (raw as Record<string, unknown>)[this.tag] : undefined;
    if (typeof tag === "string" && this.tags.has(tag))
      return { ok: false, raw, code: "VALIDATION_FAILED", message: formatIssues(parsed.error) };
    return {
      ok: false,
      raw,
      code: "UNKNOWN_OP",
      // A frame without the tag (not an object, or `type` sent to /v1/ws) was answered "unknown op undefined".
      message:
        typeof tag === "string"
          ? `unknown ${this.tag} ${JSON.stringify(tag).slice(0, 50)}; see docs/protocol.md`
          : `a frame is a JSON object with a string "${this.tag}"; see docs/protocol.md`,
    };
  }
}
