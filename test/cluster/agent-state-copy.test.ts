// An agent session's `agentState` travels with its record through Redis: another node's copy
// shows what the owner shows, and follows the agent's later updates (docs/agents.md, "What the
// agent says of itself").
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { api } from "../helpers/gateway.js";
import { startRedis } from "../helpers/redis.js";
import { serveInChild } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

const SCRIPTED_AGENT = fileURLToPath(new URL("../agents/fixtures/scripted-agent.mjs", import.meta.url));

describe("an agent's state on a cluster copy", () => {
  it("is the owner's, updates included, read from the record another node keeps", async () => {
    const redis = await startRedis();
    const [owner, copy] = await Promise.all(
      ["gw-a", "gw-b"].map((name) =>
        serveInChild({ dataDir: tempDir(), args: ["--redis", redis.url, "--node-id", name] }),
      ),
    );
    const created = await api(owner!.url).post("/v1/sessions", {
      kind: "agent",
      agent: { adapter: "acp", command: [process.execPath, SCRIPTED_AGENT, "--state"] },
    });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    const state = async (url: string): Promise<Record<string, unknown> | undefined> =>
      (await api(url).get(`/v1/sessions/${id}`)).json?.agentState as Record<string, unknown> | undefined;

    const turn = async (n: number): Promise<void> => {
      await api(owner!.url).post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify({ op: "turn", n }) });
      await waitFor(
        async () =>
          (await state(owner!.url))?.usage !== undefined &&
          ((await state(owner!.url))!.usage as { used: number }).used === 1000 + n,
        15_000,
        `turn ${n} on the owner`,
      );
    };
    await turn(0);
    const owned = await state(owner!.url);
    expect(owned).toMatchObject({ model: "slow-1", title: "after turn 0", modes: { currentModeId: "ask" } });
    await waitFor(
      async () => JSON.stringify(await state(copy!.url)) === JSON.stringify(owned),
      15_000,
      "the copy's state",
    );

    // A later update reaches the copy too.
    await turn(1);
    const later = await state(owner!.url);
    expect(later).toMatchObject({ usage: { used: 1001 } });
    await waitFor(
      async () => JSON.stringify(await state(copy!.url)) === JSON.stringify(later),
      15_000,
      "the copy's later state",
    );
  }, 60_000);
});
