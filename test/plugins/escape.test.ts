import { existsSync, readdirSync } from "node:fs";
import inspector from "node:inspector";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { permissionFlag } from "../../src/plugins/sandbox.js";
import { FIXTURES, entry, setup } from "./helpers.js";

const ADDON = new URL("../../node_modules/better-sqlite3/build/Release/better_sqlite3.node", import.meta.url).pathname;
/** The runner's entry module, which plugins may read, and a file of the gateway beside the runner's folder, which they may not. */
const RUNNER_FILE = new URL("../../src/plugins/runner/main.mjs", import.meta.url).pathname;
const BESIDE_RUNNER_FILE = new URL("../../src/plugins/sandbox.ts", import.meta.url).pathname;

interface Outcome {
  ok: boolean;
  code?: string | null;
  message?: string;
  value?: string;
}

describe("the plugin sandbox (Node permission model)", () => {
  it("uses the permission flag this Node version knows", () => {
    expect(permissionFlag(new Set(["--permission"]))).toBe("--permission");
    expect(permissionFlag(new Set(["--experimental-permission"]))).toBe("--experimental-permission");
    expect(process.allowedNodeEnvironmentFlags.has(permissionFlag())).toBe(true);
  });

  it("stops a hostile plugin at every escape it tries, and it reports each one", async () => {
    expect(existsSync(ADDON)).toBe(true);
    const t = setup();
    // Were the gateway's inspector opened (by the SIGUSR1 a plugin sends it), it is closed again.
    expect(inspector.url()).toBeUndefined();
    onTestFinished(() => inspector.close());
    const outsideFile = join(t.dataDir, "pwned.txt");
    await t.host.load({
      entries: {
        hostile: entry(join(FIXTURES, "hostile"), {
          config: {
            tokenFile: t.tokenFile,
            dbFile: t.dbFile,
            dataDir: t.dataDir,
            addonFile: ADDON,
            outsideFile,
            runnerFile: RUNNER_FILE,
            besideRunnerFile: BESIDE_RUNNER_FILE,
          },
        }),
      },
    });
    const record = await t.waitForLog("escape-results");
    const { results, controls } = record.fields["data"] as {
      results: Record<string, Outcome>;
      controls: Record<string, Outcome>;
    };

    // process._debugProcess(process.ppid) sent the gateway SIGUSR1, which opened its inspector on
    // 127.0.0.1:9229, where the plugin (whose network is not restricted) could run code in the
    // gateway (exploratory test). The signal would have arrived by now; give its handler a moment.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(inspector.url(), "the gateway's inspector").toBeUndefined();
    expect(results["debugGateway"]).toMatchObject({
      ok: false,
      message: expect.stringContaining("process._debugProcess"),
    });

    // Every attempt failed, each for the reason the sandbox gives.
    const denied = (code: string) => expect.objectContaining({ ok: false, code });
    expect(results).toEqual({
      spawn: denied("ERR_ACCESS_DENIED"),
      exec: denied("ERR_ACCESS_DENIED"),
      execFile: denied("ERR_ACCESS_DENIED"),
      fork: denied("ERR_ACCESS_DENIED"),
      execSync: denied("ERR_ACCESS_DENIED"),
      spawnSync: denied("ERR_ACCESS_DENIED"),
      writeOutsideState: denied("ERR_ACCESS_DENIED"),
      writeOwnCodeFolder: denied("ERR_ACCESS_DENIED"),
      appendDatabase: denied("ERR_ACCESS_DENIED"),
      readToken: denied("ERR_ACCESS_DENIED"),
      readTokenAsync: denied("ERR_ACCESS_DENIED"),
      readTokenTraversal: denied("ERR_ACCESS_DENIED"),
      readTokenBufferPath: denied("ERR_ACCESS_DENIED"),
      readDatabase: denied("ERR_ACCESS_DENIED"),
      listDataDir: denied("ERR_ACCESS_DENIED"),
      symlinkToken: denied("ERR_ACCESS_DENIED"),
      hardlinkToken: denied("ERR_ACCESS_DENIED"),
      copyToken: denied("ERR_ACCESS_DENIED"),
      readEnviron: denied("ERR_ACCESS_DENIED"),
      readBesideRunner: denied("ERR_ACCESS_DENIED"),
      worker: denied("ERR_ACCESS_DENIED"),
      dlopen: denied("ERR_ACCESS_DENIED"),
      requireAddon: denied("ERR_ACCESS_DENIED"),
      requireBetterSqlite3: denied("ERR_ACCESS_DENIED"),
      bindingSpawnSync: denied("ERR_ACCESS_DENIED"),
      bindingFs: denied("ERR_ACCESS_DENIED"),
      inspector: denied("ERR_ACCESS_DENIED"),
      wasi: denied("ERR_ACCESS_DENIED"),
      killGateway: denied("ERR_ACCESS_DENIED"),
      reniceGateway: denied("ERR_ACCESS_DENIED"),
      debugGateway: denied("ERR_ACCESS_DENIED"),
      reportToDataDir: denied("ERR_ACCESS_DENIED"),
      runCommandWithTimeout: denied("PLUGIN_PERMISSION_DENIED"),
      writeConfigFile: denied("PLUGIN_PERMISSION_DENIED"),
    });
    expect(results["runCommandWithTimeout"]?.message).toContain(
      "plugins.entries.hostile.permissions.runCommandWithTimeout",
    );
    expect(results["writeConfigFile"]?.message).toContain("plugins.entries.hostile.permissions.writeConfigFile");

    // The positive controls worked: the sandbox allows what it should, so the denials are real.
    expect(controls).toEqual({
      writeState: expect.objectContaining({ ok: true }),
      readState: { ok: true, value: "fine" },
      readOwnFolder: expect.objectContaining({ ok: true }),
      readRunner: expect.objectContaining({ ok: true }),
      env: { ok: true, value: "{}" },
    });

    // Nothing leaked or landed outside: the token is in no report, no file appeared, the gateway got no patch.
    expect(JSON.stringify(t.logs)).not.toContain("SECRET_TOKEN");
    expect(readdirSync(t.dataDir).sort()).toEqual(["plugins", "switchboard.db", "token"]);
    expect(existsSync(outsideFile)).toBe(false);
    expect(existsSync(join(FIXTURES, "hostile", "dropped.txt"))).toBe(false);
    expect(readdirSync(join(t.dataDir, "plugins", "hostile"))).toEqual(["ok.txt"]);
    expect(t.patches).toEqual([]);
    // The denials are counted.
    const calls = await t.registry.getSingleMetricAsString("switchboard_plugin_calls_total");
    expect(calls).toContain('method="system.runCommandWithTimeout",outcome="denied"} 1');
    expect(t.host.get("hostile").state).toBe("running");
  });
});
