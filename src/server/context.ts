import type { IncomingMessage, ServerResponse } from "node:http";
import type { Clock } from "../core/clock.js";
import type { RoutingTable } from "../routing/index.js";
import type { PluginHost } from "../plugins/index.js";
import type { EventLog } from "../log/event-log.js";
import type { CreateSession, NodeListing } from "../protocol/index.js";
import type { Session } from "../sessions/session.js";
import type { SessionManager } from "../sessions/session-manager.js";
import type { ScreenService } from "../screen/screen-service.js";
import type { SearchIndex } from "../log/search/search-index.js";
import type { TokenRegistry } from "./identity/auth.js";
import type { Identity } from "./identity/identity.js";
import type { CatchUpPacing } from "./ws/catch-up.js";
import type { ConnectionCounter } from "./ws/connection-counter.js";
import type { DeviceStore } from "./identity/devices.js";
import type { ShareStore } from "./identity/share-links.js";
import type { PairingCodes } from "./identity/pairing-codes.js";
import type { PushActionTokens } from "./push/push-action-tokens.js";
import type { PushSubscriptions } from "./push/push-subscriptions.js";
import type { VapidKeys } from "./push/vapid-keys.js";
import type { FdExhaustion } from "./ops/fd-monitor.js";
import type { Config, Limits } from "./config/config.js";
import type { EndedRetention } from "../log/ended-retention.js";
import type { Logger } from "./ops/logger.js";
import type { SessionForwarder } from "./cluster/session-forwarding.js";
import type { ClusterSearch } from "./cluster/cluster-search.js";
import type { FileTransfers } from "./routes/file-transfers.js";
import type { MessageSessionIndex } from "../cluster/message-index.js";
import type { GatewayMetrics } from "./ops/metrics.js";
import type { StopRequest } from "./stop-request.js";

/** What every route and endpoint of the gateway can reach. */
export interface GatewayCore {
  /** The current config (replaced whole on reload). */
  readonly config: Config;
  /** The data directory (absolute). */
  readonly dataDir: string;
  /** `retention.endedSessions` now: the command line's, else the config's, else the defaults. */
  endedRetention(): EndedRetention;
  /** Bindings, compiled; swapped atomically on reload. */
  readonly routing: RoutingTable;
  readonly limits: Limits;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  /** The tokens; replaced whole on reload. */
  readonly tokens: TokenRegistry;
  /** The paired devices (DATA_DIR/devices.json); the token registry verifies their tokens. */
  readonly devices: DeviceStore;
  /** The live share links (DATA_DIR/shares.json); the token registry verifies their secrets. */
  readonly shares: ShareStore;
  /** Pairing codes waiting to be redeemed (memory only). */
  readonly pairings: PairingCodes;
  /** Web Push: the VAPID keys (DATA_DIR/vapid.json), browsers' subscriptions, notifications' action tokens. */
  readonly push: {
    vapid: VapidKeys;
    subscriptions: PushSubscriptions;
    actions: PushActionTokens;
    /** Sends a test notification to `principal`'s subscriptions of sign-in `signIn`: how many. */
    test(principal: string, signIn: string | undefined): number;
  };
  readonly events: EventLog;
  readonly sessions: SessionManager;
  /** The screens of PTY sessions, parsed from their logs (GET /v1/sessions/:id/screen). */
  readonly screens: ScreenService;
  /** Full-text search over the sessions' logs (GET /v1/search), kept in step with the log. */
  readonly search: SearchIndex;
  /** File transfers this node runs for other nodes' clients (forwarded uploads and downloads), ended at close. */
  readonly fileTransfers: FileTransfers;
  /** Creates a session of any kind for `identity` (the kinds are wired by the gateway). */
  createSession(body: CreateSession, identity: Identity): Promise<Session>;
  /** Counts `error` when it is RESOURCE_EXHAUSTED (out of file descriptors): in the metrics, and the gateway warns. */
  countFdExhaustion(error: unknown, what: FdExhaustion): void;
  /** Cluster mode: sends a session's changes to the node that runs it (absent on a single node). */
  forwarder: SessionForwarder | undefined;
  /** Cluster mode: `GET /v1/search` over every node's sessions (absent on a single node). */
  clusterSearch: ClusterSearch | undefined;
  /** Cluster mode: which session each `/v1/messages` key names, shared by every node (absent on a single node). */
  messageIndex: MessageSessionIndex | undefined;
  /** The sandboxed plugins (absent until the host has started). */
  plugins: PluginHost | undefined;
  /** Cluster mode: the nodes as `GET /v1/nodes` lists them (undefined on a single node). */
  nodes: (() => Promise<NodeListing[]>) | undefined;
  /**
   * Cluster mode: brings a session another node created into this node's list when a request
   * names it before the notification came (read-your-writes across nodes); undefined on a single node.
   */
  discover: ((sessionId: string) => Promise<void>) | undefined;
  /** Agent ids registered by plugins, to the plugin serving each. */
  readonly pluginAgents: Map<string, string>;
  /** A stop asked for over HTTP (`POST /v1/shutdown`). */
  readonly stopRequest: StopRequest;
  /** Streaming connections per token, across both WebSocket endpoints and SSE. */
  readonly connections: ConnectionCounter;
  /** Catch-up reads of every connection, paced together and per token (src/server/ws/catch-up.ts). */
  readonly catchUp: CatchUpPacing;
  /** Host header names accepted (lower case, with brackets for IPv6). */
  readonly allowedHosts: ReadonlySet<string>;
  /** Whether the gateway serves HTTPS itself (`tls`): its cookie is then always `Secure`. */
  readonly tls: boolean;
  /** The address it listens on (`--host`); 0.0.0.0 or :: for every one. */
  readonly listenHost: string;
  /** Extra browser origins accepted besides the gateway's own. */
  readonly allowedOrigins: ReadonlySet<string>;
}

/** One authenticated HTTP request. */
export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
  identity: Identity;
  /** Control lease key of HTTP callers: one per token name. */
  holderKey: string;
}
