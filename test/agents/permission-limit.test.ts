import { describe, expect, it } from "vitest";
import { MAX_PENDING_PERMISSIONS, MemoryLog } from "../../src/agents/index.js";
import { PermissionBroker } from "../../src/agents/permissions.js";
import { ManualClock } from "../../src/core/clock.js";

describe("permission requests past the limit", () => {
  it("are cancelled at once, without a permission.request, and said to the operator (they were silent)", async () => {
    const clock = new ManualClock(0);
    const log = new MemoryLog("s1", { clock });
    const overLimit: Array<[string, string]> = [];
    let n = 0;
    const broker = new PermissionBroker({
      log,
      clock,
      timeoutMs: 60_000,
      newId: () => `req-${++n}`,
      onChange: () => {},
      onOverLimit: (runId, title) => overLimit.push([runId, title]),
    });
    const ask = (title: string) => ({
      title,
      options: [{ optionId: "allow", name: "Allow", kind: "allow_once" as const }],
    });
    for (let i = 0; i < MAX_PENDING_PERMISSIONS; i++) void broker.request("r1", ask(`tool ${i}`));
    expect(broker.open).toBe(MAX_PENDING_PERMISSIONS);
    await expect(broker.request("r1", ask("one too many"))).resolves.toEqual({ outcome: "cancelled" });
    expect(overLimit).toEqual([["r1", "one too many"]]);
    const requests = log.events.filter((e) => e.type === "permission.request");
    expect(requests).toHaveLength(MAX_PENDING_PERMISSIONS);
  });
});
