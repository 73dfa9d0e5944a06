import { describe, it } from "vitest";
import { startRedis } from "../helpers/redis.js";
import { resumeAnywhereProperty, threeGateways } from "./resume-any-node.js";

/** The whole test, gateways' start included: self-stopping well before vitest would. */
const TEST_MS = 90_000;

describe("three gateway processes on one Redis, viewed over every protocol", () => {
  it(
    "50 clients that drop and resume with since on a random node over /v1/ws, SSE and /ws/session rebuild every session exactly",
    async () => {
      const redis = await startRedis({ appendfsync: "always" });
      await resumeAnywhereProperty(await threeGateways(redis.url), 2);
    },
    TEST_MS,
  );
});
