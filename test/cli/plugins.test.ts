import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpClient } from "../../src/client/node.js";
import { EXIT } from "../../src/cli/exit-codes.js";
import { startTestGateway } from "../client/helpers.js";
import type { TestGateway } from "../client/helpers.js";
import { cli } from "./helpers.js";

/** Starts several CLI processes (each loads the code): room for a loaded machine. */
const HEAVY_TEST_MS = 60_000;

let gw: TestGateway;
let env: Record<string, string>;

beforeAll(async () => {
  gw = await startTestGateway({
    config: {
      plugins: {
        entries: {
          words: { path: resolve("examples/plugins/word-agent"), config: { agentId: "words", delayMs: 1 } },
          // Its folder does not exist: it fails at start, with the reason in lastError.
          broken: { path: resolve("test/plugins/fixtures/no-such-plugin") },
        },
      },
    },
  });
  env = { SWITCHBOARD_URL: gw.url, SWITCHBOARD_TOKEN: gw.token };
});
afterAll(() => gw.close());

describe("switchboard plugins", () => {
  it(
    "lists the plugins with state, restarts, agents and why one failed; shows one; --json gives the same fields",
    async () => {
      const [table, one, failed, json, missing, extra] = await Promise.all([
        cli(["plugins"], env),
        cli(["plugins", "words"], env),
        cli(["plugins", "broken"], env),
        cli(["plugins", "--json"], env),
        cli(["plugins", "nope"], env),
        cli(["plugins", "words", "more"], env),
      ]);
      expect(table.code).toBe(EXIT.OK);
      const lines = table.stdout.trimEnd().split("\n");
      expect(lines[0]).toMatch(/^ID\s+STATE\s+RESTARTS\s+PID\s+AGENTS\s+PERMISSIONS\s+LAST ERROR$/);
      // The table cuts a long error to its column (how much of the path fits depends on where the clone lives).
      expect(lines[1]).toMatch(/^broken\s+failed\s+0\s+-\s+-\s+-\s+plugin path does not exist: \//);
      expect(lines[2]).toMatch(/^words\s+running\s+0\s+\d+\s+words\s+-\s+-$/);
      expect(lines).toHaveLength(3);

      expect(one.code).toBe(EXIT.OK);
      expect(one.stdout).toMatch(/^id:\s+words\nstate:\s+running\nrestarts:\s+0\npid:\s+\d+\nagents:\s+words\n/);
      // One plugin is shown whole: its error is not cut.
      expect(failed.code).toBe(EXIT.OK);
      expect(failed.stdout).toContain(`plugin path does not exist: ${resolve("test/plugins/fixtures/no-such-plugin")}`);

      const listed = JSON.parse(json.stdout) as Array<{ id: string; state: string; agents: string[] }>;
      expect(listed.map((p) => [p.id, p.state, p.agents])).toEqual([
        ["broken", "failed", []],
        ["words", "running", ["words"]],
      ]);

      expect(missing.code).toBe(EXIT.NOT_FOUND);
      expect(missing.stderr).toContain("PLUGIN_NOT_FOUND");
      expect(extra.code).toBe(EXIT.USAGE);
    },
    HEAVY_TEST_MS,
  );

  it(
    "restart starts a plugin afresh (a new process); a plugin that fails again exits 1 with why",
    async () => {
      const http = new HttpClient({ url: gw.url, token: gw.token });
      const before = await http.getPlugin("words");
      const restarted = await cli(["plugins", "restart", "words"], env);
      expect(restarted.code).toBe(EXIT.OK);
      expect(restarted.stdout).toMatch(/^id:\s+words\nstate:\s+running\n/);
      const after = await http.getPlugin("words");
      expect(after).toMatchObject({ state: "running", restarts: 0, agents: ["words"] });
      expect(after.pid).not.toBe(before.pid);

      const failed = await cli(["plugins", "restart", "broken", "--json"], env);
      expect(failed.code).toBe(EXIT.FAILURE);
      expect(JSON.parse(failed.stdout)).toMatchObject({ id: "broken", state: "failed", lastError: expect.any(String) });

      const usage = await cli(["plugins", "restart"], env);
      expect(usage.code).toBe(EXIT.USAGE);
      expect(usage.stderr).toContain("missing the plugin id");
    },
    HEAVY_TEST_MS,
  );
});
