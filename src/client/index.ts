/**
 * The Switchboard SDK: pure (no `node:` imports), for browsers and Node. In Node, import
 * `./node.js` instead, which plugs in the `ws` package and header authentication.
 */
export { connect, SwitchboardClient } from "./client.js";
export type { ClientEvents, ClientOptions, ConnectOptions } from "./client.js";
export type { HelloFrame } from "./multiplex-connection.js";
export type { AbortOptions } from "./abort.js";
export type { ControlLost } from "./control-leases.js";
export { CONNECT_TIMEOUT_MS } from "./reconnect-loop.js";
export type { ConnectionState, StateChange } from "./reconnect-loop.js";
export { MAX_QUEUED_REQUESTS, REQUEST_TIMEOUT_MS } from "./requests.js";
export type { RequestFrame } from "./requests.js";
export { PING_INTERVAL_MS, PONG_TIMEOUT_MS } from "./heartbeat.js";
export { Subscription } from "./subscription.js";
export type { ResetInfo, SubscribeOptions, SubscribedInfo, SubscriptionScreen } from "./subscription.js";
export { TerminalClient } from "./terminal.js";
export type { TerminalClientOptions, TerminalData, TerminalEvents, TerminalExit, TerminalScreen } from "./terminal.js";
export { HttpClient, HTTP_TIMEOUT_MS } from "./http.js";
export type {
  AbortResult,
  AgentListing,
  AppendEventInput,
  AppendedEvents,
  CreateSessionRequest,
  DiskUsageAnswer,
  EventsPage,
  EventsQuery,
  HttpClientOptions,
  OutputChunk,
  PluginListing,
  NodeListing,
  SessionsPage,
  SessionsPageQuery,
  SessionsQuery,
  TurnsQuery,
  WorktreeRemoval,
} from "./http.js";
export type { Delivery, InboundMessage, RouteResult } from "./messages.js";
export { OutputView, OUTPUT_VIEW_MAX_BYTES, outputBytes, utf8Length } from "./output-view.js";
export type { OutputViewChunk, OutputViewOptions } from "./output-view.js";
export {
  backoffDelay,
  INITIAL_CONNECT_ATTEMPTS,
  RECONNECT_FACTOR,
  RECONNECT_INITIAL_DELAY_MS,
  RECONNECT_MAX_ATTEMPTS,
  RECONNECT_MAX_DELAY_MS,
} from "./backoff.js";
export type { BackoffOptions } from "./backoff.js";
export {
  ConnectionError,
  CONNECTION_ERROR_CODES,
  errorFromWire,
  isConnectionError,
  isSwitchboardError,
} from "./errors.js";
export type { ClientError, ConnectionErrorCode } from "./errors.js";
export {
  BEARER_SUBPROTOCOL_PREFIX,
  CLOSE_HANDSHAKE_TIMEOUT_MS,
  COOKIE_KEY_HEADER,
  COOKIE_KEY_SUBPROTOCOL_PREFIX,
  SWITCHBOARD_SUBPROTOCOL,
} from "./transport.js";
export type { AuthMode, GatewayTarget, WebSocketConstructor, WebSocketLike } from "./transport.js";
export { SwitchboardError, reduceAgentState } from "../protocol/index.js";
export type {
  AgentCommand,
  AgentConfigOption,
  AgentMode,
  AgentState,
  AgentUsage,
  ContentBlock,
  DeviceListing,
  ErrorCode,
  EventOf,
  EventType,
  Pairing,
  PairingAddress,
  PairingRequest,
  PromptCapabilities,
  PromptRequest,
  SessionEvent,
  SessionInfo,
  SessionState,
  ShareCreated,
  ShareListing,
  ShareRequest,
  ShareScope,
} from "../protocol/index.js";
