import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { FIXTURES, entry, hookCall, setup } from "./helpers.js";

const http = hookCall;
const DROPPED = "plugin log lines dropped (rate limit)";

describe("what the gateway log and GET /v1/plugins say about a misbehaving plugin", () => {
  it("reports log lines dropped by the rate limit when the window ends, though the plugin stays quiet (exploratory test: only its next line reported them)", async () => {
    const clock = new ManualClock();
    // The heartbeat far off: the time this test moves on must not make the plugin look hung.
    const t = setup({
      clock,
      limits: { logLinesPerSecond: 20, heartbeatIntervalMs: 60_000, heartbeatTimeoutMs: 120_000 },
    });
    await t.host.load({ entries: { noisy: entry(join(FIXTURES, "noisy")) } });
    // Its answer follows its log lines on the pipe: they have all been taken when it arrives.
    await t.host.handleHttp("noisy", http({ op: "burst", args: { count: 25 } }));
    expect(t.logs.filter((l) => /^line \d+$/.test(l.msg ?? ""))).toHaveLength(20);
    expect(t.logs.find((l) => l.msg === DROPPED)).toBeUndefined();

    clock.advance(1_000);
    expect(t.logs.filter((l) => l.msg === DROPPED).map((l) => l.fields)).toEqual([{ plugin: "noisy", dropped: 5 }]);
    expect(await t.registry.metrics()).toContain('switchboard_plugin_log_lines_dropped_total{plugin="noisy"} 5');
    // Reported once: the next window starts clean.
    await t.host.handleHttp("noisy", http({ op: "burst", args: { count: 1 } }));
    clock.advance(5_000);
    expect(t.logs.filter((l) => l.msg === DROPPED)).toHaveLength(1);
  });

  // A debug line the gateway's level filters out took from the budget first: 200 of them a
  // second hid every info line after them (exploratory test).
  it("does not count log lines below the gateway's level against the rate limit", async () => {
    const clock = new ManualClock();
    const t = setup({
      clock,
      limits: { logLinesPerSecond: 20, heartbeatIntervalMs: 60_000, heartbeatTimeoutMs: 120_000 },
    });
    // The gateway's logger at "info", as pino says it.
    t.deps.logger.isLevelEnabled = (level) => level !== "debug";
    await t.host.load({ entries: { noisy: entry(join(FIXTURES, "noisy")) } });
    await t.host.handleHttp("noisy", http({ op: "burst", args: { count: 50, level: "debug" } }));
    await t.host.handleHttp("noisy", http({ op: "burst", args: { count: 5 } }));
    const lines = t.logs.filter((l) => /^line \d+$/.test(l.msg ?? ""));
    expect(lines.map((l) => `${l.level} ${l.msg}`)).toEqual([0, 1, 2, 3, 4].map((i) => `info line ${i}`));
    clock.advance(1_000);
    expect(t.logs.find((l) => l.msg === DROPPED)).toBeUndefined();
  });

  it("reports log lines dropped by the rate limit when the plugin exits before the window ends", async () => {
    // The window's timer never fires on this clock: only the exit can report them.
    const clock = new ManualClock();
    const t = setup({ clock, limits: { logLinesPerSecond: 20 } });
    await t.host.load({ entries: { noisy: entry(join(FIXTURES, "noisy")) } });
    await t.host.handleHttp("noisy", http({ op: "burst", args: { count: 30, crash: true } }));
    await t.waitForState("noisy", "restarting");
    expect(t.host.get("noisy").lastError).toContain("noisy crashed after its burst");
    expect(t.logs.filter((l) => l.msg === DROPPED).map((l) => l.fields)).toEqual([{ plugin: "noisy", dropped: 10 }]);
    expect(await t.registry.metrics()).toContain('switchboard_plugin_log_lines_dropped_total{plugin="noisy"} 10');
  });

  it("says why a plugin that ran out of memory died in its lastError, not only the signal (exploratory test: 'exited with signal SIGABRT')", async () => {
    const t = setup({ limits: { heapMb: 16, maxRestarts: 0 } });
    await t.host.load({ entries: { noisy: entry(join(FIXTURES, "noisy")) } });
    await t.host.handleHttp("noisy", http({ op: "oom" }));
    const failed = await t.waitForState("noisy", "failed", 20_000);
    expect(failed.lastError).toMatch(/^exited with signal SIGABRT: FATAL ERROR: .*JavaScript heap out of memory$/);
  });

  it("does not log the channel closing under a plugin the gateway killed, least of all as the plugin's stderr (exploratory test: 'plugin channel error: read ECONNRESET')", async () => {
    // Killed as hung while the gateway's pings sit unread in its pipe: its end resets.
    const t = setup({ limits: { callTimeoutMs: 5_000, maxRestarts: 0 } });
    await t.host.load({ entries: { busy: entry(join(FIXTURES, "hang"), { config: { mode: "busy" } }) } });
    await expect(t.host.handleHttp("busy", http(null))).rejects.toThrow(/hung: no heartbeat answer/);
    await t.waitForState("busy", "failed");
    // The exit's stdio has closed by now; a late channel error would have come with it.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(t.logs.filter((l) => /channel error|ECONNRESET|EPIPE/.test(l.msg ?? ""))).toEqual([]);
  });
});
