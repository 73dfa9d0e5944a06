import { abortReason, onAbort } from "./abort.js";
import { ConnectionError } from "./errors.js";

/** The client pings this often while open (latency, and a dead-peer check). */
export const PING_INTERVAL_MS = 15_000;
/** With nothing received for a ping interval plus this long, the connection counts as dead and is replaced. */
export const PONG_TIMEOUT_MS = 10_000;

const now: () => number = typeof performance !== "undefined" ? () => performance.now() : () => Date.now();

interface PendingPing {
  resolve: (ms: number) => void;
  reject: (error: Error) => void;
}

/** A ping whose pong nobody waits for (the heartbeat's own, or an aborted `ping()`). */
const UNAWAITED: PendingPing = { resolve: () => undefined, reject: () => undefined };

export interface HeartbeatOptions {
  intervalMs: number;
  timeoutMs: number;
  /** Sends a frame on the current connection. */
  send(text: string): void;
  /** The ping frame for the ping sent at `t`; default `/v1/ws`'s `{op: "ping", t}`. */
  pingFrame?: (t: number) => string;
}

/**
 * Pings the gateway while the connection is open: measures the round trip, and notices a
 * peer that went silent (nothing received for a ping interval plus the pong timeout).
 */
export class Heartbeat {
  private timer: ReturnType<typeof setInterval> | undefined;
  private lastReceivedAt = 0;
  private readonly pings = new Map<number, PendingPing>();
  private lastLatency: number | undefined;

  constructor(private readonly options: HeartbeatOptions) {}

  /** The last measured round trip in ms, or undefined before the first. */
  get latency(): number | undefined {
    return this.lastLatency;
  }

  /** Something arrived from the gateway: the connection is alive. */
  received(): void {
    this.lastReceivedAt = now();
  }

  /**
   * Pings every interval while `isCurrent()` (the connection it was started for is still the
   * client's); `onSilent` hears of a connection that stopped answering.
   */
  start(isCurrent: () => boolean, onSilent: (error: ConnectionError) => void): void {
    const { intervalMs: interval, timeoutMs: timeout } = this.options;
    this.timer = setInterval(() => {
      if (!isCurrent()) return;
      if (now() - this.lastReceivedAt > interval + timeout) {
        onSilent(new ConnectionError("TIMEOUT", `nothing from the gateway for ${interval + timeout} ms`));
        return;
      }
      this.sendPing();
    }, interval);
    (this.timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Measures one round trip now (the caller checks that the connection is open). */
  ping(signal?: AbortSignal): Promise<number> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    return new Promise((resolve, reject) => {
      const t = this.sendPing();
      const offAbort = onAbort(signal, (reason) => {
        // The slot stays until its pong comes, so that the pong is not taken for another ping's.
        if (this.pings.has(t)) this.pings.set(t, UNAWAITED);
        reject(reason);
      });
      this.pings.set(t, {
        resolve: (ms) => {
          offAbort();
          resolve(ms);
        },
        reject: (error) => {
          offAbort();
          reject(error);
        },
      });
    });
  }

  /**
   * The gateway's `pong` to the ping sent at `t`; without `t` (`/ws/session`'s pong echoes
   * nothing), to the oldest ping waiting, since the gateway answers pings in order.
   */
  pong(t?: number): void {
    if (t === undefined) {
      const oldest = this.pings.keys().next();
      if (oldest.done === true) return;
      t = oldest.value;
    }
    const ping = this.pings.get(t);
    if (!ping) return;
    this.pings.delete(t);
    this.lastLatency = now() - t;
    ping.resolve(this.lastLatency);
  }

  /** The connection dropped: no pong will come. */
  disconnected(cause: Error): void {
    for (const ping of this.pings.values())
      ping.reject(new ConnectionError("DISCONNECTED", "the connection dropped", { cause }));
    this.pings.clear();
  }

  /** The client closed: every ping waiting for its pong rejects with `reason`. */
  close(reason: Error): void {
    for (const ping of this.pings.values()) ping.reject(reason);
    this.pings.clear();
  }

  private sendPing(): number {
    let t = now();
    while (this.pings.has(t)) t += 0.001;
    if (!this.pings.has(t)) this.pings.set(t, UNAWAITED);
    this.options.send(this.options.pingFrame?.(t) ?? JSON.stringify({ op: "ping", t }));
    return t;
  }
}
