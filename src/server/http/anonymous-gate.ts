import { isIPv4, isIPv6 } from "node:net";
import type { Socket } from "node:net";
import { SwitchboardError } from "../../protocol/index.js";
import { closeBy } from "./connection-close.js";
import { rawHttpError } from "./http.js";

/**
 * Caps the connections one address holds open before a request on them authenticates
 * (`limits.anonymousConnectionsPerAddress`), so a host without a token cannot use up the file
 * descriptors by opening sockets and sending nothing or bad tokens. IPv6 counts by /64; loopback
 * not per address (local users, a reverse proxy). All addresses together hold at most `total`
 * ({@link anonymousBudget}): past it the oldest is closed, so a client that authenticates at once
 * still gets in. docs/security.md.
 */
export class AnonymousConnectionGate {
  private readonly perAddress = new Map<string, number>();
  /** Counted connections, with the key they count under. */
  private readonly counted = new WeakMap<Socket, string>();
  private readonly refusedSockets = new WeakSet<Socket>();
  /** Every connection not authenticated (refused ones too), oldest first, with when it came. */
  private readonly anonymous = new Map<Socket, number>();

  constructor(
    private readonly limit: number,
    private readonly options: {
      countLoopback?: boolean;
      onRefused?: () => void;
      /** At most this many connections without a credential, all addresses together (default: no bound). */
      total?: number;
      /** The oldest of them was closed to make room for a new one. */
      onEvicted?: () => void;
    } = {},
  ) {}

  /** A new TCP connection: false when its address already holds the maximum (close it). */
  admit(socket: Socket): boolean {
    const address = socket.remoteAddress;
    if (address === undefined) return true; // already closed: nothing to count
    if (!this.options.countLoopback && isLoopback(address)) {
      this.track(socket);
      return true;
    }
    const key = addressKey(address);
    const n = this.perAddress.get(key) ?? 0;
    if (n >= this.limit) {
      this.options.onRefused?.();
      return false;
    }
    this.perAddress.set(key, n + 1);
    this.counted.set(socket, key);
    this.track(socket);
    return true;
  }

  /** Connections without a credential now, all addresses together (for tests and metrics). */
  get total(): number {
    return this.anonymous.size;
  }

  /**
   * Counts `socket` in the total, or closes it at once when the total is reached and none of
   * the others is {@link ANONYMOUS_EVICT_AGE_MS} old (then the oldest is closed for it): a client
   * that sends its credential at once gets in past connections that hold a half-sent request,
   * and a flood of reconnects cannot close a new client's connection before it was read.
   */
  private track(socket: Socket): void {
    const total = this.options.total ?? Infinity;
    if (this.anonymous.size >= total) {
      const [oldest, since] = this.anonymous.entries().next().value!;
      this.options.onEvicted?.();
      const victim = performance.now() - since >= ANONYMOUS_EVICT_AGE_MS ? oldest : socket;
      this.release(victim);
      victim.destroy();
      if (victim === socket) return;
    }
    this.anonymous.set(socket, performance.now());
    socket.once("close", () => this.release(socket));
  }

  /**
   * Answers a connection `admit` turned away with `429 LIMIT_EXCEEDED` and closes it. The answer
   * goes out before the request is read (HTTP clients take it as the answer to their request);
   * the connection is then read and discarded until the client closes, at most
   * {@link REFUSED_LINGER_MS}: closing at once could reset the connection before the client has
   * read the answer, and clients that see a bare reset may retry without end.
   */
  refuse(socket: Socket): void {
    this.refusedSockets.add(socket);
    // It holds a descriptor until it closes: in the total, so a flood of refusals is bounded too.
    this.track(socket);
    socket.on("error", () => undefined);
    socket.end(REFUSAL);
    closeBy(socket, REFUSED_LINGER_MS);
  }

  /** Whether `socket` was refused (its requests must not be served). */
  refused(socket: Socket): boolean {
    return this.refusedSockets.has(socket);
  }

  /** A request or upgrade on `socket` presented valid credentials: it no longer counts. */
  authenticated(socket: Socket): void {
    this.release(socket);
  }

  /** Connections counted against `address` now (for tests and metrics). */
  count(address: string): number {
    return this.perAddress.get(addressKey(address)) ?? 0;
  }

  private release(socket: Socket): void {
    this.anonymous.delete(socket);
    const key = this.counted.get(socket);
    if (key === undefined) return;
    this.counted.delete(socket);
    const left = (this.perAddress.get(key) ?? 1) - 1;
    if (left <= 0) this.perAddress.delete(key);
    else this.perAddress.set(key, left);
  }
}

/**
 * Descriptors the anonymous budget leaves out before its share is taken: the log's (SQLite's
 * database, WAL and shared memory, output files, the lock), the listening socket, plugins' and
 * sessions' first pipes and terminals, with room to spare.
 */
export const FD_RESERVED_FOR_GATEWAY = 256;
/**
 * The share of the other descriptors that connections without a valid credential may hold, all
 * addresses together, loopback included; the rest is for authenticated clients and sessions.
 */
export const ANONYMOUS_FD_SHARE = 0.25;
/** Past the anonymous budget, the oldest such connection is closed for a new one only once it is this old (see `track`). */
export const ANONYMOUS_EVICT_AGE_MS = 1000;
/** The anonymous budget however low the descriptor limit, and where it is unknown (no /proc). */
export const ANONYMOUS_CONNECTIONS_MIN = 16;
export const ANONYMOUS_CONNECTIONS_UNKNOWN_LIMIT = 1024;

/**
 * How many connections without a credential the gateway keeps open at once, from its descriptor
 * limit: 4,936 at 20,000 descriptors, 192 at 1,024.
 */
export function anonymousBudget(fdLimit: number | null): number {
  if (fdLimit === null) return ANONYMOUS_CONNECTIONS_UNKNOWN_LIMIT;
  return Math.max(ANONYMOUS_CONNECTIONS_MIN, Math.floor((fdLimit - FD_RESERVED_FOR_GATEWAY) * ANONYMOUS_FD_SHARE));
}

/** How long a refused connection is kept for the client to read its answer and close. */
export const REFUSED_LINGER_MS = 5000;

const REFUSAL = rawHttpError(
  new SwitchboardError(
    "LIMIT_EXCEEDED",
    "this address has too many connections open without a valid credential (limits.anonymousConnectionsPerAddress); send Authorization: Bearer <token>, or close idle connections",
  ),
  { "Retry-After": "5" },
);

/** `127.0.0.0/8`, `::1` and their IPv4-mapped forms. */
export function isLoopback(address: string): boolean {
  const v4 = mappedIPv4(address);
  if (v4 !== undefined) return v4.startsWith("127.");
  return isIPv6(address) && expandIPv6(address).every((group, i) => group === (i === 7 ? 1 : 0));
}

/** What a peer is counted under: its IPv4 address, or the /64 of its IPv6 address. */
export function addressKey(address: string): string {
  const v4 = mappedIPv4(address);
  if (v4 !== undefined) return v4;
  if (!isIPv6(address)) return address;
  return `${expandIPv6(address)
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(":")}::/64`;
}

function mappedIPv4(address: string): string | undefined {
  if (isIPv4(address)) return address;
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m?.[1];
}

/** The eight 16-bit groups of an IPv6 address (`::` expanded; a zone id dropped). */
function expandIPv6(address: string): number[] {
  const bare = address.split("%")[0]!;
  const [head, tail] = bare.includes("::") ? bare.split("::") : [bare, undefined];
  const parse = (part: string | undefined): number[] =>
    part === undefined || part === ""
      ? []
      : part.split(":").flatMap((g) => {
          if (!g.includes(".")) return [Number.parseInt(g, 16)];
          // An embedded IPv4 address (`64:ff9b::192.0.2.1`) is the last two groups.
          const [a = 0, b = 0, c = 0, d = 0] = g.split(".").map(Number);
          return [(a << 8) | b, (c << 8) | d];
        });
  const front = parse(head);
  const back = parse(tail);
  return [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
}
