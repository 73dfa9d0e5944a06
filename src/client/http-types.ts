/** The shapes of the gateway's HTTP API that `HttpClient` (http.ts) sends and returns (docs/protocol.md). */
import type { z } from "zod";
import type {
  CreateAgentSession,
  CreateStreamSession,
  CreateTerminalSession,
  EventType,
  ExternalEvent,
  SessionEvent,
  SessionInfo,
  SessionState,
} from "../protocol/index.js";

/** `POST /v1/sessions` bodies; `kind` defaults to `"terminal"`. */
export type CreateSessionRequest =
  | (Omit<CreateTerminalSession, "kind"> & { kind?: "terminal" })
  | CreateAgentSession
  | z.input<typeof CreateStreamSession>;

/** One event for `POST /v1/sessions/:id/events`. */
export type AppendEventInput = z.input<typeof ExternalEvent>;

/** One agent a session can be created with (`GET /v1/agents`). */
export interface AgentListing {
  id: string;
  adapter: string;
  source: "built-in" | "config" | "plugin";
  /** The plugin that registered it (`source: "plugin"`). */
  plugin?: string;
}

/** A configured plugin and its state (`GET /v1/plugins`; docs/plugins.md, "Lifecycle, status and metrics"). */
export interface PluginListing {
  id: string;
  state: "starting" | "running" | "restarting" | "failed" | "stopped";
  /** Restarts since the plugin was (re)configured or restarted by hand. */
  restarts: number;
  /** Why it last crashed or failed, or null. */
  lastError: string | null;
  /** The permissions its config grants. */
  permissions: string[];
  /** The agents it registered (while running). */
  agents: string[];
  pid: number | null;
  /** Whether `/hooks/<id>/…` takes requests without a token (its config's `publicHooks`). */
  publicHooks: boolean;
}

export type { NodeListing } from "../protocol/index.js";

/** What aborting answers (`POST /v1/sessions/:id/abort`, the `abort` frame's ack). */
export interface AbortResult {
  /** The run that was aborted; null when `all` only cleared the queue (no run was active). */
  runId: string | null;
  /** Queued runs removed by `all` (each ended with `chat.aborted`); 0 without it. */
  cleared: number;
}

export interface EventsQuery {
  /** The last seq you have; events after it are returned. Default 0. */
  since?: number;
  /** Page size (the gateway caps it). */
  limit?: number;
  types?: readonly EventType[];
}

/** Which turns `HttpApi.turns` answers with: the last ones (neither), those before a seq, or those from one. */
export interface TurnsQuery {
  /** Turns starting before this seq. */
  before?: number;
  /** Turns starting at or after this seq. */
  from?: number;
  /** How many (the gateway's default 1, at most TURNS_PAGE_MAX). */
  limit?: number;
}

export interface EventsPage {
  events: SessionEvent[];
  /** Newest seq in the log. */
  head: number;
  /** Oldest retained seq. */
  first: number;
  /** Pass as `since` for the next page. */
  next: number;
}

/** What `appendEvents` appended: seqs `first`..`last` (one batch is never interleaved with other appends). */
export interface AppendedEvents {
  appended: number;
  first: number;
  last: number;
  /** The log's head when answered: later than `last` when other producers appended meanwhile. */
  head: number;
}

export interface SessionsQuery {
  /** Only sessions in these states (e.g. `["running"]`). Default: all. */
  state?: SessionState | readonly SessionState[];
}

export interface SessionsPageQuery extends SessionsQuery {
  /** Page size, 1 to `LIMITS.SESSIONS_PAGE_MAX` (1000, also the default). */
  limit?: number;
  /** The `next` of the previous page; absent for the first page. */
  after?: string;
}

export interface SessionsPage {
  /** In creation order (`createdAt`, then `id`). */
  sessions: SessionInfo[];
  /** Pass as `after` for the next page; absent on the last page. */
  next?: string;
}

export interface OutputChunk {
  /** Raw output bytes from `since`. */
  bytes: Uint8Array;
  /** The byte offset after these bytes (pass it as `since` next time). */
  next: number;
  /** All output bytes the session has produced so far. */
  total: number;
}

/** `GET /v1/admin/disk` (docs/operations.md, "Disk"). */
export interface DiskUsageAnswer {
  dataDir: { bytes: number; files: number; partial: boolean; measuredAt: number };
  endedSessions: { count: number; bytes: number };
  retention: { maxAgeMs: number | null; maxCount: number | null; maxTotalBytes: number | null };
}
