import { connect } from "node:net";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CLIENT_ERROR_LINGER_MS,
  KEEP_ALIVE_ADVERTISED_MS,
  KEEP_ALIVE_GRACE_MS,
} from "../../src/server/http/connection-close.js";
import { startTestGateway } from "../client/helpers.js";
import type { TestGateway } from "../client/helpers.js";
import { sleep } from "../helpers/sleep.js";
import { waitFor } from "../helpers/wait-for.js";

let gw: TestGateway;
let port: number;
beforeAll(async () => {
  gw = await startTestGateway();
  port = Number(new URL(gw.url).port);
});
afterAll(() => gw.close());

/** A raw connection to the gateway: what it has received so far, whether it was reset, when it closed. */
function rawConnection(allowHalfOpen = false): {
  socket: Socket;
  received: () => string;
  errors: string[];
  closed: Promise<number>;
} {
  const socket = connect({ port, host: "127.0.0.1", allowHalfOpen });
  let received = "";
  const errors: string[] = [];
  socket.on("data", (d: Buffer) => (received += d.toString("latin1")));
  socket.on("error", (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
  const closed = new Promise<number>((resolve) => socket.once("close", () => resolve(performance.now())));
  return { socket, received: () => received, errors, closed };
}

const HEALTH = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
const answers = (text: string) => text.match(/HTTP\/1\.1 \d{3}/g) ?? [];

describe("closing connections without cutting a request the client has sent", () => {
  it("reads a request that came on an idle connection while the gateway's loop was held past the advertised time", async () => {
    const c = rawConnection();
    c.socket.write(HEALTH);
    await waitFor(() => answers(c.received()).length === 1, 5_000, "the first answer");
    expect(c.received()).toMatch(new RegExp(`\r\nKeep-Alive: timeout=${KEEP_ALIVE_ADVERTISED_MS / 1000}\r\n`, "i"));
    // The gateway runs in this process: hold its loop past the advertised time, then send. On
    // resume the expired keep-alive timer runs before the request is read.
    const until = performance.now() + KEEP_ALIVE_ADVERTISED_MS + 1_000;
    while (performance.now() < until);
    c.socket.write(HEALTH);
    await waitFor(() => answers(c.received()).length === 2, 5_000, "the second answer");
    expect(answers(c.received())).toEqual(["HTTP/1.1 200", "HTTP/1.1 200"]);
    expect(c.errors).toEqual([]);
    c.socket.destroy();
  }, 20_000);

  it("keeps an idle connection for the grace past the advertised time, then closes it", async () => {
    const c = rawConnection();
    c.socket.write(HEALTH);
    await waitFor(() => answers(c.received()).length === 1, 5_000, "the first answer");
    // A client that sends just after the advertised time (its timer ran late) is answered.
    await sleep(KEEP_ALIVE_ADVERTISED_MS + 1_000);
    c.socket.write(HEALTH);
    await waitFor(() => answers(c.received()).length === 2, 5_000, "the second answer");
    const answered = performance.now();
    // Idle from here on: closed by the gateway after the advertised time and the grace.
    const closedAt = await c.closed;
    expect(closedAt - answered).toBeGreaterThan(KEEP_ALIVE_ADVERTISED_MS + KEEP_ALIVE_GRACE_MS - 500);
    expect(closedAt - answered).toBeLessThan(KEEP_ALIVE_ADVERTISED_MS + KEEP_ALIVE_GRACE_MS + 5_000);
    expect(c.errors).toEqual([]);
  }, 30_000);

  it("answers a request head over 16 KiB with 431 and reads what the client still sends, so it is never reset", async () => {
    // Half-open, as an HTTP client still sending its request is: the gateway's FIN does not end its side.
    const c = rawConnection(true);
    c.socket.write(`GET /v1/sessions?types=${"x".repeat(20_000)}`);
    await waitFor(() => c.received().length > 0, 5_000, "the answer");
    // The rest of the request comes after the answer: read and discarded, not reset.
    for (let i = 0; i < 5; i++) {
      c.socket.write("x".repeat(100_000));
      await sleep(20);
    }
    c.socket.end(" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await c.closed;
    expect(c.errors).toEqual([]);
    expect(c.received()).toBe(
      "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    );
  });

  it("closes a connection answered 400 whose client does not close, after the linger however it keeps sending", async () => {
    // A half-open client: it does not end its side when the gateway ends its own, and learns that
    // the gateway closed only when a write is reset.
    const c = rawConnection(true);
    const sent = performance.now();
    c.socket.write("NOT A REQUEST\r\n\r\n");
    await waitFor(() => c.received().endsWith("\r\n\r\n"), 5_000, "the answer");
    expect(c.received()).toBe("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    let resetAt = 0;
    while (c.errors.length === 0 && performance.now() - sent < CLIENT_ERROR_LINGER_MS + 5_000) {
      c.socket.write("x");
      await sleep(100);
      resetAt = performance.now();
    }
    expect(c.errors.length).toBeGreaterThan(0);
    expect(resetAt - sent).toBeGreaterThan(CLIENT_ERROR_LINGER_MS - 500);
    expect(resetAt - sent).toBeLessThan(CLIENT_ERROR_LINGER_MS + 3_000);
  }, 15_000);
});
