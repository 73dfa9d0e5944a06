import { z } from "zod";
import type { AgentState } from "./agent-state.js";
import type { ErrorCode } from "./errors.js";
import type { SessionEvent } from "./events.js";
import { EVENT_TYPES } from "./events.js";
import { Cols, InputData, InputEof, Rows, Signal, inputChecks } from "./sessions.js";
import { LIMITS } from "./limits.js";
import { PromptContent } from "./prompt-content.js";
import { isPlainObject } from "./plain-object.js";

/** `/v1/ws` protocol version announced in `hello`. */
export const PROTOCOL_VERSION = 1;

const SessionId = z.string().min(1).max(128);
/** A number ref must come back as sent: finite and within ±(2^53 − 1) (`1e999` parsed as Infinity, echoed as `null`). */
const Ref = z.union([z.string().max(128), z.number().min(-Number.MAX_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER)]);

/**
 * Whether `value` is a ref `Ref` takes, without building zod's issues: a refused frame's error
 * echoes its ref only then, and refused frames may come in floods.
 */
export function isRef(value: unknown): value is Ref {
  return (
    (typeof value === "string" && value.length <= 128) ||
    (typeof value === "number" && Math.abs(value) <= Number.MAX_SAFE_INTEGER)
  );
}
const Since = z.number().int().nonnegative();
/**
 * A key a client keeps across its reconnects (a browser tab keeps one in sessionStorage): with it,
 * control held when a connection closed is taken back by the next one within
 * `control.reconnectGraceMs`. Bound by the gateway to the caller's sign-in, never trusted alone.
 */
export const ClientKey = z.string().regex(/^[A-Za-z0-9_-]{16,128}$/, "clientKey is 16 to 128 of A-Z a-z 0-9 _ -");
/**
 * A client's value named in an error message, bounded whatever it is: a string quoted (its first
 * 80 characters), anything else by its kind. Stringifying it whole could overflow the stack on a
 * deeply nested value (a frame that crashed the gateway) or echo megabytes.
 */
function describeInput(input: unknown): string {
  if (typeof input === "string") return JSON.stringify(input.slice(0, 80));
  if (input === null || typeof input === "number" || typeof input === "boolean") return String(input);
  return Array.isArray(input) ? "an array" : typeof input === "object" ? "an object" : typeof input;
}

/** A `types` filter (subscribe on /v1/ws, `types=` on HTTP and SSE): known event types, at most 64. */
export const EventTypes = z
  .array(
    z.enum(EVENT_TYPES as [string, ...string[]], {
      error: (issue) => `unknown event type ${describeInput(issue.input)}; the types are ${EVENT_TYPES.join(", ")}`,
    }),
  )
  .max(64);

/**
 * `lag=screen` (`/ws/session/:id`, `/v1/ws` subscribe `lag`): a viewer for a human. Once more than
 * LAG_SCREEN_BYTES of output are neither sent nor queued to it, it gets the current screen
 * (with `skipped`) and live output from the screen's offset; without it, every byte comes.
 */
export const LAG_MODES = ["screen"] as const;
export type LagMode = (typeof LAG_MODES)[number];
/** How far (output bytes) a `lag=screen` viewer may trail the log before it is sent the screen instead. */
export const LAG_SCREEN_BYTES = 1024 * 1024;
/**
 * Bytes a `lag=screen` viewer may have queued (gateway queue and socket) before its output is
 * held back and counted as lag: a queue of the default 4 MiB would keep a slow human viewer
 * seconds behind however small LAG_SCREEN_BYTES is.
 */
export const LAG_SCREEN_QUEUE_BYTES = 256 * 1024;
/** A `lag: "screen"` subscriber says what it took (`taken`) each time it took this much more output. */
export const LAG_TAKEN_EVERY_BYTES = 64 * 1024;

/** The mark a viewer shows where a `lag=screen` screen skipped output: "skipped 12.3 MB — full output kept in the log". */
export function skippedText(bytes: number): string {
  const size = bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1e3))} kB`;
  return `skipped ${size} — full output kept in the log`;
}

/** Frames a client sends on `/v1/ws`. Every frame may carry a `ref` echoed in its `ack`/`error`. */
export const ClientFrame = z.discriminatedUnion("op", [
  z
    .strictObject({
      op: z.literal("subscribe"),
      session: SessionId,
      since: Since.optional(),
      /** A PTY session's screen first (a `screen` frame), then the events after it; `cols`/`rows`: the viewer's size. */
      screen: z.literal(true).optional(),
      cols: Cols.optional(),
      rows: Rows.optional(),
      /** A human viewer: past LAG_SCREEN_BYTES behind, the current screen instead of the bytes (see LAG_MODES). */
      lag: z.enum(LAG_MODES).optional(),
      types: EventTypes.optional(),
      ref: Ref.optional(),
    })
    .refine((f) => f.screen === undefined || f.since === undefined, {
      message: "is a position of its own: give since or screen, not both",
      path: ["screen"],
    })
    .refine((f) => f.screen === true || f.lag !== undefined || (f.cols === undefined && f.rows === undefined), {
      message: "is the size of a screen: give it with screen: true or lag",
      path: ["cols"],
    }),
  z.strictObject({ op: z.literal("unsubscribe"), session: SessionId, ref: Ref.optional() }),
  /**
   * A `lag: "screen"` subscriber took the session's output up to byte `offset` (answered only
   * with a `ref`). From its first one, output sent past it counts as queued
   * (LAG_SCREEN_QUEUE_BYTES), socket buffers included, which the gateway cannot see otherwise.
   */
  z.strictObject({
    op: z.literal("taken"),
    session: SessionId,
    offset: z.number().int().nonnegative(),
    ref: Ref.optional(),
  }),
  inputChecks(
    z.strictObject({
      op: z.literal("input"),
      session: SessionId,
      data: InputData.default(""),
      enc: z.literal("base64").optional(),
      eof: InputEof,
      ref: Ref.optional(),
    }),
  ),
  z.strictObject({ op: z.literal("signal"), session: SessionId, signal: Signal, ref: Ref.optional() }),
  z.strictObject({ op: z.literal("resize"), session: SessionId, cols: Cols, rows: Rows, ref: Ref.optional() }),
  z.strictObject({
    op: z.literal("control"),
    session: SessionId,
    action: z.enum(["acquire", "release"]),
    force: z.boolean().optional(),
    clientKey: ClientKey.optional(),
    ref: Ref.optional(),
  }),
  z.strictObject({
    op: z.literal("prompt"),
    session: SessionId,
    text: z.string().max(LIMITS.STRING_BYTES).optional(),
    /** ACP content blocks (prompt-content.ts); a frame is at most `limits.frameBytes`. */
    content: PromptContent.optional(),
    ref: Ref.optional(),
  }),
  z.strictObject({ op: z.literal("abort"), session: SessionId, all: z.boolean().optional(), ref: Ref.optional() }),
  z.strictObject({
    op: z.literal("permission"),
    session: SessionId,
    requestId: z.string().min(1).max(200),
    optionId: z.string().min(1).max(200),
    ref: Ref.optional(),
  }),
  /** An agent's mode or setting chosen (as `POST /v1/sessions/:id/mode` and `.../config`): acked with the new `agentState`. */
  z.strictObject({
    op: z.literal("mode"),
    session: SessionId,
    modeId: z.string().min(1).max(200),
    ref: Ref.optional(),
  }),
  z.strictObject({
    op: z.literal("config"),
    session: SessionId,
    configId: z.string().min(1).max(200),
    value: z.union([z.string().min(1).max(200), z.boolean()]),
    ref: Ref.optional(),
  }),
  z.strictObject({
    op: z.literal("elicitation"),
    session: SessionId,
    requestId: z.string().min(1).max(200),
    action: z.enum(["accept", "decline", "cancel"]),
    content: z.record(z.string().max(200), z.unknown()).optional(),
    ref: Ref.optional(),
  }),
  z.strictObject({ op: z.literal("ping"), t: z.number().optional(), ref: Ref.optional() }),
  /**
   * A producer's events for a session, as `POST /v1/sessions/:id/events` takes them (each checked
   * there, at most `limits.eventsPerAppend`); acknowledged with their seqs once durable.
   */
  z.strictObject({
    op: z.literal("append"),
    session: SessionId,
    events: z.array(z.unknown()).min(1, "send at least one event"),
    ref: Ref.optional(),
  }),
]);
export type ClientFrame = z.infer<typeof ClientFrame>;
export type ClientOp = ClientFrame["op"];
export const CLIENT_OPS = ClientFrame.options.map((o) => o.shape.op.value) as readonly ClientOp[];

export type Ref = z.infer<typeof Ref>;

/** Limits the server announces in `hello`. */
export interface HelloLimits {
  frameBytes: number;
  inputBytes: number;
  queueBytes: number;
  subscriptions: number;
}

/**
 * Fields an `error` frame (on both WebSocket endpoints) may carry besides `code` and `message`,
 * as the same error's HTTP body does: what a client can act on without parsing the message.
 */
export type ErrorDetails = {
  /** CONTROL_HELD: who holds control. CONTROL_LOST taken over: who took it. */
  holder?: string;
  /** CONTROL_HELD, when the holder has the caller's name: its connection (as its `hello.connId`), so a client can tell its own connection from before a network drop. */
  holderConnId?: string;
  /** CONTROL_LOST: `taken-over` (the connection is closed on /ws/session), or `expired` (nobody holds it now). */
  reason?: "taken-over" | "expired";
  /** BAD_REQUEST for a `since` past the head: the session's head and first retained seq. */
  head?: number;
  first?: number;
  /** HISTORY_TRIMMED on /ws/session during a replay: the output bytes dropped, from and to. */
  from?: number;
  to?: number;
};

/** Frames the server sends on `/v1/ws`. */
export type ServerFrame =
  | { op: "hello"; protocol: number; connId: string; limits: HelloLimits; serverTime: number }
  /**
   * `end`: the session's last event (`exit`/`lost`), when the session has ended at or before the
   * subscriber's `since`: nothing will be delivered, the subscription is complete.
   */
  | {
      op: "subscribed";
      session: string;
      from: number;
      head: number;
      end?: SessionEvent;
      ref?: Ref;
      /** An agent session's `agentState` as `GET /v1/sessions/:id` shows it, when its agent said anything of itself. */
      agentState?: AgentState;
    }
  /**
   * Subscribe with `screen`, before `subscribed`: the screen as `/ws/session?since=screen` sends
   * it. The output events that follow carry the bytes from `offset` on; the first may begin
   * before it (skip its bytes before `offset`).
   */
  | ({ op: "screen"; session: string; ref?: Ref } & Omit<TerminalScreenFrame, "type">)
  | { op: "event"; session: string; event: SessionEvent }
  /** Several consecutive events of one session in one frame: sent during catch-up and while the socket is busy. */
  | { op: "events"; session: string; events: SessionEvent[] }
  | { op: "reset"; session: string; reason: ResetReason; head: number; first: number }
  | { op: "ack"; ref: Ref; result?: unknown }
  | ({ op: "error"; ref?: Ref; session?: string; code: ErrorCode; message: string } & ErrorDetails)
  | { op: "pong"; t?: number; ref?: Ref; serverTime: number };
export type ServerOp = ServerFrame["op"];

/**
 * Why a subscription was reset: the events it needs were dropped by retention (`trimmed`: the
 * subscription continues from `first`), or the session and its log were removed (`deleted`:
 * the subscription has ended).
 */
export type ResetReason = "trimmed" | "deleted";

/* ---- /ws/session/:id — the per-session steering protocol ---- */

export const TerminalClientFrame = z.discriminatedUnion("type", [
  inputChecks(
    z.strictObject({
      type: z.literal("stdin"),
      data: InputData.default(""),
      /** `base64` when `data` carries raw bytes (keys that are not UTF-8). */
      enc: z.literal("base64").optional(),
      eof: InputEof,
    }),
  ),
  z.strictObject({ type: z.literal("signal"), signal: Signal }),
  z.strictObject({ type: z.literal("resize"), cols: Cols, rows: Rows }),
  z.strictObject({ type: z.literal("ping") }),
  /**
   * A `lag=screen` viewer took the output up to byte `offset` (never answered). From its first
   * one, output sent past it counts as queued, as `/v1/ws`'s `taken` does for a subscription.
   */
  z.strictObject({ type: z.literal("taken"), offset: z.number().int().nonnegative() }),
]);
export type TerminalClientFrame = z.infer<typeof TerminalClientFrame>;

/**
 * The commonest /ws/session frame — a keystroke, `{"type":"stdin","data":"…"}` and nothing
 * else — checked by hand: `TerminalClientFrame` gives the same frame for it, but a keystroke
 * after a pause runs with cold caches, where the schema took ~85 µs of a ~1 ms echo (this takes
 * a few). Undefined for anything else, which the schema then checks (and explains, if wrong).
 */
export function keystrokeFrame(frame: unknown): TerminalClientFrame | undefined {
  if (!isPlainObject(frame)) return undefined;
  const data = frame["data"];
  if (frame["type"] !== "stdin" || typeof data !== "string") return undefined;
  if (data.length === 0 || Object.keys(frame).length !== 2) return undefined;
  return { type: "stdin", data };
}

/**
 * The commonest /v1/ws frame — a producer's `{"op":"append","session":…,"events":[…]}`, with or
 * without `ref` — checked by hand as {@link keystrokeFrame} is, for the same reason: one append
 * at a time runs with cold caches (docs/benchmarks.md, "Where a delivery's CPU goes", cut 3).
 * `ClientFrame` gives the same frame; each event is checked where it is appended (`customEvent`
 * for the commonest kind). Undefined for anything else.
 */
export function appendFrame(frame: unknown): ClientFrame | undefined {
  if (!isPlainObject(frame)) return undefined;
  const { session, events, ref } = frame;
  if (frame["op"] !== "append" || typeof session !== "string" || session.length === 0 || session.length > 128)
    return undefined;
  if (!Array.isArray(events) || events.length === 0 || Object.getPrototypeOf(events) !== Array.prototype)
    return undefined;
  const keys = Object.keys(frame).length;
  if (ref === undefined) return keys === 3 ? { op: "append", session, events } : undefined;
  return keys === 4 && isRef(ref) ? { op: "append", session, events, ref } : undefined;
}

/**
 * `/ws/session/:id?since=screen`, the first frame: ANSI that redraws the session's screen at the
 * viewer's `cols`×`rows` (at the PTY's `pty_cols`×`pty_rows`: the whole terminal, scrollback
 * included), and `offset`, the byte the replay that follows starts from.
 */
export interface TerminalScreenFrame {
  type: "screen";
  data: string;
  offset: number;
  cols: number;
  rows: number;
  pty_cols: number;
  pty_rows: number;
  /** A full-screen program is showing. */
  alternate: boolean;
  /** With `lag=screen`, a screen sent mid-stream: the output bytes it skipped (they stay in the log). */
  skipped?: number;
}

export type TerminalServerFrame =
  | TerminalScreenFrame
  | { type: "replay"; data: string; offset: number; enc?: "base64" }
  /**
   * `binary_input`: the gateway takes a binary message as input; `lag_taken`: it takes `taken`
   * frames (each absent from gateways that do not).
   */
  | {
      type: "connected";
      mode: "pipe" | "pty";
      session_id: string;
      offset: number;
      binary_input?: true;
      lag_taken?: true;
    }
  | { type: "stdout" | "stderr"; data: string; offset: number; enc?: "base64" }
  /** `state`: whether the session exited or was lost (a lost session has neither code nor signal). */
  | { type: "exit"; exit_code: number | null; signal: string | null; state?: "exited" | "lost" }
  | ({ type: "error"; code: ErrorCode; message: string } & ErrorDetails)
  | { type: "pong" };

/*
 * `/ws/session/:id?output=binary`: output travels as binary WebSocket messages, the bytes as the
 * process wrote them, behind a 9-byte header: byte 0 the kind (1 stdout or a PTY's output,
 * 2 stderr, 3 replay), bytes 1..8 the offset of the first byte (u64 big-endian), then the output.
 * Everything else stays a JSON text frame (docs/protocol.md, "Binary output").
 */

/** The `output` query parameter of `/ws/session/:id`: how output frames travel. */
export const TERMINAL_OUTPUT_MODES = ["json", "binary"] as const;
export type TerminalOutputMode = (typeof TERMINAL_OUTPUT_MODES)[number];

export const BINARY_OUTPUT_KINDS = { stdout: 1, stderr: 2, replay: 3 } as const;
export type BinaryOutputKind = keyof typeof BINARY_OUTPUT_KINDS;
export const BINARY_OUTPUT_HEADER_BYTES = 9;
/** {@link BINARY_OUTPUT_KINDS} the other way round: the kind of a header's first byte. */
const BINARY_OUTPUT_KIND_OF: readonly (BinaryOutputKind | undefined)[] = [undefined, "stdout", "stderr", "replay"];

/** One binary output frame, decoded: `bytes` is a view into the frame. */
export interface BinaryOutput {
  kind: BinaryOutputKind;
  offset: number;
  bytes: Uint8Array;
}

/** Writes the header of a binary output frame into `frame`'s first 9 bytes. */
export function writeBinaryOutputHeader(frame: Uint8Array, kind: BinaryOutputKind, offset: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new RangeError(`offset must be a byte position, not ${offset}`);
  const view = new DataView(frame.buffer, frame.byteOffset, BINARY_OUTPUT_HEADER_BYTES);
  view.setUint8(0, BINARY_OUTPUT_KINDS[kind]);
  // Two 32-bit halves: offsets stay below 2^53, and BigInt is not needed on either side.
  view.setUint32(1, Math.floor(offset / 2 ** 32));
  view.setUint32(5, offset % 2 ** 32);
}

/** Reads a binary output frame; null when it is not one (too short, unknown kind, offset beyond 2^53). */
export function readBinaryOutput(frame: Uint8Array): BinaryOutput | null {
  if (frame.length < BINARY_OUTPUT_HEADER_BYTES) return null;
  const view = new DataView(frame.buffer, frame.byteOffset, BINARY_OUTPUT_HEADER_BYTES);
  const code = view.getUint8(0);
  const kind = BINARY_OUTPUT_KIND_OF[code];
  const offset = view.getUint32(1) * 2 ** 32 + view.getUint32(5);
  if (kind === undefined || !Number.isSafeInteger(offset)) return null;
  return { kind, offset, bytes: frame.subarray(BINARY_OUTPUT_HEADER_BYTES) };
}

export { CLOSE_CODES } from "./close-codes.js";
