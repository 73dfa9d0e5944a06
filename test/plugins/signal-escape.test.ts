import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { TEST_TOKEN } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";

/** A plugin without permissions that tries to stop, kill and renice its parent, the gateway. */
const SIGNALLER = fileURLToPath(new URL("./fixtures/signaller", import.meta.url));

/** A process's scheduler state (`T` stopped, `Z` zombie, …) and nice value, from /proc/<pid>/stat. */
function procStat(pid: number): { state: string; nice: number } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch (error) {
    // The process is gone (and reaped): no state to read.
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
  // Fields after the command name, which is in parentheses and may hold spaces: state is the
  // 3rd field of the line, nice the 19th.
  const after = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: after[0]!, nice: Number(after[16]) };
}

interface Outcome {
  ok: boolean;
  code?: string | null;
  message?: string;
  value?: string;
}

describe("a plugin signalling the gateway", () => {
  // Issue: a plugin that redefined `process.pid` as `process.ppid` got past the runner's guard
  // and froze the gateway with SIGSTOP (killed it with SIGKILL, reniced it). The gateway runs in
  // a child process here, watched through /proc, so a guard that fails stops that child, never
  // the test runner.
  it("cannot stop, kill or renice it, whatever it redefines, and still signals and renices itself", async () => {
    const configFile = join(tempDir("switchboard-signal-config-"), "config.json");
    writeFileSync(configFile, JSON.stringify({ plugins: { entries: { signaller: { path: SIGNALLER } } } }));
    const { child, url } = await serveInChild({ dataDir: tempDir("switchboard-signal-"), config: configFile });
    const pid = child.pid!;
    const niceAtStart = procStat(pid)!.nice;
    let exit: string | null = null;
    child.on("exit", (code, signal) => (exit = signal ?? `code ${code}`));

    // Watches the gateway until the plugin answers; a stopped gateway is continued (and noted) so
    // the plugin's later attempts and its answer still happen.
    let report: Record<string, unknown> | undefined;
    const answer = fetch(`${url}/v1/plugins/signaller/http/`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_TOKEN}`, "content-type": "application/json" },
      body: "{}",
    }).then(
      async (response) => (report = (await response.json()) as Record<string, unknown>),
      (error: Error) => (report = { failed: error.message }),
    );
    const seen = { stopped: false, nice: niceAtStart };
    const deadline = Date.now() + 20_000;
    while (report === undefined && exit === null && Date.now() < deadline) {
      const stat = procStat(pid);
      if (stat !== null) {
        if (stat.state === "T") {
          seen.stopped = true;
          process.kill(pid, "SIGCONT");
        }
        if (stat.nice !== niceAtStart) seen.nice = stat.nice;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (exit === null) await answer;
    expect({ ...seen, exit }, "the gateway was stopped, reniced or killed").toEqual({
      stopped: false,
      nice: niceAtStart,
      exit: null,
    });
    const { results, controls } = report as { results: Record<string, Outcome>; controls: Record<string, Outcome> };
    const denied = (what: string) =>
      expect.objectContaining({ ok: false, code: "ERR_ACCESS_DENIED", message: expect.stringContaining(what) });
    expect(results).toEqual({
      reniceGatewayAsOwnPid: denied("os.setPriority of another process"),
      reniceGatewayImported: denied("os.setPriority of another process"),
      reniceGatewayBuiltinModule: denied("os.setPriority of another process"),
      stopGatewayAsOwnPid: denied("process.kill of another process"),
      stopGatewayRawKill: denied("process.kill of another process"),
      signalProcessGroup: denied("process.kill of another process"),
      signalEveryProcess: denied("process.kill of another process"),
      signalGatewayGroup: denied("process.kill of another process"),
      stopGatewayPidString: denied("process.kill of another process"),
      stopGatewayPidObject: denied("process.kill of another process"),
      // The guard calls the real functions through nothing the plugin can replace.
      stopGatewayStolenKill: expect.objectContaining({ ok: false, code: "NOTHING_STOLEN" }),
      reniceGatewayStolen: expect.objectContaining({ ok: false, code: "NOTHING_STOLEN" }),
      bindingProcessMethods: denied("process.binding"),
      bindingOs: denied("process.binding"),
      killGateway: denied("process.kill of another process"),
    });
    // Positive controls: its own process is still its to signal and renice.
    expect(controls).toEqual({
      signalSelf: { ok: true, value: "true" },
      reniceSelf: { ok: true, value: "undefined" },
      reniceSelfByZero: { ok: true, value: "undefined" },
      ownPriority: { ok: true, value: "6" },
    });
    // Running, sleeping or in a disk wait (D: a write of its log), never stopped (T) or gone.
    expect(procStat(pid)).toEqual({ state: expect.stringMatching(/^[RSD]$/), nice: niceAtStart });
  });
});
