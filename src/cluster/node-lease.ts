import { randomBytes } from "node:crypto";
import type { Clock, Timer } from "../core/clock.js";
import type { RedisClient } from "./redis-client.js";

/** How long a node's lease lives without renewal; it is renewed every third of that. */
export const NODE_LEASE_TTL_MS = 10_000;

/**
 * Extends the lease while it is still this holder's, takes it again when it expired meanwhile
 * (Redis was unreachable for longer than the TTL) and nobody took it; 0 when another holds it.
 */
const RENEW = `local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if held == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0`;
/** Deletes the lease only while it is still this holder's. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

export interface NodeLeaseOptions {
  redis: RedisClient;
  keyPrefix: string;
  nodeId: string;
  clock: Clock;
  ttlMs?: number;
  /** Told when a renewal found the lease taken by someone else, or failed (Redis unreachable). */
  onLost?: (reason: string) => void;
}

/**
 * A live node's claim on its id: a Redis key with a TTL, renewed while the node runs. A second
 * node started with the same id is refused while the first one's lease lives (two owners under
 * one name would append each other's sessions).
 */
export class NodeLease {
  readonly key: string;
  private readonly holder = randomBytes(16).toString("hex");
  private readonly ttlMs: number;
  private timer: Timer | undefined;
  private closed = false;

  private constructor(private readonly options: NodeLeaseOptions) {
    this.key = `${options.keyPrefix}node:${options.nodeId}`;
    this.ttlMs = options.ttlMs ?? NODE_LEASE_TTL_MS;
  }

  /** Takes the node id's lease, or throws an Error saying another node is live with it. */
  static async claim(options: NodeLeaseOptions): Promise<NodeLease> {
    const lease = new NodeLease(options);
    const taken = await options.redis.set(lease.key, lease.holder, "PX", lease.ttlMs, "NX");
    if (taken !== "OK") {
      const left = await options.redis.pttl(lease.key);
      throw new Error(
        `another node is live with the id ${options.nodeId} (its lease ${lease.key} in Redis expires in ${Math.max(left, 0)} ms unless renewed): stop it, or give this one another --node-id`,
      );
    }
    lease.renewSoon();
    return lease;
  }

  private renewSoon(): void {
    this.timer = this.options.clock.setTimeout(() => void this.renew(), Math.floor(this.ttlMs / 3));
  }

  private async renew(): Promise<void> {
    if (this.closed) return;
    try {
      const renewed = await this.options.redis.eval(RENEW, 1, this.key, this.holder, this.ttlMs);
      if (renewed === 0) this.options.onLost?.(`the lease ${this.key} is no longer this node's`);
    } catch (error) {
      this.options.onLost?.(`renewing the lease ${this.key} failed: ${(error as Error).message}`);
    }
    if (!this.closed) this.renewSoon();
  }

  /** Stops renewing and gives the id back, so that a restart under the same id need not wait for the TTL. */
  async release(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    await this.options.redis.eval(RELEASE, 1, this.key, this.holder);
  }
}
