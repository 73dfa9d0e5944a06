import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { SwitchboardError } from "../../src/protocol/index.js";
import { PluginPermissionsSchema, PluginsConfigSchema, parsePluginsConfig } from "../../src/plugins/config.js";
import {
  PLUGIN_PERMISSIONS,
  grantedPermissions,
  permissionConfigPath,
  requirePermission,
} from "../../src/plugins/permissions.js";
import { METHOD_PERMISSIONS } from "../../src/plugins/runtime.js";
import { resolvePlugin, sandboxArgs } from "../../src/plugins/sandbox.js";
import { FIXTURES, setup } from "./helpers.js";

function configError(raw: unknown): SwitchboardError {
  try {
    parsePluginsConfig(raw);
  } catch (error) {
    if (error instanceof SwitchboardError) return error;
    throw error;
  }
  throw new Error("expected CONFIG_INVALID");
}

describe("plugin permissions: one list for the schema and the policy", () => {
  it("builds the config's permission keys from PLUGIN_PERMISSIONS", () => {
    expect(Object.keys(PluginPermissionsSchema.shape).sort()).toEqual([...PLUGIN_PERMISSIONS].sort());
  });

  it("has a policy that names only permissions the config can grant, and gates both dangerous APIs", () => {
    for (const permission of Object.values(METHOD_PERMISSIONS)) expect(PLUGIN_PERMISSIONS).toContain(permission);
    expect(METHOD_PERMISSIONS).toEqual({
      "system.runCommandWithTimeout": "runCommandWithTimeout",
      "config.writeConfigFile": "writeConfigFile",
    });
  });

  it("is restricted by default", () => {
    const config = parsePluginsConfig({ entries: { p: { path: "./p" } } });
    expect(grantedPermissions(config.entries["p"]?.permissions)).toEqual([]);
    expect(grantedPermissions({ runCommandWithTimeout: false, writeConfigFile: true })).toEqual(["writeConfigFile"]);
  });

  it("denies with the permission's name and the exact config path that grants it", () => {
    const call = () => requirePermission("my-plugin", { writeConfigFile: true }, "runCommandWithTimeout");
    expect(call).toThrow(SwitchboardError);
    expect(call).toThrow(
      'plugin "my-plugin" lacks the permission "runCommandWithTimeout"; grant it with plugins.entries.my-plugin.permissions.runCommandWithTimeout: true',
    );
    expect(permissionConfigPath("x", "writeConfigFile")).toBe("plugins.entries.x.permissions.writeConfigFile");
    expect(() =>
      requirePermission("my-plugin", { runCommandWithTimeout: true }, "runCommandWithTimeout"),
    ).not.toThrow();
  });
});

describe("plugins config", () => {
  it("rejects a misspelled permission with the list of valid names", () => {
    const error = configError({ entries: { "my-plugin": { path: "./p", permissions: { runCommand: true } } } });
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.message).toBe(
      'plugins.entries.my-plugin.permissions: unknown permission "runCommand"; valid permissions are: runCommandWithTimeout, writeConfigFile, readAllSessions',
    );
  });

  it("gives the same message when the section is embedded in a larger schema", () => {
    const result = PluginsConfigSchema.safeParse({
      entries: { a: { path: "x", permissions: { writeconfigfile: true } } },
    });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toContain("valid permissions are: runCommandWithTimeout, writeConfigFile");
  });

  it("rejects unknown entry fields, bad ids and a permission that is not a boolean", () => {
    expect(configError({ entries: { a: { path: "x", permisions: {} } } }).message).toContain("plugins.entries.a");
    expect(configError({ entries: { "../evil": { path: "x" } } }).message).toContain("plugin ids are");
    expect(configError({ entries: { A: { path: "x" } } }).message).toContain("plugin ids are");
    expect(configError({ entries: { a: { path: "x", permissions: { writeConfigFile: "yes" } } } }).message).toContain(
      "plugins.entries.a.permissions.writeConfigFile",
    );
    expect(configError({ entries: { a: {} } }).message).toContain("plugins.entries.a.path");
  });

  it("accepts an absent section as no plugins", () => {
    expect(parsePluginsConfig(undefined)).toEqual({ entries: {} });
  });

  it("refuses a bad config at load and changes nothing", async () => {
    const t = setup();
    await expect(
      t.host.load({ entries: { a: { path: "x", permissions: { runCommand: true } } } }),
    ).rejects.toMatchObject({
      code: "CONFIG_INVALID",
      message: expect.stringContaining("valid permissions are: runCommandWithTimeout, writeConfigFile"),
    });
    expect(t.host.status()).toEqual([]);
  });
});

describe("sandbox flags", () => {
  const base = {
    runnerDir: "/opt/sb/runner",
    pluginDir: "/srv/plugins/a",
    stateDir: "/var/sb/plugins/a",
    heapMb: 64,
  };

  it("grants reads of the runner's folder, the plugin folder and the state folder, writes of the state folder, nothing else", () => {
    const args = sandboxArgs({ ...base, flags: new Set(["--experimental-permission"]) });
    expect(args).toEqual([
      "--experimental-permission",
      "--allow-fs-read=/opt/sb/runner/",
      "--allow-fs-read=/srv/plugins/a/",
      "--allow-fs-read=/var/sb/plugins/a/",
      "--allow-fs-write=/var/sb/plugins/a/",
      "--no-addons",
      "--max-old-space-size=64",
      "/opt/sb/runner/main.mjs",
    ]);
    expect(sandboxArgs({ ...base, flags: new Set(["--permission", "--disable-warning"]) })[0]).toBe("--permission");
  });

  it("refuses paths Node's flag parser would misread (commas, wildcards) and relative paths", () => {
    expect(() => sandboxArgs({ ...base, pluginDir: "/srv/x,/" })).toThrow(/comma/);
    expect(() => sandboxArgs({ ...base, stateDir: "/var/*" })).toThrow(/comma or '\*'/);
    expect(() => sandboxArgs({ ...base, pluginDir: "plugins/a" })).toThrow(/absolute/);
  });

  it("refuses a plugin folder that contains the gateway's data dir", async () => {
    const root = mkdtempSync(join(tmpdir(), "switchboard-plugin-root-"));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    mkdirSync(join(root, "data"));
    writeFileSync(join(root, "index.mjs"), "export default () => {}");
    await expect(resolvePlugin(".", { baseDir: root, protectedPaths: [join(root, "data")] })).rejects.toThrow(
      /contains .*data, which plugins must not read/,
    );
    await expect(resolvePlugin("/", { baseDir: root, protectedPaths: [] })).rejects.toThrow();
    const ok = await resolvePlugin(join(FIXTURES, "basic"), { baseDir: root, protectedPaths: [join(root, "data")] });
    expect(ok.entry).toBe(join(FIXTURES, "basic", "index.mjs"));
  });

  it("refuses a plugin folder holding a symbolic link that leads outside it (the permission model follows links)", async () => {
    const t = setup();
    const root = mkdtempSync(join(tmpdir(), "switchboard-plugin-links-"));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    writeFileSync(join(root, "index.mjs"), "export default () => {}");
    mkdirSync(join(root, "lib"));
    symlinkSync(join(root, "index.mjs"), join(root, "lib", "inside.mjs"));
    await t.host.load({ entries: { linked: { path: root } } });
    expect(t.host.get("linked").state).toBe("running");

    symlinkSync(t.dataDir, join(root, "lib", "data"));
    await t.host.load({ entries: { linked: { path: root, config: { changed: true } } } });
    expect(t.host.get("linked")).toMatchObject({ state: "failed", pid: null });
    expect(t.host.get("linked").lastError).toContain("holds a symbolic link leading outside it");
    rmSync(join(root, "lib", "data"));
    await expect(resolvePlugin(root, { baseDir: root, protectedPaths: [] })).resolves.toMatchObject({ dir: root });
    symlinkSync("/nonexistent/elsewhere", join(root, "dangling"));
    await expect(resolvePlugin(root, { baseDir: root, protectedPaths: [] })).rejects.toThrow(/symbolic link/);
  });

  it("marks a plugin whose folder holds the data dir as failed, without starting it", async () => {
    const t = setup();
    writeFileSync(join(t.dataDir, "index.mjs"), "export default () => {}");
    await t.host.load({ entries: { greedy: { path: t.dataDir } } });
    expect(t.host.get("greedy")).toMatchObject({ state: "failed", pid: null });
    expect(t.host.get("greedy").lastError).toContain("which plugins must not read");
  });
});
