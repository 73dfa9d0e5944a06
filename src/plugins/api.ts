/**
 * The API a plugin's `activate(api)` receives, as implemented by the runner (`runner/main.mjs`) inside the
 * sandboxed process. Types only: plugins are plain JavaScript, and TypeScript authors can
 * `import type { PluginApi } from "switchboard"`. Every call is async and goes over the pipe
 * to the gateway, which checks it; failures reject with a `PluginError` whose `code` is a
 * gateway error code (`PLUGIN_PERMISSION_DENIED`, `VALIDATION_FAILED`, ...).
 *
 * @example
 * export default async function activate(api) {
 *   api.log.info("hello", { config: api.config.get() });
 *   await api.agents.register("shout", async (run) => {
 *     await run.delta(run.text.toUpperCase());
 *     return { text: run.text.toUpperCase(), stopReason: "end_turn" };
 *   });
 * }
 */
import type { ErrorCode, EventType, SessionEvent, SessionInfo, SessionState } from "../protocol/index.js";
import type { CommandResult } from "./run-command.js";
import type { HttpHookRequest } from "./types.js";
import type { HttpHookResponse } from "./ipc.js";
import type { PluginPermission } from "./permissions.js";

/** Where `api.messages.inbound` put a message: the answer of `POST /v1/messages` (docs/routing.md). */
export interface InboundDelivery {
  agentId: string;
  /** The tier of the binding that matched (`"peer"`, `"channel"`, ...), or `"default"` (the default agent). */
  matchedBy: string;
  /** The matching binding's index in the config's `bindings`; null for the default agent. */
  bindingIndex: number | null;
  /** The session key: the agent session's name (one session per key, owned by the plugin). */
  sessionKey: string;
  sessionId: string;
  /** The queued run; its `chat.final` (or `chat.error`, `chat.aborted`) carries this id. */
  runId: string;
}

export interface PluginError extends Error {
  code: ErrorCode;
}

export interface PluginAgentRun {
  runId: string;
  sessionId: string;
  /** The prompt. */
  text: string;
  /** Aborted when the run is aborted or timed out: stop working. */
  signal: AbortSignal;
  /**
   * Streams text (paced into `chat.delta` events). Resolves at once while the log keeps up; past
   * 1 MiB unacknowledged (`limits.agentDeltaWindowChars`) only once the log has room. Text sent
   * without awaiting waits in order in the plugin's process. Never rejects; after an abort it
   * resolves at once and the text is dropped.
   * @example
   * for await (const chunk of model.stream(run.text)) await run.delta(chunk);
   */
  delta(text: string): Promise<void>;
  /**
   * Reports a tool call (`tool` event: `{toolCallId, status, title?, kind?, ...}`) after the text
   * before it, paced like {@link delta} by its JSON length. Rejects (never throws) with
   * `VALIDATION_FAILED` for a non-object or one nested past `frameDepth` (64), `PAYLOAD_TOO_LARGE`
   * past a frame (1 MiB); the event is then not sent and the run goes on.
   * @example
   * await run.tool({ toolCallId: "t1", status: "completed", rawOutput: result });
   */
  tool(event: Record<string, unknown>): Promise<void>;
}

export type PluginAgentHandler = (
  run: PluginAgentRun,
) => Promise<string | { text: string; stopReason?: string }> | string | { text: string; stopReason?: string };

export interface PluginApi {
  readonly id: string;
  /** The plugin's own writable folder, `<dataDir>/plugins/<id>/`. */
  readonly stateDir: string;
  readonly permissions: readonly PluginPermission[];
  readonly log: Record<"debug" | "info" | "warn" | "error", (msg: string, fields?: Record<string, unknown>) => void>;
  readonly config: {
    /** This plugin's `plugins.entries.<id>.config`. */
    get(): Record<string, unknown>;
    /** Needs `writeConfigFile`. Merge-patches the gateway config; validated, atomic, then reloaded. */
    writeConfigFile(patch: Record<string, unknown>): Promise<null>;
  };
  readonly state: {
    get(key: string): Promise<unknown>;
    set(key: string, value: unknown): Promise<null>;
    delete(key: string): Promise<boolean>;
    keys(): Promise<string[]>;
  };
  readonly sessions: {
    /** Sessions it may see; `{ state: "running" }` (or `exited`, `lost`) for only those. */
    list(filter?: { state?: SessionState }): Promise<SessionInfo[]>;
    get(id: string): Promise<SessionInfo | null>;
  };
  readonly events: {
    /**
     * Resolves with the unsubscribe function. `onDropped` hears of events dropped because the
     * plugin was too slow. With `sessionId` and `since` (a seq: 0 for the start) it follows that
     * session: every event after `since` from its log, then live, none dropped however slow the
     * plugin; `onDropped` then hears only of events retention removed before it got them.
     */
    subscribe(
      filter: { sessionId?: string; since?: number; types?: EventType[] },
      handler: (event: SessionEvent, sessionId: string) => void | Promise<void>,
      options?: { onDropped?: (count: number) => void },
    ): Promise<() => Promise<void>>;
  };
  readonly messages: {
    /** Routes an inbound channel message through the bindings and queues the run (as `POST /v1/messages`). */
    inbound(message: Record<string, unknown>): Promise<InboundDelivery>;
  };
  readonly agents: {
    register(agentId: string, handler: PluginAgentHandler): Promise<void>;
    unregister(agentId: string): Promise<void>;
  };
  readonly http: {
    /** Receives the requests the gateway forwards to this plugin (see docs/plugins.md). */
    onRequest(handler: (request: HttpHookRequest) => Promise<HttpHookResponse> | HttpHookResponse): Promise<void>;
  };
  readonly system: {
    /** Needs `runCommandWithTimeout`. Run by the gateway, no shell, killed at the timeout. */
    runCommandWithTimeout(argv: string[], options: { timeoutMs: number; cwd?: string }): Promise<CommandResult>;
  };
}

/** A plugin module's default export (or named export `activate`). May return a deactivate hook. */
export type PluginActivate = (
  api: PluginApi,
) => void | (() => void | Promise<void>) | Promise<void | (() => void | Promise<void>)>;
