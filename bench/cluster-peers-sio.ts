/**
 * One socket.io node for bench/cluster-peers.ts: `node --import tsx bench/cluster-peers-sio.ts
 * REDIS_URL` serves socket.io on a free loopback port with `@socket.io/redis-streams-adapter` and
 * connection state recovery, and prints `listening PORT`. A client with `auth.role = "sub"` joins
 * the room `subs` (a recovered socket keeps its rooms); a `pub` event is broadcast to that room as
 * `m`, and acknowledged once handed to the adapter.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "ioredis";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-streams-adapter";

const redisUrl = process.argv[2];
if (!redisUrl) throw new Error("usage: cluster-peers-sio.ts REDIS_URL");

const ROOM = "subs";
/** Longer than the bench's cut, so every cut subscriber is recoverable. */
const RECOVERY_MS = 60_000;

const http = createServer();
const io = new Server(http, {
  adapter: createAdapter(new Redis(redisUrl)),
  connectionStateRecovery: { maxDisconnectionDuration: RECOVERY_MS, skipMiddlewares: true },
  transports: ["websocket"],
});
io.on("connection", (socket) => {
  if (socket.handshake.auth["role"] === "sub" && !socket.recovered) void socket.join(ROOM);
  socket.on("pub", (data: unknown, ack?: () => void) => {
    io.to(ROOM).emit("m", data);
    ack?.();
  });
});
http.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${(http.address() as AddressInfo).port}\n`);
});
