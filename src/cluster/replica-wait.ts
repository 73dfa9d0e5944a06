import type { RedisClient } from "./redis-client.js";

/** Why an append is not acknowledged although Redis ran it: too few replicas confirmed it in time. */
export class ReplicasNotConfirmedError extends Error {
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
 * The step between an append script's acknowledgement and delivery when `cluster.waitReplicas`
 * is set: one `WAIT replicas timeoutMs` on the connection that ran the script (WAIT counts the
 * replicas holding that connection's writes so far, so it covers every call before it).
 * Resolves once enough replicas hold the append; rejects with {@link ReplicasNotConfirmedError}
 * otherwise, and the store treats the append as one Redis did not answer (docs/cluster.md,
 * "Replicas and failover").
 */
export function replicaConfirmation(
  redis: RedisClient,
  o: { replicas: number; timeoutMs: number },
): () => Promise<void> {
  return async () => {
    const confirmed = Number(await redis.wait(o.replicas, o.timeoutMs));
    if (confirmed < o.replicas) throw new ReplicasNotConfirmedError(o.replicas, confirmed, o.timeoutMs);
  };
}
