import type { Server } from "node:http";
import type { Socket } from "node:net";

/** Node's name for the interval that enforces `headersTimeout` and `requestTimeout` (Node 18–24). */
const CHECKING_INTERVAL = "http.server.connectionsCheckingInterval";

/**
 * Runs Node's check of the request timeouts (408 to a client that trickles its request) only
 * while the server has a connection: Node runs it on an interval from `listen` on, which woke an
 * idle gateway every `connectionsCheckingInterval` (docs/benchmarks.md, "Idle cluster node").
 * A Node whose server keeps that interval under another name is left as it is.
 */
export function checkTimeoutsWhileConnected(server: Server, everyMs: number): void {
  server.once("listening", () => {
    // Node's own "listening" listener, added when the server was made, has started the interval.
    const record = server as unknown as Record<symbol, NodeJS.Timeout | undefined>;
    const key = Object.getOwnPropertySymbols(server).find((s) => s.description === CHECKING_INTERVAL);
    const started = key === undefined ? undefined : record[key];
    const check = (started as unknown as { _onTimeout?: unknown } | undefined)?._onTimeout;
    if (key === undefined || started === undefined || typeof check !== "function") return;
    clearInterval(started);
    record[key] = undefined;
    let open = 0;
    server.on("connection", (socket: Socket) => {
      // `server.close()` clears the interval under Node's name: it is kept there.
      if (open++ === 0) record[key] = setInterval(check as () => void, everyMs).unref();
      socket.once("close", () => {
        if (--open === 0) {
          clearInterval(record[key]);
          record[key] = undefined;
        }
      });
    });
  });
}
