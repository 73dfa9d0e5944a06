/**
 * A TCP proxy on 127.0.0.1:0 that injects the network faults real users meet, for
 * reconnection tests: cut (RST or FIN), black-hole (both sockets stay open but nothing is
 * forwarded in one or both directions — a laptop lid, a mobile handover, a half-open
 * connection), abandon (the client's side ends, the gateway's stays open), throttle, and heal. Bytes held by a black hole are delivered when it heals,
 * as TCP would retransmit them: the proxy delays, it never drops or corrupts a stream.
 */
import { createServer, connect as netConnect } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";

/** `up` is client -> upstream, `down` is upstream -> client. */
export type Direction = "up" | "down" | "both";

interface Pipe {
  client: Socket;
  upstream: Socket;
  /** Per direction: forwarding stopped. */
  held: { up: boolean; down: boolean };
  /** The client asked for a WebSocket upgrade on this connection. */
  websocket: boolean;
}

/**
 * How {@link FaultProxy.cut} ends connections: `close` closes both sockets (FIN, or RST when
 * unread data is left, as the kernel decides), `rst` resets them (a crashed middlebox, a
 * dropped NAT entry), `fin` ends them in order (a peer that closed).
 */
export type CutKind = "close" | "rst" | "fin";

export class FaultProxy {
  private readonly pipes = new Set<Pipe>();
  /** The gateway's side of abandoned connections (see {@link abandon}), ended by {@link close}. */
  private readonly abandoned = new Set<Socket>();
  private blackHole: { up: boolean; down: boolean } = { up: false, down: false };
  /** Bytes per second per direction of every connection, or undefined for full speed. */
  private rate: number | undefined;
  /** TCP connections accepted so far (HTTP included; each reconnect is one more). */
  connections = 0;
  /** WebSocket upgrades seen so far: how often a client (re)connected. */
  upgrades = 0;
  /** While true, new connections are accepted and dropped at once (the gateway looks down). */
  down = false;

  private constructor(
    private readonly server: Server,
    private targetPort: number,
    private readonly targetHost: string,
  ) {
    server.on("connection", (client) => this.onConnection(client));
  }

  /** A proxy to `target` (the gateway's `http://127.0.0.1:PORT`, or a port). */
  static async start(target: string | number): Promise<FaultProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = typeof target === "number" ? new URL(`http://127.0.0.1:${target}`) : new URL(target);
    return new FaultProxy(server, Number(url.port), url.hostname);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** The proxy's base URL, to give clients instead of the gateway's. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** WebSocket connections currently open through the proxy. */
  get openSockets(): number {
    return [...this.pipes].filter((p) => p.websocket).length;
  }

  /** Sends new connections to another port (a gateway restarted elsewhere). */
  retarget(port: number): void {
    this.targetPort = port;
  }

  /** Cuts every open connection, both sides at once (see {@link CutKind}). */
  cut(kind: CutKind = "close"): void {
    for (const pipe of [...this.pipes]) {
      this.pipes.delete(pipe);
      for (const socket of [pipe.client, pipe.upstream]) {
        if (kind === "rst") socket.resetAndDestroy();
        else if (kind === "fin") socket.end();
        else socket.destroy();
      }
    }
  }

  /**
   * Ends every open connection on the client's side only, as a drop that nobody closed: the
   * client sees its connection go, while the gateway's side stays open and hears nothing (until
   * its pings find it dead, or {@link close}). Not cut by {@link cut}: chain a second proxy in
   * front of the gateway to end it at a chosen time.
   */
  abandon(): void {
    for (const pipe of [...this.pipes]) {
      // Out of `pipes` first, so that the client's side closing does not end the gateway's.
      this.pipes.delete(pipe);
      this.abandoned.add(pipe.upstream);
      pipe.client.destroy();
    }
  }

  /**
   * Stops forwarding in `direction` on every open connection and on new ones, keeping the
   * sockets open: neither side hears of it. New connections are accepted but reach nothing
   * while the downstream direction is held (their handshake gets no answer).
   */
  blackhole(direction: Direction = "both"): void {
    if (direction !== "down") this.blackHole.up = true;
    if (direction !== "up") this.blackHole.down = true;
    for (const pipe of this.pipes) this.hold(pipe);
  }

  /** Forwards at most `bytesPerSecond` in each direction of each connection (undefined: full speed). */
  throttle(bytesPerSecond: number | undefined): void {
    this.rate = bytesPerSecond;
  }

  /** Ends black holes and throttling: held bytes flow again, in order. */
  heal(): void {
    this.blackHole = { up: false, down: false };
    this.rate = undefined;
    for (const pipe of this.pipes) this.hold(pipe);
  }

  /** Closes the listener and every connection, abandoned ones included. */
  async close(): Promise<void> {
    this.cut();
    for (const upstream of this.abandoned) upstream.destroy();
    this.abandoned.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(client: Socket): void {
    this.connections++;
    if (this.down) {
      client.destroy();
      return;
    }
    const upstream = netConnect(this.targetPort, this.targetHost);
    const pipe: Pipe = { client, upstream, held: { up: false, down: false }, websocket: false };
    this.pipes.add(pipe);
    client.once("data", (chunk: Buffer) => {
      if (!/^upgrade:\s*websocket/im.test(chunk.toString("latin1"))) return;
      this.upgrades++;
      pipe.websocket = true;
    });
    const drop = () => {
      if (!this.pipes.delete(pipe)) return;
      // One side went: the other goes the same way (a reset stays a reset).
      client.destroy();
      upstream.destroy();
    };
    // Errors (ECONNRESET, ECONNREFUSED from a gateway that is down) end the pair.
    client.on("error", drop);
    upstream.on("error", drop);
    client.on("close", drop);
    upstream.on("close", drop);
    this.forward(pipe, client, upstream, "up");
    this.forward(pipe, upstream, client, "down");
    this.hold(pipe);
  }

  private hold(pipe: Pipe): void {
    pipe.held = { ...this.blackHole };
    if (pipe.held.up) pipe.client.pause();
    else pipe.client.resume();
    if (pipe.held.down) pipe.upstream.pause();
    else pipe.upstream.resume();
  }

  private forward(pipe: Pipe, from: Socket, to: Socket, direction: "up" | "down"): void {
    // A chunk read just before the hole opened is held here, not written.
    const waiting: Buffer[] = [];
    const flush = () => {
      while (waiting.length > 0 && !pipe.held[direction]) {
        const chunk = waiting.shift()!;
        if (!to.writable) return;
        to.write(chunk);
      }
    };
    from.on("data", (chunk: Buffer) => {
      waiting.push(chunk);
      if (pipe.held[direction]) {
        from.pause();
        const retry = setInterval(() => {
          if (!this.pipes.has(pipe)) return clearInterval(retry);
          if (pipe.held[direction]) return;
          clearInterval(retry);
          flush();
        }, 10);
        return;
      }
      const rate = this.rate;
      if (rate === undefined) {
        flush();
        return;
      }
      from.pause();
      setTimeout(
        () => {
          flush();
          if (!pipe.held[direction] && this.pipes.has(pipe)) from.resume();
        },
        Math.ceil((chunk.length / rate) * 1000),
      );
    });
    from.on("end", () => {
      flush();
      to.end();
    });
  }
}
