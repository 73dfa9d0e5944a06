/**
 * The floor of bench/cluster-copy-storm.ts: the least a node does to stream sessions' logs from
 * Redis to a viewer while it serves a terminal, with nothing of Switchboard in it.
 * `node cluster-copy-storm-floor.js REDIS_URL` serves WebSockets on a free loopback port and
 * prints `listening PORT`.
 *
 * - `/copy`: the client's first message is a JSON array of stream keys (`sb:{<id>}:log`). The
 *   output bytes of each (field `b` of a `t=output` entry) are read in XRANGE pages of about
 *   1 MiB, two streams at once (as a token's copies on a node), the next page once the last one
 *   is written to the socket; each page is one binary message: the key's index (uint16), then
 *   its bytes. A text message `end <index>` follows a stream's last page.
 * - `/pty`: a `cat` in node-pty; `{"type":"stdin","data"}` in, `{"type":"stdout","data"}` out.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "ioredis";
import { spawn as spawnPty } from "node-pty";
import type { WebSocket } from "ws";
import { WebSocketServer } from "ws";

const redisUrl = process.argv[2];
if (!redisUrl) throw new Error("usage: cluster-copy-storm-floor.ts REDIS_URL");

/** Bytes a page aims at, the first page's count and the most entries one read asks for (as node b reads). */
const PAGE_BYTES = 1024 * 1024;
const FIRST_COUNT = 16;
const MAX_COUNT = 1000;
/** Streams read at once. */
const STREAMS_AT_ONCE = 2;

const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
// Any plain request (the bench's /healthz probe) is answered at once.
const http = createServer((_req, res) => res.end("ok"));
const wss = new WebSocketServer({ server: http, perMessageDeflate: false });

wss.on("connection", (ws, req) => {
  const path = new URL(req.url ?? "/", "http://floor").pathname;
  if (path === "/pty") terminal(ws);
  else if (path === "/copy") ws.once("message", (data) => void copyAll(ws, JSON.parse(data.toString()) as string[]));
  else ws.close(1008, "unknown path");
});

function terminal(ws: WebSocket): void {
  const term = spawnPty("cat", [], {
    name: "xterm-256color",
    cols: 80,
    rows: 24,
    cwd: process.cwd(),
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
  });
  term.onData((data) => ws.send(JSON.stringify({ type: "stdout", data })));
  ws.on("message", (raw) => {
    const frame = JSON.parse(raw.toString()) as { type: string; data?: string };
    if (frame.type === "stdin" && frame.data !== undefined) term.write(frame.data);
  });
  ws.on("close", () => term.kill());
}

async function copyAll(ws: WebSocket, keys: string[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < keys.length && ws.readyState === ws.OPEN) {
      const index = next++;
      await copy(ws, keys[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: STREAMS_AT_ONCE }, worker));
}

/** Sends stream `key`'s output bytes to `ws`, a page a message, each page once the last is written. */
async function copy(ws: WebSocket, key: string, index: number): Promise<void> {
  let from = "-";
  let count = FIRST_COUNT;
  for (;;) {
    const rows = await redis.xrangeBuffer(key, from, "+", "COUNT", count);
    if (rows.length === 0) break;
    const chunks: Buffer[] = [];
    const header = Buffer.alloc(2);
    header.writeUInt16BE(index);
    chunks.push(header);
    let biggest = 0;
    for (const [, fields] of rows) {
      let output = false;
      let bytes: Buffer | undefined;
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const name = fields[i]!.toString();
        if (name === "t") output = fields[i + 1]!.toString() === "output";
        else if (name === "b") bytes = fields[i + 1];
      }
      if (output && bytes) {
        chunks.push(bytes);
        biggest = Math.max(biggest, bytes.length);
      }
    }
    if (chunks.length > 1) await new Promise((written) => ws.send(Buffer.concat(chunks), { binary: true }, written));
    from = `(${rows.at(-1)![0].toString()}`;
    count = biggest === 0 ? FIRST_COUNT : Math.max(1, Math.min(MAX_COUNT, Math.floor(PAGE_BYTES / biggest)));
  }
  ws.send(`end ${index}`);
}

http.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${(http.address() as AddressInfo).port}\n`);
});
