import { z } from "zod";
import { EVENT_TYPES, SESSION_STATES, type EventType, type SessionEvent } from "../protocol/index.js";

/**
 * The wire between the host and a plugin process: one JSON object per line over a private
 * pipe (fd 3 of the child). Not Node's built-in IPC channel: that one buffers an incoming
 * message without any bound (a plugin could exhaust the gateway's memory with one endless
 * line) and can pass handles; here the host reads through `FrameReader`, which caps a line at
 * `limits.frameBytes`. Everything a plugin sends is validated with these schemas: the host
 * trusts nothing from the child, the runner included, since plugin code shares its process.
 */

/** The closed list of runtime API calls a plugin can make. */
export const RUNTIME_METHODS = [
  "state.get",
  "state.set",
  "state.delete",
  "state.keys",
  "sessions.list",
  "sessions.get",
  "events.subscribe",
  "events.unsubscribe",
  "messages.inbound",
  "agents.register",
  "agents.unregister",
  "http.listen",
  "system.runCommandWithTimeout",
  "config.writeConfigFile",
] as const;
export type RuntimeMethod = (typeof RUNTIME_METHODS)[number];

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const RequestId = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const Key = z.string().min(1);
const AgentId = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/,
    "agent ids are 1-100 letters, digits, . _ : -, starting with a letter or digit",
  );

export const EventFilter = z.strictObject({
  sessionId: z.string().min(1).max(200).optional(),
  /** With `sessionId`: every event after this seq first (from the log), then live, none lost (see `follow`). */
  since: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  types: z
    .array(z.enum(EVENT_TYPES as unknown as [EventType, ...EventType[]]))
    .min(1)
    .max(EVENT_TYPES.length)
    .optional(),
});
export type EventFilter = z.infer<typeof EventFilter>;

/** Parameters of each runtime method. */
export const RUNTIME_PARAMS = {
  "state.get": z.strictObject({ key: Key }),
  "state.set": z.strictObject({ key: Key, value: z.unknown() }),
  "state.delete": z.strictObject({ key: Key }),
  "state.keys": z.strictObject({}),
  "sessions.list": z.strictObject({ state: z.enum(SESSION_STATES).optional() }),
  "sessions.get": z.strictObject({ id: z.string().min(1).max(200) }),
  "events.subscribe": z.strictObject({ filter: EventFilter }),
  "events.unsubscribe": z.strictObject({ sub: RequestId }),
  "messages.inbound": z.strictObject({ message: z.record(z.string(), z.unknown()) }),
  "agents.register": z.strictObject({ agentId: AgentId }),
  "agents.unregister": z.strictObject({ agentId: AgentId }),
  "http.listen": z.strictObject({}),
  "system.runCommandWithTimeout": z.strictObject({
    argv: z
      .array(
        z
          .string()
          .min(1)
          .max(64 * 1024),
      )
      .min(1, "argv needs at least the program")
      .max(1024),
    timeoutMs: z.number().int().positive(),
    cwd: z.string().min(1).max(4096).optional(),
  }),
  "config.writeConfigFile": z.strictObject({ patch: z.record(z.string(), z.unknown()) }),
} as const satisfies Record<RuntimeMethod, z.ZodType>;
export type RuntimeParams<M extends RuntimeMethod> = z.infer<(typeof RUNTIME_PARAMS)[M]>;

export const WireError = z.object({ code: z.string().max(100), message: z.string().max(64 * 1024) });
export type WireError = z.infer<typeof WireError>;

/** Frames a plugin process sends. */
export const ChildFrame = z.discriminatedUnion("t", [
  z.object({ t: z.literal("ready") }),
  z.object({ t: z.literal("fatal"), message: z.string() }),
  z.object({ t: z.literal("req"), id: RequestId, method: z.enum(RUNTIME_METHODS), params: z.unknown() }),
  z.discriminatedUnion("ok", [
    // `value` absent: the handler returned nothing (JSON drops an undefined value); the host
    // refuses that answer as it refuses any other malformed one, without killing the plugin.
    z.object({ t: z.literal("res"), id: RequestId, ok: z.literal(true), value: z.unknown().optional() }),
    z.object({ t: z.literal("res"), id: RequestId, ok: z.literal(false), error: WireError }),
  ]),
  z.object({
    t: z.literal("log"),
    level: z.enum(LOG_LEVELS),
    msg: z.string(),
    fields: z.record(z.string(), z.unknown()).optional(),
  }),
  /** Counted against the run's window (`limits.agentDeltaWindowChars`) until the host acks it with `agent.ack`. */
  z.object({ t: z.literal("agent.delta"), runId: z.string(), text: z.string() }),
  z.object({
    t: z.literal("agent.tool"),
    runId: z.string(),
    // The object as parsed, not a copy: the run's window counts the length of its JSON as the
    // runner did, and a copy made by a record schema drops an own "__proto__" key (the plugin's
    // count then stayed ahead of the host's acks for good, and its run stalled).
    event: z.custom<Record<string, unknown>>(
      (v) => typeof v === "object" && v !== null && !Array.isArray(v),
      "a tool event is an object",
    ),
  }),
  z.object({ t: z.literal("pong"), n: z.number() }),
]);
export type ChildFrame = z.infer<typeof ChildFrame>;

/** Calls the host makes into a plugin. */
export const PLUGIN_CALLS = ["agent.run", "http.request"] as const;
export type PluginCall = (typeof PLUGIN_CALLS)[number];

/** Frames the host sends (built by the host, so typed rather than validated). */
export type HostFrame =
  | {
      t: "init";
      id: string;
      entry: string;
      stateDir: string;
      config: Record<string, unknown>;
      permissions: string[];
      /** The runner keeps each run's unacknowledged delta text under this many characters (`limits.agentDeltaWindowChars`). */
      deltaWindowChars: number;
      /** Most bytes of one frame to the host (`limits.frameBytes`): the runner refuses a bigger call or answer itself. */
      frameBytes: number;
      /** Deepest nesting of a frame to the host (`limits.frameDepth`): the runner refuses a deeper call or answer itself. */
      frameDepth: number;
    }
  | { t: "res"; id: number; ok: true; value: unknown }
  | { t: "res"; id: number; ok: false; error: WireError }
  | { t: "event"; sub: number; sessionId: string; event: SessionEvent }
  | { t: "dropped"; sub: number; count: number }
  | { t: "call"; id: number; method: PluginCall; params: unknown }
  | { t: "agent.abort"; runId: string }
  /**
   * The host took `chars` more characters of the run's delta text, and its log has room for
   * more: the runner may send that much again (see `RunCredit`).
   */
  | { t: "agent.ack"; runId: string; chars: number }
  | { t: "stop" }
  | { t: "ping"; n: number };

/** What a plugin's HTTP hook answers (`api.http.onRequest`). */
export const HttpHookResponse = z.strictObject({
  /** A final status: 1xx would make the gateway write an interim response with a body. */
  status: z.number().int().min(200).max(599),
  headers: z.record(z.string(), z.string()).optional(),
  body: z.unknown().optional(),
});
export type HttpHookResponse = z.infer<typeof HttpHookResponse>;

/** A tool event of a plugin agent (the `tool` log event without seq, ts, type and runId). */
export const PluginToolEvent = z.looseObject({
  toolCallId: z.string().min(1).max(200),
  status: z.string().min(1).max(100),
  title: z.string().max(4096).optional(),
  kind: z.string().max(100).optional(),
});
export type PluginToolEvent = z.infer<typeof PluginToolEvent>;

/** What a plugin agent's handler answers at the end of a run. */
export const AgentFinal = z.strictObject({ text: z.string(), stopReason: z.string().max(100).optional() });
