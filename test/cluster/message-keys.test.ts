import { describe, expect, it } from "vitest";
import { connectRedis } from "../../src/cluster/redis-client.js";
import { afterTest } from "../helpers/cleanup.js";
import { api, testGateway } from "../helpers/gateway.js";
import { startRedis } from "../helpers/redis.js";
import { waitFor } from "../helpers/wait-for.js";

describe("the message index in Redis", () => {
  // Regression: an entry stayed in Redis after its session ended, so every conversation a
  // chat bridge ever had (one per peer) kept a key there for good.
  it("removes a key's entry once its session ends, and the next message makes a new session", async () => {
    const server = await startRedis();
    const gateway = await testGateway({
      cluster: { redis: [server.url], nodeId: "gw-a" },
      config: {
        agents: { helper: { adapter: "echo" } },
        bindings: [{ agentId: "helper", match: { channel: "slack" } }],
      },
    });
    const redis = await connectRedis([server.url]);
    afterTest(() => redis.disconnect());
    const http = api(gateway.url);
    const message = (peer: string) => ({ channel: "slack", peer: { kind: "direct", id: peer }, text: "hi" });
    const entries = async () => {
      const keys = (await redis.keys("sb:msg:*")).sort();
      return Promise.all(keys.map(async (k) => [k, await redis.get(k)]));
    };

    const first = (await http.post("/v1/messages", message("ana"))).json as { sessionId: string };
    const other = (await http.post("/v1/messages", message("bo"))).json as { sessionId: string };
    expect((await entries()).map(([, v]) => v).sort()).toEqual([first.sessionId, other.sessionId].sort());

    expect((await http.del(`/v1/sessions/${first.sessionId}`)).status).toBe(200);
    await waitFor(async () => {
      expect((await entries()).map(([, v]) => v)).toEqual([other.sessionId]);
      return true;
    }, 10_000);

    const next = (await http.post("/v1/messages", message("ana"))).json as { sessionId: string };
    expect(next.sessionId).not.toBe(first.sessionId);
    expect((await entries()).map(([, v]) => v).sort()).toEqual([next.sessionId, other.sessionId].sort());
  }, 60_000);
});
