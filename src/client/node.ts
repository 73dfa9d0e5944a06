/**
 * The SDK's Node entry: everything from `./index.js`, with `connect`, `SwitchboardClient` and
 * `TerminalClient` defaulting to the `ws` package (Node 20 has no global WebSocket) and to
 * `Authorization: Bearer` headers on upgrades.
 *
 * @example
 * import { connect } from "switchboard-client/node";
 * const client = await connect({ url: "http://127.0.0.1:7317", token: process.env.SWITCHBOARD_TOKEN });
 */
import NodeWebSocket from "ws";
import { SwitchboardClient as BaseClient, connect as baseConnect } from "./client.js";
import type { ClientOptions, ConnectOptions } from "./client.js";
import { TerminalClient as BaseTerminalClient } from "./terminal.js";
import type { TerminalClientOptions } from "./terminal.js";
import type { GatewayTarget, WebSocketConstructor } from "./transport.js";

export * from "./index.js";

/** The `ws` package's class as the SDK's WebSocket. */
export const WebSocket: WebSocketConstructor = NodeWebSocket;

function withNodeDefaults<T extends GatewayTarget>(options: T): T {
  return { ...options, WebSocket: options.WebSocket ?? WebSocket, auth: options.auth ?? "header" };
}

/** {@link BaseClient} with Node defaults. */
export class SwitchboardClient extends BaseClient {
  constructor(options: ClientOptions) {
    super(withNodeDefaults(options));
  }
}

/** {@link BaseTerminalClient} with Node defaults. */
export class TerminalClient extends BaseTerminalClient {
  constructor(options: TerminalClientOptions) {
    super(withNodeDefaults(options));
  }
}

/** `connect` with Node defaults: resolves once the gateway said hello. */
export function connect(options: ConnectOptions): Promise<BaseClient> {
  return baseConnect(withNodeDefaults(options));
}
