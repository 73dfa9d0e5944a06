import { createServer } from "node:http";
import type { Server } from "node:http";
import { connect } from "node:net";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { checkTimeoutsWhileConnected } from "../../src/server/http/http-server.js";
import { afterTest } from "../helpers/cleanup.js";
import { waitFor } from "../helpers/wait-for.js";

/** The interval Node keeps under its own name, or undefined while none runs. */
function checking(server: Server): unknown {
  const key = Object.getOwnPropertySymbols(server).find(
    (s) => s.description === "http.server.connectionsCheckingInterval",
  );
  expect(key).toBeDefined();
  return (server as unknown as Record<symbol, unknown>)[key!];
}

describe("checkTimeoutsWhileConnected", () => {
  it("answers 408 to a request that trickles, and runs no check while no connection is open", async () => {
    const server = createServer({ connectionsCheckingInterval: 50 }, (_req, res) => res.end("ok"));
    server.headersTimeout = 300;
    server.requestTimeout = 300;
    checkTimeoutsWhileConnected(server, 50);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    afterTest(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { port } = server.address() as AddressInfo;
    expect(checking(server)).toBeUndefined();

    // Headers that never end: Node's check answers 408 once headersTimeout has passed.
    const socket = connect(port, "127.0.0.1");
    afterTest(() => socket.destroy());
    let answer = "";
    socket.on("data", (d: Buffer) => (answer += d.toString()));
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    await waitFor(() => checking(server) !== undefined, 2_000, "the check to run");
    const started = performance.now();
    await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(performance.now() - started).toBeLessThan(2_000);
    await waitFor(() => checking(server) === undefined, 2_000, "the check to stop");

    // A whole request is still answered, and the check stops again once its connection closes.
    const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: "close" } });
    expect(await res.text()).toBe("ok");
    await waitFor(() => checking(server) === undefined, 2_000, "the check to stop");
  });
});
