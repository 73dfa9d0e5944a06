import { describe, it } from "vitest";
import { startRedisCluster } from "../helpers/redis.js";
import { resumeAnywhereProperty, threeGateways } from "./resume-any-node.js";

const TEST_MS = 90_000;

describe("three gateway processes on a 3-master Redis Cluster", () => {
  it(
    "50 clients that drop and resume with since on a random node over /v1/ws, SSE and /ws/session rebuild every session exactly",
    async () => {
      const cluster = await startRedisCluster(3);
      await resumeAnywhereProperty(await threeGateways(cluster.url), 2);
    },
    TEST_MS,
  );
});
