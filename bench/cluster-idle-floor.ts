/**
 * The floor for bench/cluster-idle.ts: the least an idle cluster node must do, in a bare Node
 * process. `node bench/cluster-idle-floor.ts REDIS_URL NODE_ID RENEW_MS TTL_MS` takes a lease key
 * and renews it (a GET-and-PEXPIRE script, as a node's renewal checks its holder) every RENEW_MS,
 * on timers aligned to multiples of it, with ioredis; it prints `renewing` once it holds the key.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";

const [redisUrl, nodeId, renewArg, ttlArg] = process.argv.slice(2);
if (!redisUrl || !nodeId || !renewArg || !ttlArg) {
  throw new Error("usage: cluster-idle-floor.ts REDIS_URL NODE_ID RENEW_MS TTL_MS");
}
const renewMs = Number(renewArg);
const ttlMs = Number(ttlArg);

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

const redis = new Redis(redisUrl, { commandTimeout: 5_000 });
const key = `floor:node:${nodeId}`;
const holder = randomBytes(16).toString("hex");
await redis.set(key, holder, "PX", ttlMs);

const renew = async () => {
  setTimeout(() => void renew(), renewMs - (performance.now() % renewMs));
  await redis.eval(RENEW, 1, key, holder, ttlMs).catch(() => undefined);
};
setTimeout(() => void renew(), renewMs - (performance.now() % renewMs));
console.log("renewing");
