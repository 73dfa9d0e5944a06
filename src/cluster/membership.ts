import { untilAligned } from "../core/clock.js";
import type { Clock, Timer } from "../core/clock.js";
import type { NodeListing } from "../protocol/index.js";
import { idleLookMs, leaseKey, membersKey } from "./node-lease.js";
import type { MemberRecord } from "./node-lease.js";
import { oneWriteThisTurn } from "./redis-client.js";
import type { RedisClient } from "./redis-client.js";
import { sessionKeys } from "./redis-log.js";
import type { RedisLog } from "./redis-log.js";

/**
 * Longest pause between two looks for dead nodes (shorter with a short TTL: a quarter of it)
 * while this node shows a session. With none it has nothing to adopt (a dead node's sessions are
 * shown here, and wake it, before they can be taken over): it looks every third TTL
 * (idleLookMs), for members that died owning nothing.
 */
export const MEMBERSHIP_CHECK_MS = 1000;
/**
 * How long a node's claim on taking over a dead node lives, in lease TTLs: past it (the taker
 * died during the takeover) another node takes over what is still the dead node's.
 */
export const TAKEOVER_CLAIM_TTLS = 5;

/** A session of a dead node, fenced and now owned by this one under `epoch`. */
export interface TakenSession {
  sessionId: string;
  epoch: number;
  deadNode: string;
}

export interface MembershipOptions {
  redis: RedisClient;
  log: RedisLog;
  keyPrefix: string;
  nodeId: string;
  /** This node's lease TTL: how often to look is derived from it. */
  ttlMs: number;
  /** This node's lease holder, and how to write its members entry again when a look finds it gone. */
  self?: { holder: string; rejoin: () => Promise<void> };
  clock: Clock;
  /** Whether this node shows no session at all (then it looks every third TTL). */
  idle: () => boolean;
  /** Whether this node holds a copy of each session (a session it has not copied yet cannot be taken over here). */
  knows: (sessionIds: readonly string[]) => boolean;
  /** Makes this node the owner of a dead node's session, whose epoch it raised. */
  adopt: (taken: TakenSession) => Promise<void>;
  onError: (error: unknown, what: string) => void;
}

/**
 * The cluster's members: every node writes its entry in `<prefix>nodes` when it claims its lease
 * and when it takes a lapsed one back (NodeLease). A member whose lease expired is dead: one
 * surviving node, the one whose `SET NX` on {@link takeoverKey} succeeds, raises the epoch of each
 * of its sessions (so the dead node's appends are refused from then on) and adopts them.
 */
export class Membership {
  private timer: Timer | undefined;
  /** The other members the last look found. */
  private others: string[] = [];
  /** Whether the armed timer is at the idle pace. */
  private idlePace = false;
  private closed = false;
  private running: Promise<void> | undefined;
  private readonly busyEveryMs: number;

  constructor(private readonly o: MembershipOptions) {
    this.busyEveryMs = Math.min(MEMBERSHIP_CHECK_MS, Math.floor(o.ttlMs / 4));
  }

  start(): void {
    this.schedule();
  }

  /** A session appeared here: the next look comes at the busy pace. */
  wake(): void {
    if (this.timer === undefined || !this.idlePace || this.o.idle()) return;
    this.timer.cancel();
    this.schedule();
  }

  private schedule(): void {
    this.timer = undefined;
    if (this.closed) return;
    this.idlePace = this.o.idle();
    const every = this.idlePace ? untilAligned(this.o.clock, idleLookMs(this.o.ttlMs)) : this.busyEveryMs;
    this.timer = this.o.clock.setTimeout(() => {
      this.timer = undefined;
      oneWriteThisTurn(this.o.redis);
      this.running = this.check()
        .catch((error: unknown) => this.o.onError(error, "looking for dead nodes"))
        .finally(() => this.schedule());
    }, every);
  }

  /** The members, each with its liveness and the sessions it owns. */
  async list(): Promise<NodeListing[]> {
    const members = await this.members();
    const owners = await this.owners();
    const leases = await Promise.all(members.map(([id, m]) => this.lease(id, m)));
    return members.map(([id, m], i) => ({
      id,
      alive: leases[i]!.alive,
      self: id === this.o.nodeId,
      startedAt: m.startedAt,
      heartbeatAt: leases[i]!.renewedAt ?? m.heartbeatAt,
      ttlMs: m.ttlMs,
      sessions: owners.get(id) ?? [],
    }));
  }

  /**
   * Whether `id`'s lease is still `member`'s, and when it was last renewed: a renewal sets its
   * TTL to the member's whole TTL, so what is left of it says how long ago (on Redis's clock, so
   * the nodes' clocks need not agree). A dead member's is its last entry's heartbeat.
   */
  private async lease(id: string, member: MemberRecord): Promise<{ alive: boolean; renewedAt?: number }> {
    const [held, left] = await Promise.all([this.leaseHolder(id), this.o.redis.pttl(leaseKey(this.o.keyPrefix, id))]);
    if (held !== member.holder) return { alive: false };
    return { alive: true, ...(left > 0 ? { renewedAt: this.o.clock.now() - Math.max(0, member.ttlMs - left) } : {}) };
  }

  /** Looks for members whose lease expired and takes over those no other node claimed. */
  async check(): Promise<void> {
    // The leases of the members the last look found are read right behind the members hash (the
    // same connection keeps the order): one round trip in all while the members stay the same.
    const guessed = this.others;
    const [members, guessedHolders] = await Promise.all([
      this.members(),
      Promise.all(guessed.map((id) => this.leaseHolder(id))),
    ]);
    const self = this.o.self;
    if (self !== undefined && !members.some(([id, m]) => id === this.o.nodeId && m.holder === self.holder)) {
      await self.rejoin();
    }
    const others = members.filter(([id]) => id !== this.o.nodeId);
    this.others = others.map(([id]) => id);
    const holders = new Map(guessed.map((id, i) => [id, guessedHolders[i]]));
    const unread = others.filter(([id]) => !holders.has(id));
    const read = await Promise.all(unread.map(([id]) => this.leaseHolder(id)));
    unread.forEach(([id], i) => holders.set(id, read[i]));
    for (const [id, member] of others) {
      if (this.closed) return;
      if (holders.get(id) !== member.holder) await this.takeOver(id, member);
    }
  }

  /** Who holds `id`'s lease now (null once it expired). */
  private leaseHolder(id: string): Promise<string | null> {
    return this.o.redis.get(leaseKey(this.o.keyPrefix, id));
  }

  private async takeOver(deadNode: string, member: MemberRecord & { raw: string }): Promise<void> {
    const sessions = (await this.owners()).get(deadNode) ?? [];
    // Its sessions are adopted through this node's copies: wait for the mirror to have them all.
    if (!this.o.knows(sessions)) return;
    // One claim per life of the member: a node that lapsed, was taken over and took its lease
    // back writes a new heartbeat, so its real death later is not blocked by the old claim.
    const claim = takeoverKey(this.o.keyPrefix, deadNode, member);
    const won = await this.o.redis.set(claim, this.o.nodeId, "PX", this.o.ttlMs * TAKEOVER_CLAIM_TTLS, "NX");
    if (won !== "OK") return;
    for (const sessionId of sessions) {
      const epoch = await this.o.log.bumpEpoch(sessionId, this.o.nodeId, deadNode);
      // Its owner came back for it meanwhile (restarted under its id): it is not dead's to give.
      if (epoch === undefined) continue;
      // The other nodes' copies learn the new owner now, not at their next sweep: what they
      // forward goes here from then on (a stream appends nothing to say so).
      await this.o.redis.publish(this.o.log.sessionsKey, sessionId);
      await this.o.adopt({ sessionId, epoch, deadNode });
    }
    // Taken over: it leaves the members, unless it came back meanwhile (a new heartbeat, still its holder).
    await this.o.redis.eval(FORGET, 1, membersKey(this.o.keyPrefix), deadNode, member.raw);
  }

  /** The members hash's entries, each with the JSON it holds (`raw`). */
  private async members(): Promise<Array<[string, MemberRecord & { raw: string }]>> {
    const hash = await this.o.redis.hgetall(membersKey(this.o.keyPrefix));
    return Object.entries(hash).map(([id, raw]) => [id, { ...(JSON.parse(raw) as MemberRecord), raw }]);
  }

  /** Session ids by owning node, oldest first. */
  private async owners(): Promise<Map<string, string[]>> {
    const ids = await this.o.log.sessionIds();
    const owners = await Promise.all(
      ids.map((id) => this.o.redis.hget(sessionKeys(this.o.keyPrefix, id).meta, "owner")),
    );
    const byNode = new Map<string, string[]>();
    ids.forEach((id, i) => {
      const owner = owners[i];
      if (owner === null || owner === undefined) return;
      const list = byNode.get(owner) ?? [];
      list.push(id);
      byNode.set(owner, list);
    });
    return byNode;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    await this.running;
  }
}

/** The claim of the node taking `deadNode` over, for the life its members entry records. */
export function takeoverKey(keyPrefix: string, deadNode: string, member: MemberRecord): string {
  return `${keyPrefix}takeover:${deadNode}:${member.holder}:${member.heartbeatAt}`;
}

/** Removes a member's entry if it is still the one the takeover saw (same holder, no later heartbeat). */
const FORGET = `if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0`;
