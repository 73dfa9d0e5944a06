import { Membership } from "../../cluster/membership.js";
import type { TakenSession } from "../../cluster/membership.js";
import { REDIS_RETRY_MS } from "../../cluster/redis-store.js";
import type { RedisEventStore } from "../../cluster/redis-store.js";
import type { SessionLog } from "../../log/session-log.js";
import type { Session, SessionContext, SessionRecord } from "../../sessions/session.js";
import type { SessionManager } from "../../sessions/session-manager.js";
import { copyShared } from "./cluster-mirror.js";
import type { ClusterLink } from "./cluster-mode.js";
import type { Logger } from "../ops/logger.js";
import type { Clock } from "../../core/clock.js";
import { InternalError } from "../../protocol/errors.js";

export interface TakeoverOptions {
  cluster: ClusterLink;
  store: RedisEventStore;
  sessions: SessionManager;
  clock: Clock;
  logger: Logger;
  /** Makes an owned session from a record and its log, as a restore does. */
  build: (record: SessionRecord, log: SessionLog, ctx: SessionContext) => Session;
}

/**
 * Watches the cluster's members and, when this node wins the takeover of a dead one, adopts its
 * sessions: terminals and agents end `lost` (their processes died with it), streams run on here.
 */
export function watchMembers(o: TakeoverOptions): Membership {
  const { settings } = o.cluster;
  // With no session here, a lapse of this node's lease costs nothing: it is renewed less often.
  const idle = (): boolean => o.sessions.list().length === 0;
  o.cluster.lease.paceBy(idle);
  const membership = new Membership({
    redis: o.cluster.redis,
    log: o.cluster.log,
    keyPrefix: settings.keyPrefix,
    nodeId: settings.nodeId,
    ttlMs: o.cluster.ttlMs,
    self: o.cluster.lease,
    clock: o.clock,
    idle,
    knows: (ids) => ids.every((id) => o.sessions.copyOf(id) !== undefined),
    adopt: (taken) => adoptSession(o, taken),
    onError: (error, what) => o.logger.warn({ err: error }, `cluster: ${what} failed; trying again`),
  });
  membership.start();
  return membership;
}

/**
 * Makes this node the owner of a session a dead node owned, whose epoch it raised (so nothing
 * more of the dead node's reaches Redis): its copy is brought up to Redis's head, which no one
 * moves any more, and its next entries are this node's.
 */
async function adoptSession(o: TakeoverOptions, taken: TakenSession): Promise<void> {
  const { sessionId, deadNode } = taken;
  // This node holds the epoch now: nobody else can finish the adoption, so it is tried until it
  // is done (Redis may be unreachable for a while) or the session or the node goes away. A
  // session this node was fenced on a moment ago is adopted once it follows as a copy.
  for (let attempt = 1; ; attempt++) {
    const state = o.sessions.ownership(sessionId).at;
    if (o.store.closed || o.sessions.get(sessionId) === undefined) return;
    const copy = o.sessions.copyOf(sessionId);
    // Still run here (fenced a moment ago, its process stopping): adopted once it follows as a copy.
    if (copy === undefined) {
      await new Promise<void>((resolve) => o.clock.setTimeout(resolve, REDIS_RETRY_MS));
      continue;
    }
    try {
      if (state !== "adopting") o.store.ownerships.adopting(sessionId, taken.epoch, deadNode);
      const shared = await o.cluster.log.session(sessionId);
      if (shared === undefined) return;
      // Its copy may not have been kept up (nobody here watched it): brought up from where it is.
      await copyShared(o.cluster.log, sessionId, copy.log, shared.position);
      if (copy.log.appendedHead !== shared.position.head)
        throw new InternalError(
          `session ${sessionId}: its copy stopped at ${copy.log.appendedHead}, Redis holds ${shared.position.head}`,
        );
      o.store.adopt(sessionId, shared.position);
      break;
    } catch (error) {
      o.logger.warn({ err: error, sessionId, attempt }, "cluster: adopting a dead node's session failed; trying again");
      await new Promise<void>((resolve) => o.clock.setTimeout(resolve, REDIS_RETRY_MS));
    }
  }
  const session = o.sessions.adopt(sessionId, (record, sessionLog, ctx) => {
    // Its pid is one on the dead node's host: this node terminates nothing by it (see TerminalSession.markLost).
    record.pidStart = null;
    record.holder = null;
    (record as { agentPidStart?: number | undefined }).agentPidStart = undefined;
    return o.build(record, sessionLog, ctx);
  });
  if (session === undefined) return;
  const reason = `node ${deadNode} stopped renewing its lease (dead, or cut off from Redis for over ${o.cluster.ttlMs} ms); node ${o.cluster.settings.nodeId} took its sessions over`;
  if (session.running && session.record.kind !== "stream") session.markLost(reason);
  session.endEarlierGatewayLease();
  o.logger.warn(
    { sessionId, deadNode, epoch: taken.epoch, kind: session.record.kind, state: session.record.state },
    "cluster: took over a dead node's session",
  );
}
