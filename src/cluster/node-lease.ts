import { randomBytes } from "node:crypto";
import { untilAligned } from "../core/clock.js";
import type { Clock, Timer } from "../core/clock.js";
import { oneWriteThisTurn } from "./redis-client.js";
import type { RedisClient } from "./redis-client.js";
import { InternalError } from "../protocol/errors.js";

/**
 * How long a node's lease (its heartbeat) lives without renewal; it is renewed every third of
 * that, every half while the node shows no session. Once it expires the node counts as dead and
 * another takes its sessions over (Membership).
 */
export const NODE_LEASE_TTL_MS = 10_000;
/** Shortest and longest TTL `cluster.nodeTtlMs` may set (tests shorten it to fail over fast). */
export const NODE_LEASE_MIN_TTL_MS = 500;
export const NODE_LEASE_MAX_TTL_MS = 600_000;

/**
 * How often a lease of `ttlMs` is renewed. `idle`: the node shows no session, so a lapse costs
 * nothing (it is taken over with nothing and takes its lease back); one late renewal is tolerated
 * instead of two, as socket.io's adapter does with its heartbeat. The idle pace is that of the
 * node's other periodic cluster work too, so that an idle node wakes once for all of it.
 */
export function leaseRenewalMs(ttlMs: number, idle = false): number {
  return Math.floor(ttlMs / (idle ? 2 : 3));
}

/**
 * How often an idle node looks for dead members and sweeps the shared sessions: every third TTL,
 * on every sixth renewal (their timers are aligned, so they share a wake-up). Idle, a look only
 * forgets members that died owning nothing, and a sweep only finds a notice lost without a
 * reconnection: each command is a tenth of an idle node's CPU (docs/benchmarks.md, "Idle
 * cluster node").
 */
export function idleLookMs(ttlMs: number): number {
  return 6 * leaseRenewalMs(ttlMs, true);
}

/** A node as the members hash (`<prefix>nodes`) records it at each heartbeat. */
export interface MemberRecord {
  /** The lease's holder: one per start of the node, so a restart under the same id is another member. */
  holder: string;
  startedAt: number;
  heartbeatAt: number;
  ttlMs: number;
}

/** A node's lease: its holder while it lives. */
export function leaseKey(keyPrefix: string, nodeId: string): string {
  return `${keyPrefix}node:${nodeId}`;
}

/** The hash naming every node that joined and was not taken over yet, by node id. */
export function membersKey(keyPrefix: string): string {
  return `${keyPrefix}nodes`;
}

/**
 * Extends the lease while it is still this holder's, takes it again when it expired meanwhile
 * (Redis was unreachable for longer than the TTL) and nobody took it; 0 when another holds it.
 */
const RENEW = `local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if held == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0`;
/** Extends the lease only while it is still `ARGV[1]`'s: a start taking back what its data directory's last start held. */
const RECLAIM = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
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
  /**
   * The holder the node's last start on this data directory claimed with. The data directory's
   * lock says that start is gone (a crash, or a stop that kept held sessions running), so a lease
   * it still holds is taken back, with that holder: a restart within the TTL keeps the node's
   * sessions, and no other node sees it die.
   */
  previousHolder?: string | undefined;
  /**
   * Told after each renewal; `lapsed`: the lease had expired and was taken again (the node was
   * paused or cut off past its TTL, so others may have taken its sessions over meanwhile).
   */
  onRenewed?: (lapsed: boolean) => void;
}

/**
 * A live node's claim on its id: a Redis key with a TTL, renewed while the node runs. A second
 * node started with the same id is refused while the first one's lease lives (two owners under
 * one name would append each other's sessions).
 */
export class NodeLease {
  readonly key: string;
  private holderValue = randomBytes(16).toString("hex");
  readonly ttlMs: number;
  private readonly startedAt: number;
  private timer: Timer | undefined;
  private closed = false;
  /** Whether the node shows no session now (see {@link leaseRenewalMs}); set by {@link paceBy}. */
  private idle: () => boolean = () => false;
  /** Whether the armed renewal is at the idle pace. */
  private idlePace = false;
  /** Whether the last renewal found the lease this holder's (renewed it, or took it again). */
  private held = true;

  /** Names this start of the node (or, taken back, the one before it): see {@link NodeLeaseOptions.previousHolder}. */
  get holder(): string {
    return this.holderValue;
  }

  private constructor(private readonly options: NodeLeaseOptions) {
    this.key = leaseKey(options.keyPrefix, options.nodeId);
    this.ttlMs = options.ttlMs ?? NODE_LEASE_TTL_MS;
    this.startedAt = options.clock.now();
  }

  /** Takes the node id's lease, or throws an Error saying another node is live with it. */
  static async claim(options: NodeLeaseOptions): Promise<NodeLease> {
    const lease = new NodeLease(options);
    const taken = await options.redis.set(lease.key, lease.holder, "PX", lease.ttlMs, "NX");
    const previous = options.previousHolder;
    if (
      taken !== "OK" &&
      previous !== undefined &&
      (await options.redis.eval(RECLAIM, 1, lease.key, previous, lease.ttlMs)) === 1
    )
      lease.holderValue = previous;
    else if (taken !== "OK") {
      const left = await options.redis.pttl(lease.key);
      throw new InternalError(
        `another node is live with the id ${options.nodeId} (its lease ${lease.key} in Redis expires in ${Math.max(left, 0)} ms unless renewed): stop it, or give this one another --node-id`,
      );
    }
    await lease.recordHeartbeat();
    lease.renewSoon();
    return lease;
  }

  /**
   * Renews every half TTL while `idle()` says the node shows no session; {@link wake} once it
   * shows one. Called once the node's sessions are known, soon after the claim: the renewal is
   * armed again at the pace that holds now.
   */
  paceBy(idle: () => boolean): void {
    this.idle = idle;
    if (!this.closed && this.timer !== undefined) this.renewSoon();
  }

  /** The node's sessions changed: a renewal armed at the idle pace comes at the busy pace now. */
  wake(): void {
    if (this.closed || this.timer === undefined || !this.idlePace || this.idle()) return;
    this.renewSoon();
  }

  private renewSoon(): void {
    this.timer?.cancel();
    this.idlePace = this.idle();
    const every = leaseRenewalMs(this.ttlMs, this.idlePace);
    this.timer = this.options.clock.setTimeout(() => void this.renew(), untilAligned(this.options.clock, every));
  }

  private async renew(): Promise<void> {
    if (this.closed) return;
    let renewed: unknown;
    try {
      oneWriteThisTurn(this.options.redis);
      renewed = await this.options.redis.eval(RENEW, 1, this.key, this.holder, this.ttlMs);
    } catch (error) {
      this.options.onLost?.(`renewing the lease ${this.key} failed: ${(error as Error).message}`);
    }
    if (!this.closed) this.renewSoon();
    this.held = renewed === 1 || renewed === 2;
    if (renewed === 0) this.options.onLost?.(`the lease ${this.key} is no longer this node's`);
    if (renewed !== 1 && renewed !== 2) return;
    // Taken again after it lapsed: the members entry says so with a new heartbeat, so that a node
    // taking this one over meanwhile leaves the entry in place (Membership's FORGET). A renewal in
    // time changes nothing there: the listing reads the last renewal from the lease's TTL.
    if (renewed === 2) {
      try {
        await this.recordHeartbeat();
      } catch (error) {
        this.options.onLost?.(`recording the heartbeat of ${this.key} failed: ${(error as Error).message}`);
      }
    }
    this.options.onRenewed?.(renewed === 2);
  }

  /**
   * Writes this node's entry again, when a look at the members found it gone or another's (a
   * Redis that lost the write, after a failover): it is written only at the claim and when the
   * lease is taken again, and a node missing there is never taken over.
   */
  async rejoin(): Promise<void> {
    if (!this.closed && this.held) await this.recordHeartbeat();
  }

  /** Writes this node's entry in the members hash: what `GET /v1/nodes` lists. */
  private async recordHeartbeat(): Promise<void> {
    const record: MemberRecord = {
      holder: this.holder,
      startedAt: this.startedAt,
      heartbeatAt: this.options.clock.now(),
      ttlMs: this.ttlMs,
    };
    await this.options.redis.hset(membersKey(this.options.keyPrefix), this.options.nodeId, JSON.stringify(record));
  }

  /**
   * Stops renewing and keeps the lease and the members entry: held sessions run on, and a restart
   * within the TTL takes them back ({@link NodeLeaseOptions.previousHolder}); past it, another
   * node takes them over.
   */
  stop(): void {
    this.closed = true;
    this.timer?.cancel();
  }

  /** Stops renewing and gives the id back, so that a restart under the same id need not wait for the TTL. */
  async release(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    // A node that stops cleanly leaves the members (its sessions are not taken over: they ended with it).
    if ((await this.options.redis.eval(RELEASE, 1, this.key, this.holder)) === 1)
      await this.options.redis.hdel(membersKey(this.options.keyPrefix), this.options.nodeId);
  }
}
