import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { PluginProcess } from "../../src/plugins/plugin-process.js";
import type { HostFrame } from "../../src/plugins/ipc.js";
import { restartDelay } from "../../src/plugins/slot.js";
import { FAST_LIMITS, FIXTURES, entry, hookCall, setup } from "./helpers.js";
import { waitFor } from "../helpers/wait-for.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}

const http = hookCall(null);

/** Blocks this process's event loop (the plugin host's) for 1.6 s. */
function stall(): void {
  const until = Date.now() + 1_600;
  while (Date.now() < until);
}

/**
 * Stalls the host's loop right after each of the next frames of type `t` it sends, `left()` of
 * them (set with `arm`): after this turn's reads, before its timers, so the plugin's answer
 * arrives meanwhile and is read only once the loop runs again.
 */
function stallAfterSending(t: HostFrame["t"]): { arm(count: number): void; left(): number } {
  let left = 0;
  const send = PluginProcess.prototype.send;
  PluginProcess.prototype.send = function (this: PluginProcess, frame: HostFrame) {
    send.call(this, frame);
    if (frame.t === t && left > 0) {
      left--;
      setImmediate(stall);
    }
  };
  onTestFinished(() => {
    PluginProcess.prototype.send = send;
  });
  return { arm: (count) => (left = count), left: () => left };
}

describe("plugin lifecycle", () => {
  it("backs off exponentially between restarts, up to a cap", () => {
    const limits = { restartBackoffBaseMs: 500, restartBackoffMaxMs: 30_000 };
    expect([1, 2, 3, 4, 7, 20].map((n) => restartDelay(n, limits))).toEqual([500, 1000, 2000, 4000, 30_000, 30_000]);
  });

  it("says a refusal from the gateway that failed the activation as such, not with the runner's stack", async () => {
    const t = setup();
    await t.host.load({ entries: { refused: entry(join(FIXTURES, "refused")) } });
    const failed = await t.waitForState("refused", "failed");
    expect(failed.lastError).toMatch(/^PLUGIN_PERMISSION_DENIED: .*writeConfigFile/);
    expect(failed.lastError).not.toContain("plugins/runner/");
  });

  it("restarts a crashing plugin up to the limit, then marks it failed while the others go on", async () => {
    const t = setup();
    await t.host.load({
      entries: {
        crasher: entry(join(FIXTURES, "crasher"), { config: { crashAfterMs: 20 } }),
        basic: entry(join(FIXTURES, "basic")),
      },
    });
    const basicPid = t.host.get("basic").pid;
    const failed = await t.waitForState("crasher", "failed");
    expect(failed).toMatchObject({ restarts: FAST_LIMITS.maxRestarts, pid: null });
    expect(failed.lastError).toContain("boom from crasher");
    expect(t.host.get("basic")).toMatchObject({ state: "running", restarts: 0, pid: basicPid });
    expect(await t.host.handleHttp("basic", hookCall({ op: "config" }))).toEqual({ status: 200, body: {} });

    const metrics = await t.registry.metrics();
    expect(metrics).toContain(`switchboard_plugin_restarts_total{plugin="crasher"} ${FAST_LIMITS.maxRestarts}`);
    expect(metrics).toContain('switchboard_plugin_state{plugin="crasher",state="failed"} 1');
    expect(metrics).toContain('switchboard_plugin_state{plugin="basic",state="running"} 1');

    // A manual restart gives it a fresh start.
    await t.host.restart("crasher");
    expect(t.host.get("crasher")).toMatchObject({ state: "running", restarts: 0 });
  });

  // Each write restarted it as a new configuration, counts reset: 228 restarts in 10 s with
  // `restarts: 0` and `lastError: null`, for ever (exploratory test).
  it("fails a plugin that restarts itself in a loop by writing its own config in activate, counting its restarts", async () => {
    const t = setup();
    // As the gateway does: the patch is written, then the config reloaded (not awaited).
    let config: { entries: Record<string, { path: string; permissions: object; config: object }> } = {
      entries: {
        looper: { path: join(FIXTURES, "self-looper"), permissions: { writeConfigFile: true }, config: {} },
      },
    };
    t.deps.config.writePatch = async (patch) => {
      t.patches.push(patch);
      const own = (patch as { plugins: { entries: { looper: { config: object } } } }).plugins.entries.looper;
      config = { entries: { looper: { ...config.entries["looper"]!, config: own.config } } };
      void t.host.load(config).catch(() => undefined);
    };
    await t.host.load(config);
    const failed = await t.waitForState("looper", "failed");
    expect(failed).toMatchObject({ restarts: FAST_LIMITS.maxRestarts, pid: null });
    expect(failed.lastError).toMatch(/restarted itself 3 times in a row by writing its own config/);
    expect(t.logs.filter((l) => l.msg === "self-looper started")).toHaveLength(FAST_LIMITS.maxRestarts! + 1);
    expect(await t.registry.metrics()).toContain(
      `switchboard_plugin_restarts_total{plugin="looper"} ${FAST_LIMITS.maxRestarts}`,
    );
    // And it stays failed: no more starts.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(t.host.get("looper").state).toBe("failed");
    expect(t.logs.filter((l) => l.msg === "self-looper started")).toHaveLength(FAST_LIMITS.maxRestarts! + 1);
    // Its HTTP route says it is configured but down (503), not that it does not exist (404).
    await expect(t.host.handleHttp("looper", hookCall({}))).rejects.toMatchObject({
      code: "PLUGIN_UNAVAILABLE",
      message: 'plugin "looper" is not running (failed): GET /v1/plugins/looper says why',
    });
    // A config change from elsewhere starts it afresh, like any failed plugin.
    config = { entries: { looper: { ...config.entries["looper"]!, config: { n: 100 } } } };
    await t.host.load(config);
    await waitFor(() => {
      expect(t.logs.filter((l) => l.msg === "self-looper started").length).toBeGreaterThan(3);
      return true;
    });
  });

  it("times out a plugin whose activate never finishes, and fails it after the restarts", async () => {
    const t = setup({ limits: { startTimeoutMs: 300 } });
    await t.host.load({ entries: { hang: entry(join(FIXTURES, "hang"), { config: { mode: "activate" } }) } });
    expect(t.host.get("hang").state).not.toBe("running");
    const failed = await t.waitForState("hang", "failed");
    expect(failed.lastError).toContain('plugin "hang" did not become ready within 300 ms');
  });

  it("times out a call that hangs with PLUGIN_TIMEOUT; the plugin stays up", async () => {
    const t = setup();
    await t.host.load({ entries: { hang: entry(join(FIXTURES, "hang"), { config: { mode: "http" } }) } });
    const started = Date.now();
    await expect(t.host.handleHttp("hang", http)).rejects.toMatchObject({
      code: "PLUGIN_TIMEOUT",
      message: 'plugin "hang" did not answer http.request within 1000 ms',
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(t.host.get("hang")).toMatchObject({ state: "running", restarts: 0 });
  });

  it("kills and restarts a plugin whose event loop is blocked (no heartbeat)", async () => {
    // The call's own timeout is far off, so the heartbeat (800 ms without an answer, checked every
    // 200 ms) is what ends the call, also on a loaded machine where timers and the kill's exit run late.
    const t = setup({ limits: { callTimeoutMs: 5_000 } });
    await t.host.load({ entries: { busy: entry(join(FIXTURES, "hang"), { config: { mode: "busy" } }) } });
    const pid = t.host.get("busy").pid!;
    await expect(t.host.handleHttp("busy", http)).rejects.toThrow(
      'plugin "busy" exited: hung: no heartbeat answer for 800 ms',
    );
    await waitFor(() => {
      expect(t.host.get("busy").restarts).toBe(1);
      return true;
    }, 5_000);
    await t.waitForState("busy", "running");
    expect(alive(pid)).toBe(false);
  });

  it("does not take a stall of the gateway's own event loop for a hung plugin", async () => {
    // A plugin suite's host stalled under load and killed a plugin that had answered every ping.
    // The host's loop is blocked here for twice the heartbeat's timeout (800 ms), twice between
    // pings and twice right after one went out (its answer then arrives while the loop is blocked).
    const afterPing = stallAfterSending("ping");
    const t = setup();
    await t.host.load({ entries: { basic: entry(join(FIXTURES, "basic")) } });
    const { pid } = await t.waitForState("basic", "running");
    for (const pause of [0, 100]) {
      await new Promise((resolve) => setTimeout(resolve, pause));
      stall();
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    afterPing.arm(2);
    await waitFor(() => afterPing.left() === 0, 10_000, "two stalls after a ping");
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(t.logs.filter((l) => /hung/.test(JSON.stringify(l)))).toEqual([]);
    expect(t.host.get("basic")).toMatchObject({ state: "running", pid, restarts: 0 });
  });

  it("takes a call's answer that came while the gateway's own loop stalled past the call's timeout", async () => {
    // A plugin agent's run timed out in a full run (PLUGIN_TIMEOUT after its 1 s idle timeout) on
    // a loaded machine. Here the host's loop is blocked for 1.6 s right after a call went out
    // (the call's timeout is 1 s): its answer arrives meanwhile and waits unread.
    const afterCall = stallAfterSending("call");
    const t = setup();
    await t.host.load({ entries: { basic: entry(join(FIXTURES, "basic")) } });
    const { pid } = await t.waitForState("basic", "running");
    afterCall.arm(1);
    expect(await t.host.handleHttp("basic", hookCall({ op: "config" }))).toEqual({ status: 200, body: {} });
    expect(afterCall.left()).toBe(0);
    expect(t.host.get("basic")).toMatchObject({ state: "running", pid, restarts: 0 });
  });

  it("kills a plugin that sends a frame over the limit or a frame that is not one", async () => {
    const t = setup({ limits: { maxRestarts: 0 } });
    await t.host.load({
      entries: {
        flood: entry(join(FIXTURES, "abuser"), { config: { mode: "flood" } }),
        garbage: entry(join(FIXTURES, "abuser"), { config: { mode: "garbage" } }),
      },
    });
    expect((await t.waitForState("flood", "failed")).lastError).toBe(
      "protocol violation: a frame is larger than 1048576 bytes",
    );
    expect((await t.waitForState("garbage", "failed")).lastError).toMatch(/^protocol violation/);
  });

  it("applies a config reload as a diff: starts new, stops removed, restarts changed, keeps unchanged", async () => {
    const t = setup();
    const basic = entry(join(FIXTURES, "basic"));
    await t.host.load({ entries: { a: basic, b: basic, c: basic } });
    const pids = Object.fromEntries(t.host.status().map((s) => [s.id, s.pid!]));
    expect(t.host.status().map((s) => [s.id, s.state])).toEqual([
      ["a", "running"],
      ["b", "running"],
      ["c", "running"],
    ]);

    await t.host.load({
      entries: { a: basic, b: { ...basic, config: { v: 2 } }, d: basic, e: { ...basic, enabled: false } },
    });
    const status = Object.fromEntries(t.host.status().map((s) => [s.id, s]));
    expect(Object.keys(status)).toEqual(["a", "b", "d", "e"]);
    expect(status["a"]).toMatchObject({ state: "running", pid: pids["a"] });
    expect(status["b"]?.state).toBe("running");
    expect(status["b"]?.pid).not.toBe(pids["b"]);
    expect(status["d"]?.state).toBe("running");
    expect(status["e"]).toMatchObject({ state: "stopped", pid: null });
    expect(alive(pids["b"]!)).toBe(false);
    expect(alive(pids["c"]!)).toBe(false);
    expect(await t.host.handleHttp("b", hookCall({ op: "config" }))).toEqual({ status: 200, body: { v: 2 } });
    expect(() => t.host.get("c")).toThrow(expect.objectContaining({ code: "PLUGIN_NOT_FOUND" }));
  });

  it("lists status for GET /v1/plugins and kills every child on close (idempotent)", async () => {
    const t = setup();
    await t.host.load({
      entries: {
        basic: entry(join(FIXTURES, "basic"), { permissions: { writeConfigFile: true, runCommandWithTimeout: false } }),
      },
    });
    const [status] = t.host.status();
    expect(status).toEqual({
      id: "basic",
      state: "running",
      restarts: 0,
      lastError: null,
      permissions: ["writeConfigFile"],
      agents: [],
      pid: expect.any(Number),
      publicHooks: false,
    });
    await Promise.all([t.host.close(), t.host.close()]);
    await t.host.close();
    expect(alive(status!.pid!)).toBe(false);
    expect(t.host.get("basic").state).toBe("stopped");
    expect(t.subscribers.size).toBe(0);
    await expect(t.host.load({ entries: {} })).rejects.toMatchObject({ code: "SHUTTING_DOWN" });
    expect(await t.registry.metrics()).not.toContain("switchboard_plugin");
  });

  it("stops a plugin that is being sent events without a channel error in the log (exploratory test: EPIPE or ECONNRESET at every gateway stop)", async () => {
    for (let round = 0; round < 5; round++) {
      const t = setup({ limits: { heartbeatIntervalMs: 5 } });
      await t.host.load({ entries: { counter: entry(join(FIXTURES, "counter")) } });
      // Events keep coming while the plugin stops, as a session's output does while the gateway stops.
      let seq = 0;
      const feed = setInterval(() => {
        for (let i = 0; i < 20; i++)
          t.emit("s1", { seq: ++seq, ts: Date.now(), type: "custom", name: "tick", data: seq });
      }, 1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      await t.host.close();
      clearInterval(feed);
      const channelErrors = t.logs.filter((l) => /channel error|EPIPE|ECONNRESET/.test(l.msg ?? ""));
      expect(channelErrors, `round ${round}`).toEqual([]);
      expect(t.host.get("counter").state).toBe("stopped");
    }
  });
});
