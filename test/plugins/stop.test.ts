import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { tempDir } from "../helpers/tmp.js";
import { FAST_LIMITS, FIXTURES, entry, hookCall, setup } from "./helpers.js";

const slow = (ms: number) => hookCall({ op: "slow", args: { ms } });

describe("in-flight requests at a stop", () => {
  it("answers the HTTP hook that writes the plugin's own config, then restarts it with the new config (exploratory test: 502 plugin exited)", async () => {
    const dir = tempDir();
    const configFile = join(dir, "config.json");
    writeFileSync(
      configFile,
      JSON.stringify({
        plugins: {
          entries: {
            self: { path: join(FIXTURES, "self-writer"), permissions: { writeConfigFile: true } },
          },
        },
      }),
    );
    const gw = await testGateway({ config: configFile });
    const http = api(gw.url);
    const pid = (await http.get("/v1/plugins/self")).json.pid as number;
    const answer = await http.post("/v1/plugins/self/http/x", { op: "write-own-config", args: { n: 1 } });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json).toBe("ok");
    expect(JSON.parse(readFileSync(configFile, "utf8")).plugins.entries.self.config).toEqual({ n: 1 });
    await waitFor(
      async () => {
        const s = (await http.get("/v1/plugins/self")).json;
        return s.state === "running" && s.pid !== pid ? s : undefined;
      },
      20_000,
      "the plugin restarted",
    );
    expect((await http.post("/v1/plugins/self/http/x", { op: "config" })).json).toEqual({ n: 1 });
  });

  it("lets a stopping plugin answer the HTTP requests it already received, within the stop grace", async () => {
    const t = setup({ limits: { stopGraceMs: 3_000 } });
    await t.host.load({ entries: { self: entry(join(FIXTURES, "self-writer")) } });
    const pid = t.host.get("self").pid;
    // On the pipe, the request goes before the stop.
    const inFlight = t.host.handleHttp("self", slow(300));
    await t.host.restart("self");
    expect(await inFlight).toEqual({ status: 200, body: { waited: 300 } });
    expect(t.host.get("self")).toMatchObject({ state: "running" });
    expect(t.host.get("self").pid).not.toBe(pid);
  });

  it("kills a stopping plugin whose HTTP answer takes longer than the stop grace: the caller gets PLUGIN_FAILED", async () => {
    const t = setup();
    await t.host.load({ entries: { self: entry(join(FIXTURES, "self-writer")) } });
    const inFlight = t.host.handleHttp("self", slow(60_000));
    const failed = expect(inFlight).rejects.toMatchObject({ code: "PLUGIN_FAILED", message: 'plugin "self" exited' });
    const stoppedAt = Date.now();
    await t.host.restart("self");
    await failed;
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(FAST_LIMITS.stopGraceMs! - 50);
  });

  it("closes promptly while a plugin is stuck in activate: its start is abandoned, not waited out (exploratory test: SIGTERM took startTimeoutMs)", async () => {
    const t = setup({ limits: { startTimeoutMs: 20_000 } });
    const loading = t.host.load({ entries: { hang: entry(join(FIXTURES, "hang"), { config: { mode: "activate" } }) } });
    await waitFor(() => {
      expect(t.host.get("hang")).toMatchObject({ state: "starting", pid: expect.any(Number) });
      return true;
    }, 10_000);
    const pid = t.host.get("hang").pid!;
    const started = Date.now();
    await t.host.close();
    expect(Date.now() - started).toBeLessThan(5_000);
    await loading;
    expect(t.host.get("hang")).toMatchObject({ state: "stopped", pid: null, lastError: null });
    expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: "ESRCH" }));
  });
});
