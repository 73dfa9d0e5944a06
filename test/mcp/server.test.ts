import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, REPO, cli } from "../cli/helpers.js";
import { EXIT } from "../../src/cli/exit-codes.js";
import { startTestGateway } from "../client/helpers.js";
import type { TestGateway } from "../client/helpers.js";
import { McpProcess } from "./helpers.js";
import { closedPortUrl } from "../helpers/net.js";
import { waitFor } from "../helpers/wait-for.js";

let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway();
});
afterAll(async () => {
  await gw?.close();
});

describe("switchboard mcp, the process", () => {
  it("introduces itself and ends by itself when its stdin closes", async () => {
    const mcp = await McpProcess.start({ SWITCHBOARD_URL: gw.url, SWITCHBOARD_TOKEN: gw.token });
    expect(mcp.client.getServerVersion()).toMatchObject({ name: "switchboard" });
    expect(mcp.client.getInstructions()).toContain("wait_for_output");
    // A wait in progress must not keep the process alive once the client is gone.
    const { data } = await mcp.ok("start_session", { command: ["sleep", "30"] });
    const waiting = mcp.call("wait_for_output", { id: data.session.id, pattern: "never", timeout_ms: 60_000 });
    waiting.catch(() => undefined);
    // The wait follows the session (a fixed 200 ms did not make sure of it on a loaded machine).
    const session = gw.gateway.core.sessions.get(data.session.id as string)!;
    await waitFor(() => session.viewers === 1, 10_000);
    const pid = mcp.transport.pid!;
    const started = Date.now();
    await mcp.close();
    // The transport sends SIGTERM only after 2 s: the server left before that on its own.
    expect(Date.now() - started).toBeLessThan(1900);
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it("answers the requests it read before its stdin ended (printf '…' | switchboard mcp)", async () => {
    const child = spawn(CLI[0]!, [...CLI.slice(1), "mcp"], {
      cwd: REPO,
      env: { ...process.env, SWITCHBOARD_URL: gw.url, SWITCHBOARD_TOKEN: gw.token },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const lines = [
      {
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "printf", version: "1" } },
      },
      { jsonrpc: "2.0", method: "notifications/initialized" },
      { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "list_sessions", arguments: {} } },
      { jsonrpc: "2.0", id: 3, method: "tools/list" },
    ];
    child.stdin.end(lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    expect(await exited).toBe(0);
    const answers = stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { id: number; result?: { isError?: boolean } });
    expect(answers.map((a) => a.id).sort()).toEqual([1, 2, 3]);
    expect(answers.find((a) => a.id === 2)?.result?.isError).not.toBe(true);
  }, 30_000);

  it("starts without a gateway and answers each call with UNREACHABLE", async () => {
    const url = await closedPortUrl();
    const mcp = await McpProcess.start({ SWITCHBOARD_URL: url, SWITCHBOARD_TOKEN: "x".repeat(20) });
    try {
      const first = await mcp.call("list_sessions");
      expect(first).toMatchObject({ isError: true, code: "UNREACHABLE" });
      expect(first.text).toContain(`looks for it at ${url}`);
      const again = await mcp.call("wait_for_output", { id: "abc" });
      expect(again.code).toBe("UNREACHABLE");
      await waitFor(() => /switchboard mcp: warning: cannot reach the gateway/.test(mcp.stderr));
    } finally {
      await mcp.close();
    }
  });

  it("reports a token the gateway refuses, with where it came from", async () => {
    const mcp = await McpProcess.start({ SWITCHBOARD_URL: gw.url, SWITCHBOARD_TOKEN: "wrong-token-0123456789" });
    try {
      const answer = await mcp.call("list_sessions");
      expect(answer.code).toBe("UNAUTHORIZED");
      expect(answer.text).toContain("refused the token from SWITCHBOARD_TOKEN");
    } finally {
      await mcp.close();
    }
  });

  it("starts sessions in --cwd when given", async () => {
    const mcp = await McpProcess.start({ SWITCHBOARD_URL: gw.url, SWITCHBOARD_TOKEN: gw.token }, ["--cwd", "/tmp"]);
    try {
      const { data } = await mcp.ok("start_session", { command: ["pwd"] });
      const out = await mcp.ok("wait_for_output", {
        id: data.session.id,
        since: 0,
        pattern: "\\n",
        timeout_ms: 10_000,
      });
      expect(out.output).toBe("/tmp\n");
      const sub = await mcp.ok("start_session", { command: ["pwd"], cwd: "." });
      expect(sub.data.session.cwd).toBe("/tmp");
    } finally {
      await mcp.close();
    }
  });
});

describe("switchboard mcp --progress-ms", () => {
  it("refuses an interval that is not a whole number of at least 100 ms, before it serves", async () => {
    const env = { SWITCHBOARD_URL: gw.url, SWITCHBOARD_TOKEN: gw.token };
    const [tooShort, notANumber] = await Promise.all([
      cli(["mcp", "--progress-ms", "99"], env),
      cli(["mcp", "--progress-ms", "1.5"], env),
    ]);
    expect(tooShort).toMatchObject({ code: EXIT.USAGE, stdout: "" });
    expect(tooShort.stderr).toMatch(/^switchboard: --progress-ms must be at least 100\n/);
    expect(notANumber).toMatchObject({ code: EXIT.USAGE, stdout: "" });
    expect(notANumber.stderr).toMatch(/^switchboard: --progress-ms must be a non-negative integer\n/);
  });
});

describe("switchboard mcp --help", () => {
  // Regression (exploratory test): the usage named 12 of the 14 tools.
  it("names every tool the server offers, and docs/mcp.md documents each", async () => {
    const { MCP_USAGE } = await import("../../src/cli/mcp.js");
    const { TOOLS } = await import("../../src/mcp/server.js");
    const { readFileSync } = await import("node:fs");
    const docs = readFileSync(new URL("../../docs/mcp.md", import.meta.url), "utf8");
    const usage = MCP_USAGE.replace(/\s+/g, " ");
    expect(TOOLS.length).toBeGreaterThan(10);
    for (const { name } of TOOLS.map((t) => t.listing)) {
      expect(usage, name).toMatch(new RegExp(`\\b${name}\\b`));
      expect(docs, name).toContain(`### ${name}\n`);
    }
  });
});
