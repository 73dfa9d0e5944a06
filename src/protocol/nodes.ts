import { z } from "zod";

/** A gateway node of a cluster as `GET /v1/nodes` lists it (admins only; docs/cluster.md, "Membership and failover"). */
export const NodeListing = z.strictObject({
  id: z.string(),
  /** Its lease (heartbeat) lives; a dead node is listed until another has taken its sessions over. */
  alive: z.boolean(),
  /** The node that answered. */
  self: z.boolean(),
  startedAt: z.number(),
  /** When it last renewed its lease, by its own clock (ms since 1970). */
  heartbeatAt: z.number(),
  /** Its lease's TTL: it counts as dead this long after its last heartbeat. */
  ttlMs: z.number(),
  /** The sessions it owns (runs and appends to), oldest first. */
  sessions: z.array(z.string()),
});
export type NodeListing = z.infer<typeof NodeListing>;
