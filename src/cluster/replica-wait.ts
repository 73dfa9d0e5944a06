import { InternalError } from "../protocol/errors.js";
import type { RedisClient } from "./redis-client.js";
import { sessionKeys } from "./redis-log.js";

/**
 * Raises a session's `confirmed` seq (never lowers it) and notifies the other nodes, whose copies
 * follow it rather than `head` when it is there: KEYS meta, live channel; ARGV the seq.
 */
const CONFIRM = `
local confirmed = tonumber(redis.call('HGET', KEYS[1], 'confirmed') or '0')
if tonumber(ARGV[1]) > confirmed then redis.call('HSET', KEYS[1], 'confirmed', ARGV[1]) end
redis.call('SPUBLISH', KEYS[2], ARGV[1])
return 0
`;

/**
 * Why an append is not acknowledged although Redis ran it: too few replicas confirmed it in time.
 * Internal: the store counts it as a failed call and sends the append again; no client gets it.
 */
export class ReplicasNotConfirmedError extends InternalError {
  override readonly name: string = "ReplicasNotConfirmedError";
  constructor(
    readonly wanted: number,
    readonly confirmed: number,
    readonly timeoutMs: number,
  ) {
    super(
      `WAIT ${wanted} ${timeoutMs}: ${confirmed} of ${wanted} replicas confirmed the append in time; it is sent again until enough replicas are up (cluster.waitReplicas)`,
    );
  }
}

/**
 * The step between an append's acknowledgement and delivery with `cluster.waitReplicas`: one
 * `WAIT replicas timeoutMs` on the script's connection (it covers every write before it), then
 * the session's `confirmed` seq is raised to the batch's `head`, so other nodes copy only what
 * enough replicas hold. Rejects with {@link ReplicasNotConfirmedError} when too few answered in
 * time; the store then treats the append as unanswered (docs/cluster.md, "Replicas and failover").
 */
export function replicaConfirmation(
  redis: RedisClient,
  o: { replicas: number; timeoutMs: number; keyPrefix: string },
): (sessionId: string, head: number) => Promise<void> {
  return async (sessionId, head) => {
    const confirmed = Number(await redis.wait(o.replicas, o.timeoutMs));
    if (confirmed < o.replicas) throw new ReplicasNotConfirmedError(o.replicas, confirmed, o.timeoutMs);
    const keys = sessionKeys(o.keyPrefix, sessionId);
    await redis.eval(CONFIRM, 2, keys.meta, keys.live, String(head));
  };
}
