import { z } from "zod";
import type { ErrorCode } from "./errors.js";
import type { SessionEvent } from "./events.js";
import { EVENT_TYPES } from "./events.js";
import { Cols, Rows, Signal } from "./sessions.js";
import { LIMITS } from "./limits.js";

/** `/v1/ws` protocol version announced in `hello`. */
export const PROTOCOL_VERSION = 1;

const SessionId = z.string().min(1).max(128);
const Ref = z.union([z.string().max(128), z.number()]);
const Since = z.number().int().nonnegative();
const EventTypes = z.array(z.enum(EVENT_TYPES as [string, ...string[]])).max(64);

/** Frames a client sends on `/v1/ws`. Every frame may carry a `ref` echoed in its `ack`/`error`. */
export const ClientFrame = z.discriminatedUnion("op", [
  z.strictObject({
    op: z.literal("subscribe"),
    session: SessionId,
    since: Since.optional(),
    types: EventTypes.optional(),
    ref: Ref.optional(),
  }),
  z.strictObject({ op: z.literal("unsubscribe"), session: SessionId, ref: Ref.optional() }),
  z.strictObject({
    op: z.literal("input"),
    session: SessionId,
    data: z.string().max(LIMITS.INPUT_BYTES * 2),
    enc: z.literal("base64").optional(),
    ref: Ref.optional(),
  }),
  z.strictObject({ op: z.literal("signal"), session: SessionId, signal: Signal, ref: Ref.optional() }),
  z.strictObject({ op: z.literal("resize"), session: SessionId, cols: Cols, rows: Rows, ref: Ref.optional() }),
  z.strictObject({
    op: z.literal("control"),
    session: SessionId,
    action: z.enum(["acquire", "release"]),
    force: z.boolean().optional(),
    ref: Ref.optional(),
  }),
  z.strictObject({
    op: z.literal("prompt"),
    session: SessionId,
    text: z.string().min(1).max(LIMITS.STRING_BYTES),
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
  z.strictObject({ op: z.literal("ping"), t: z.number().optional(), ref: Ref.optional() }),
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

/** Frames the server sends on `/v1/ws`. */
export type ServerFrame =
  | { op: "hello"; protocol: number; connId: string; limits: HelloLimits; serverTime: number }
  | { op: "subscribed"; session: string; from: number; head: number; ref?: Ref }
  | { op: "event"; session: string; event: SessionEvent }
  /** Several consecutive events of one session in one frame: sent during catch-up and while the socket is busy. */
  | { op: "events"; session: string; events: SessionEvent[] }
  | { op: "reset"; session: string; reason: ResetReason; head: number; first: number }
  | { op: "ack"; ref: Ref; result?: unknown }
  | { op: "error"; ref?: Ref; session?: string; code: ErrorCode; message: string }
  | { op: "pong"; t?: number; serverTime: number };
export type ServerOp = ServerFrame["op"];

/**
 * Why a subscription was reset: the events it needs are gone (`trimmed`), or the session was
 * deleted (`deleted`). After a reset the subscription continues from `first`.
 */
export type ResetReason = "trimmed" | "deleted";

/* ---- /ws/session/:id — the per-session steering protocol ---- */

export const TerminalClientFrame = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("stdin"),
    data: z.string().max(LIMITS.INPUT_BYTES * 2),
    /** `base64` when `data` carries raw bytes (keys that are not UTF-8). */
    enc: z.literal("base64").optional(),
  }),
  z.strictObject({ type: z.literal("signal"), signal: Signal }),
  z.strictObject({ type: z.literal("resize"), cols: Cols, rows: Rows }),
  z.strictObject({ type: z.literal("ping") }),
]);
export type TerminalClientFrame = z.infer<typeof TerminalClientFrame>;

export type TerminalServerFrame =
  | { type: "replay"; data: string; offset: number; enc?: "base64" }
  | { type: "connected"; mode: "pipe" | "pty"; session_id: string; offset: number }
  | { type: "stdout" | "stderr"; data: string; offset: number; enc?: "base64" }
  | { type: "exit"; exit_code: number | null; signal: string | null }
  | { type: "error"; code: ErrorCode; message: string }
  | { type: "pong" };

/** WebSocket close codes the gateway uses. */
export const CLOSE_CODES = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL: 1011,
  /** `/ws/session`: control was taken over by someone else; do not reconnect into a fight. */
  CONTROL_LOST: 4001,
  /** The session was deleted or its log reset. */
  SESSION_GONE: 4004,
} as const;
