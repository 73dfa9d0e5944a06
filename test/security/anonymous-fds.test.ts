/**
 * Connections that never authenticate cannot take the gateway's file descriptors, loopback
 * included. Regression: two local processes holding ~21,000 half-sent HTTP requests kept the
 * gateway at its 20,000-descriptor limit for 40 s, and every authenticated request failed.
 */
import { readdirSync } from "node:fs";
import { Agent, request } from "node:http";
import { connect } from "node:net";
import type { Socket } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import { ANONYMOUS_EVICT_AGE_MS } from "../../src/server/http/anonymous-gate.js";
import { TEST_TOKEN } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";

/** The gateway's descriptor limit here, and the half-sent requests: more than it can hold. */
const FD_LIMIT = 1024;
const HALF_SENT = 1200;

/**
 * Holds `n` connections that each sent the start of a request and never its end, opening a new
 * one for each that closes (as the processes of the report did) until `stop`.
 */
function holdHalfSent(port: number, n: number, reconnect: boolean): { stop(): void } {
  const sockets = new Set<Socket>();
  let stopped = false;
  const openOne = () => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.write("GET /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    });
    sockets.add(socket);
    // Closed by the gateway to make room (or dropped at its limit, before the fix): expected here.
    socket.on("error", () => undefined);
    socket.once("close", () => {
      sockets.delete(socket);
      if (reconnect && !stopped) setImmediate(openOne);
    });
  };
  for (let i = 0; i < n; i++) openOne();
  return {
    stop() {
      stopped = true;
      for (const s of sockets) s.destroy();
    },
  };
}

/** An authenticated GET on a new connection: its status, or "no answer" within `ms`. */
async function authenticated(url: string, ms: number): Promise<number | "no answer"> {
  try {
    const res = await fetch(`${url}/v1/sessions`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}`, connection: "close" },
      signal: AbortSignal.timeout(ms),
    });
    await res.text();
    return res.status;
  } catch {
    // Aborted after `ms`, or the connection was closed unanswered.
    return "no answer";
  }
}

/** HTTP on one kept-alive connection, authenticated by its first request. */
function keptAlive(base: string) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  onTestFinished(() => agent.destroy());
  return (method: string, path: string, body?: unknown) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        base + path,
        { method, agent, headers: { authorization: `Bearer ${TEST_TOKEN}`, "content-type": "application/json" } },
        (res) => {
          let text = "";
          res.on("data", (d: Buffer) => (text += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode!, text }));
        },
      );
      req.on("error", reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
}

async function limitedGateway(): Promise<{ url: string; port: number; openFds: () => number }> {
  const { url, child } = await serveInChild({
    dataDir: tempDir("switchboard-anon-fds-"),
    wrapper: ["prlimit", `--nofile=${FD_LIMIT}`],
  });
  return { url, port: Number(new URL(url).port), openFds: () => readdirSync(`/proc/${child.pid}/fd`).length };
}

describe("descriptors kept from connections without a credential", () => {
  it("a flood of half-sent requests from loopback past the fd limit leaves descriptors for sessions and signed-in clients (regression)", async () => {
    const { url, port, openFds } = await limitedGateway();
    const http = keptAlive(url);
    expect((await http("GET", "/v1/sessions")).status).toBe(200);
    const attack = holdHalfSent(port, HALF_SENT, true);
    onTestFinished(() => attack.stop());
    await new Promise((r) => setTimeout(r, 2000));

    // A PTY session needs descriptors of its own (master, slave), and its log its files.
    const created = await http("POST", "/v1/sessions", { command: ["true"], pty: true });
    const open = openFds();
    attack.stop();
    expect(created.status, created.text).toBe(201);
    expect(open).toBeLessThan(FD_LIMIT - 256);
  }, 60_000);

  it("a new client gets in past connections that hold half-sent requests", async () => {
    const { url, port, openFds } = await limitedGateway();
    const attack = holdHalfSent(port, HALF_SENT, false);
    onTestFinished(() => attack.stop());
    // Older than the age past which one is closed for a newcomer.
    await new Promise((r) => setTimeout(r, ANONYMOUS_EVICT_AGE_MS + 1000));
    const statuses = [];
    // While a loaded machine still accepts the flood's backlog, the budget turns over and a
    // newcomer can be closed as the youngest (docs/operations.md, "Connections without a
    // credential"): a client tries again, as HTTP clients do after a reset, at most 3 times.
    for (let i = 0; i < 5; i++) {
      let status: number | "no answer" = "no answer";
      for (let attempt = 0; attempt < 3 && status === "no answer"; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, 500));
        status = await authenticated(url, 5000);
      }
      statuses.push(status);
    }
    const open = openFds();
    attack.stop();
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    expect(open).toBeLessThan(FD_LIMIT - 256);
  }, 60_000);
});
