/**
 * The two processes of the cluster bench's PTY floor (bench/cluster.ts): the least a flood to
 * another node does, with nothing of Switchboard in it. Each reads one stream key a line on stdin.
 *
 *   node --import tsx bench/cluster-floor-pty.ts write <redis-url> <command as JSON>
 *     runs the command in node-pty per key and appends each chunk read (`XADD key * o <chunk>`),
 *     pipelined, up to WRITES_IN_FLIGHT calls at once; then an end entry (`e`); prints "done".
 *   node --import tsx bench/cluster-floor-pty.ts read <redis-url>
 *     serves one WebSocket client on 127.0.0.1 (prints "listening <port>"), and per key sends
 *     every `o` chunk of the stream, read with `XREAD BLOCK`, as a binary message; at the end entry, a text message "end".
 */
import { createInterface } from "node:readline";
import { Redis } from "ioredis";
import { spawn as spawnRawPty } from "node-pty";
import { WebSocketServer } from "ws";
import type { WebSocket } from "ws";

/** Pipelined XADD calls in flight at once (the gateway's REDIS_APPENDS_IN_FLIGHT is 4). */
const WRITES_IN_FLIGHT = 4;
/** Output read and not yet sent to Redis above which the PTY is paused (resumed below it). */
const PENDING_BYTES_MAX = 1024 * 1024;
/** node-pty's `onExit` may come before the last chunks: after it, the writer ends once none came for this long. */
const TAIL_QUIET_MS = 100;
/** Entries an `XREAD` returns at most. */
const READ_COUNT = 1000;
/** Bytes queued on the WebSocket above which the reader waits for them to be written. */
const SOCKET_BUFFERED_MAX = 1024 * 1024;

const [role, url, command] = process.argv.slice(2);
if ((role !== "write" && role !== "read") || url === undefined) {
  process.stderr.write("usage: cluster-floor-pty.ts write <redis-url> <command JSON> | read <redis-url>\n");
  process.exit(2);
}
const redis = new Redis(url, { maxRetriesPerRequest: null });
const keys = createInterface({ input: process.stdin });
// The bench ends this process by closing its stdin (or killing it).
keys.on("close", () => {
  redis.disconnect();
  process.exit(0);
});

if (role === "write") {
  const [file, ...args] = JSON.parse(command ?? "[]") as string[];
  if (file === undefined) throw new Error("empty command");
  keys.on("line", (key) => void flood(key, file, args));
  process.stdout.write("ready\n");
} else {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
  server.on("listening", () => {
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error(`unexpected address ${address}`);
    process.stdout.write(`listening ${address.port}\n`);
  });
  server.once("connection", (ws) => {
    server.close();
    keys.on("line", (key) => void forward(key, ws));
  });
}

/** Runs the command once in node-pty, every chunk to stream `key`, and says "done" when all are in Redis. */
async function flood(key: string, file: string, args: string[]): Promise<void> {
  const term = spawnRawPty(file, args, {
    name: "xterm-256color",
    cols: 80,
    rows: 24,
    cwd: process.cwd(),
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
    encoding: null,
  });
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let inFlight = 0;
  let paused = false;
  let exited = false;
  let quiet = false;
  let quietTimer: NodeJS.Timeout | undefined;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const send = (): void => {
    while (inFlight < WRITES_IN_FLIGHT && pending.length > 0) {
      const pipeline = redis.pipeline();
      for (const chunk of pending) pipeline.xadd(key, "*", "o", chunk);
      pending = [];
      pendingBytes = 0;
      inFlight++;
      void pipeline.exec().then((results) => {
        const failed = results?.find(([error]) => error !== null);
        if (failed) throw failed[0]!;
        inFlight--;
        if (paused && pendingBytes < PENDING_BYTES_MAX) {
          paused = false;
          term.resume();
        }
        send();
      });
    }
    if (quiet && inFlight === 0 && pending.length === 0) finish();
  };
  term.onData((chunk) => {
    const bytes = chunk as unknown as Buffer;
    if (exited) waitQuiet();
    pending.push(bytes);
    pendingBytes += bytes.length;
    if (pendingBytes >= PENDING_BYTES_MAX && !paused) {
      paused = true;
      term.pause();
    }
    send();
  });
  const waitQuiet = (): void => {
    clearTimeout(quietTimer);
    quietTimer = setTimeout(() => {
      quiet = true;
      send();
    }, TAIL_QUIET_MS);
  };
  term.onExit(() => {
    exited = true;
    waitQuiet();
  });
  await finished;
  await redis.xadd(key, "*", "e", "");
  process.stdout.write("done\n");
}

/** Sends each output chunk of stream `key` to `ws` until its end entry. */
async function forward(key: string, ws: WebSocket): Promise<void> {
  let last = "0-0";
  for (;;) {
    const reply = await redis.xreadBuffer("COUNT", READ_COUNT, "BLOCK", 0, "STREAMS", key, last);
    const entries = reply?.[0]?.[1] ?? [];
    // Settles once the batch's last chunk is written; a socket error shows in the bench as missing bytes.
    let written: Promise<unknown> | undefined;
    for (const [id, fields] of entries) {
      last = id.toString();
      if (fields[0]?.toString() === "e") {
        ws.send("end");
        return;
      }
      written = new Promise((settle) => ws.send(fields[1]!, { binary: true }, settle));
    }
    if (written && ws.bufferedAmount > SOCKET_BUFFERED_MAX) await written;
  }
}
