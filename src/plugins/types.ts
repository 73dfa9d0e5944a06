import type { Registry } from "prom-client";
import type { Clock } from "../core/clock.js";
import type { ErrorCode, EventType, SessionEvent, SessionInfo } from "../protocol/index.js";
import type { EventFilter, PluginToolEvent } from "./ipc.js";
import type { PluginLimits } from "./limits.js";
import type { PluginPermission } from "./permissions.js";

/** pino-compatible: `logger.info({fields}, "message")`. */
export interface PluginLogger {
  debug(fields: object, msg?: string): void;
  info(fields: object, msg?: string): void;
  warn(fields: object, msg?: string): void;
  error(fields: object, msg?: string): void;
  /** Whether lines at `level` are written (pino's); a logger without it writes every level. */
  isLevelEnabled?(level: string): boolean;
}

/**
 * Where a following subscription (see `PluginHostDeps.events.follow`) delivers: the plugin's
 * pipe, which it reads at its own pace.
 */
export interface SubscriptionOutlet {
  /** Bytes sent to the plugin and not read by it yet (events held for it included). */
  readonly queuedBytes: number;
  /** Past this many queued bytes, the subscription stops delivering and reads from the log once the plugin has read. */
  readonly budgetBytes: number;
  /** Sends an event, whatever is queued: the subscription sends only what fits. */
  deliver(sessionId: string, event: SessionEvent): void;
  /** Retention dropped `count` positions (events of any type) the subscription had not delivered yet. */
  trimmed(count: number): void;
  /** Calls `listener` whenever the plugin has read what was queued. Returns the function that stops it. */
  onDrain(listener: () => void): () => void;
}

/** Who is asking: passed to every dependency call so the gateway can audit and authorize. */
export interface PluginCaller {
  pluginId: string;
  /**
   * Granted `readAllSessions`: it may see every session and its events. Otherwise only the
   * sessions it owns (owner `plugin:<id>`: those its inbound messages created).
   */
  readAllSessions: boolean;
}

/**
 * Everything the plugin host needs from the gateway. The host depends on nothing else, so
 * the gateway wires it up and tests pass fakes.
 */
export interface PluginHostDeps {
  /** The gateway data dir. Plugins get `<dataDir>/plugins/<id>/` to write; the host keeps their key-value state in `<dataDir>/plugin-state/`. */
  dataDir: string;
  logger: PluginLogger;
  clock: Clock;
  sessions: {
    /** Sessions a plugin may see. */
    list(caller: PluginCaller): SessionInfo[] | Promise<SessionInfo[]>;
    /** One session, or null when there is none (or the plugin may not see it). */
    get(id: string, caller: PluginCaller): SessionInfo | null | Promise<SessionInfo | null>;
  };
  events: {
    /**
     * Live events matching `filter` (all sessions when `filter.sessionId` is absent), from now
     * on. Returns the unsubscribe function. `handler` must not throw.
     */
    subscribe(
      filter: EventFilter,
      handler: (sessionId: string, event: SessionEvent) => void,
      caller: PluginCaller,
    ): () => void;
    /**
     * Events of `sessionId` after seq `since` (only `types`, if given), log then live, no gap or
     * repeat. Past `outlet.budgetBytes` it waits for `outlet.onDrain` and reads on from the log;
     * retention's losses go to `outlet.trimmed`. Throws `SESSION_NOT_FOUND` (also for one it may not
     * see), `BAD_REQUEST` for `since` past the end. Returns the function that ends it.
     */
    follow(
      sessionId: string,
      since: number,
      types: readonly EventType[] | undefined,
      outlet: SubscriptionOutlet,
      caller: PluginCaller,
    ): () => void;
  };
  messages: {
    /** `POST /v1/messages` on the plugin's behalf: validates the message, routes it, queues the run. */
    inbound(message: Record<string, unknown>, caller: PluginCaller): Promise<unknown>;
  };
  config: {
    /**
     * Applies a JSON merge patch (RFC 7396) to the config file: validate the result, write it
     * atomically, then reload (which calls `PluginHost.load`). Throws `CONFIG_INVALID` and
     * changes nothing when the result is not valid.
     */
    writePatch(patch: Record<string, unknown>, caller: PluginCaller): Promise<void>;
  };
  /**
   * A plugin's process, or a command it runs, could not be started for lack of file descriptors
   * (RESOURCE_EXHAUSTED): the gateway counts it and logs when it is near its limit.
   */
  reportFdExhausted(): void;
  agents: {
    /** A plugin registered an agent: from now on a run of `agentId` goes to `PluginHost.runAgent`. Throw to refuse (e.g. the id is taken). */
    registered(pluginId: string, agentId: string): void;
    /** The agent is gone (unregistered, or its plugin stopped or crashed). */
    unregistered(pluginId: string, agentId: string): void;
  };
}

export interface PluginHostOptions {
  /** Where relative plugin paths resolve from (the config file's folder). Default: `process.cwd()`. */
  baseDir?: string;
  /** Paths no plugin folder may contain, besides `dataDir` (e.g. the config file). */
  protectedPaths?: readonly string[];
  /** Metrics are registered here (and removed on `close`). */
  registry?: Registry;
  limits?: Partial<PluginLimits>;
  /**
   * The runner's folder, holding its entry module (`main.mjs`) and the modules it imports. Every
   * plugin may read all of it, so it must hold nothing else. Default: `runner/` next to the host
   * module.
   */
  runnerDir?: string;
}

export const PLUGIN_STATES = ["starting", "running", "restarting", "failed", "stopped"] as const;
export type PluginState = (typeof PLUGIN_STATES)[number];

/** One row of `GET /v1/plugins`. */
export interface PluginStatus {
  id: string;
  state: PluginState;
  /** Restarts since the plugin was (re)configured. */
  restarts: number;
  lastError: string | null;
  /** Granted permissions. */
  permissions: PluginPermission[];
  /** Agents it registered (while running). */
  agents: string[];
  pid: number | null;
  /** Whether `/hooks/<id>/…` takes requests without a token (its entry's `publicHooks`). */
  publicHooks: boolean;
}

export interface AgentRunRequest {
  runId: string;
  sessionId: string;
  text: string;
}

/** Where a plugin agent's run goes: the agent layer turns these into log events. */
export interface AgentRunSink {
  delta(text: string): void;
  /**
   * Whether the run's log has room for more text: undefined when it has, else a promise that
   * resolves once it has again (the agent layer's `LogRoom`). Until then the plugin's deltas are
   * not acknowledged, so it is held back after `limits.agentDeltaWindowChars` more. Absent:
   * always room.
   */
  room?(): Promise<void> | undefined;
  /** `{toolCallId, status, title?, kind?, ...}`: validated; the caller adds `runId` and appends a `tool` event. */
  tool(event: PluginToolEvent): void;
  final(text: string, stopReason: string): void;
  error(code: ErrorCode, message: string): void;
}

export type AgentRunOutcome = "final" | "error" | "aborted";

/** A request forwarded to a plugin's HTTP hook. Credentials headers are stripped by the host. */
export interface HttpHookRequest {
  method: string;
  /** Path below the plugin's mount point, e.g. `/` or `/github`. */
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  /**
   * The parsed body: a JSON value (`application/json`), the fields of a form
   * (`application/x-www-form-urlencoded`, the last of a repeated name), else null.
   */
  body: unknown;
  /** The body's bytes as they were sent: what a webhook's signature (an HMAC) is computed over. */
  rawBody: Uint8Array;
  /**
   * True for a request to `/hooks/<id>/…` (the plugin's `publicHooks`): nobody authenticated
   * it, and the plugin must (a signature, a shared secret). False for `/v1/plugins/<id>/http/…`,
   * which only a token that may steer reaches.
   */
  public: boolean;
}

/** How the gateway reads a hook's body: the runner parses it as said here (bodies are sent once, raw). */
export type HookBodyKind = "json" | "form" | "none";

/** A request to a plugin's HTTP hook as the gateway hands it to the host: the body unparsed. */
export interface HttpHookCall extends Omit<HttpHookRequest, "body" | "rawBody"> {
  rawBody: Buffer;
  /** `json` only for a body the gateway checked is JSON. */
  bodyKind: HookBodyKind;
}
