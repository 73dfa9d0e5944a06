/**
 * One node of the floor in bench/cluster-peers.ts: the least a Redis-backed fan-out does.
 * `node --import tsx bench/cluster-peers-floor.ts REDIS_URL` serves WebSockets on a free loopback
 * port and prints `listening PORT`. A `?role=pub` connection's messages are each one `XADD` to
 * one stream; the node reads that stream (`XREAD BLOCK`) and sends each entry as `<id> <message>`
 * to its `?role=sub` connections. `?since=<id>` first sends what came after `id` (`XRANGE`).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "ioredis";
import type { WebSocket } from "ws";
import { WebSocketServer } from "ws";

const redisUrl = process.argv[2];
if (!redisUrl) throw new Error("usage: cluster-peers-floor.ts REDIS_URL");

const STREAM = "floor";
/** As socket.io's adapter trims its stream. */
const MAX_LEN = "10000";

const writer = new Redis(redisUrl);
const reader = new Redis(redisUrl);
const subs = new Set<WebSocket>();
const http = createServer();
const wss = new WebSocketServer({ server: http, perMessageDeflate: false });

wss.on("connection", (ws, req) => {
  const url = new URL(req.url ?? "/", "http://floor");
  if (url.searchParams.get("role") === "pub") {
    ws.on("message", (data) => void writer.xadd(STREAM, "MAXLEN", "~", MAX_LEN, "*", "m", data.toString()));
    return;
  }
  const since = url.searchParams.get("since");
  if (since === null) {
    subs.add(ws);
  } else {
    // Missed entries first, then live: a naive resume (an entry at the boundary may come twice).
    void writer.xrange(STREAM, `(${since}`, "+").then((rows) => {
      for (const [id, fields] of rows) ws.send(`${id} ${fields[1]}`);
      subs.add(ws);
    });
  }
  ws.on("close", () => subs.delete(ws));
});

async function follow(): Promise<void> {
  let last = "$";
  for (;;) {
    const streams = await reader.xread("COUNT", 100, "BLOCK", 0, "STREAMS", STREAM, last);
    for (const [, rows] of streams ?? []) {
      for (const [id, fields] of rows) {
        const frame = `${id} ${fields[1]}`;
        for (const ws of subs) ws.send(frame);
        last = id;
      }
    }
  }
}

http.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${(http.address() as AddressInfo).port}\n`);
  void follow();
});
