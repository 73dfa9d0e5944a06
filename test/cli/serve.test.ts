import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { EXIT } from "../../src/cli/exit-codes.js";
import { waitUntil } from "../client/helpers.js";
import { CLI, REPO, cli } from "./helpers.js";

const SERVE_TEST_MS = 60_000;

function tempDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-serve-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe("switchboard serve", () => {
  // Regression (CLI audit): an unknown option ended serve with exit code 1 and no usage, and a
  // 3-character token was accepted.
  it(
    "refuses an unknown option, a short token and a port fetch refuses as command-line mistakes (exit 2)",
    async () => {
      const dataDir = tempDataDir();
      const noToken = { SWITCHBOARD_TOKEN: "", SWITCHBOARD_CONFIG: "" };
      const [bogus, shortFlag, shortEnv, badPort] = await Promise.all([
        cli(["serve", "--bogus", "--data-dir", dataDir], noToken),
        cli(["serve", "--port", "0", "--data-dir", dataDir, "--token", "abc"], noToken),
        cli(["serve", "--port", "0", "--data-dir", dataDir], { ...noToken, SWITCHBOARD_TOKEN: "0123456789abcde" }),
        // Regression (exploratory testing): a gateway on 6000 listened, and fetch then refused it as "bad port".
        cli(["serve", "--port", "6000", "--data-dir", dataDir], noToken),
      ]);
      expect(badPort).toMatchObject({ code: EXIT.USAGE, stdout: "" });
      expect(badPort.stderr).toMatch(/^switchboard: port 6000 is one browsers and fetch refuse to connect to/);
      expect(bogus).toMatchObject({ code: EXIT.USAGE, stdout: "" });
      expect(bogus.stderr).toMatch(/^switchboard: Unknown option '--bogus'.*\n\nUsage: switchboard serve /);
      expect(shortFlag).toEqual({
        code: EXIT.USAGE,
        stdout: "",
        stderr: "switchboard: --token must be at least 16 characters (it has 3); leave it out to have one generated\n",
      });
      expect(shortEnv.code).toBe(EXIT.USAGE);
      expect(shortEnv.stderr).toMatch(/^switchboard: SWITCHBOARD_TOKEN must be at least 16 characters \(it has 15\)/);
    },
    SERVE_TEST_MS,
  );

  // Regression (CLI audit): without any config, SIGHUP said "the config was given inline".
  it(
    "says on SIGHUP that there is no config file when serve was started without one",
    async () => {
      const dataDir = tempDataDir();
      const env: NodeJS.ProcessEnv = { ...process.env, SWITCHBOARD_LOG_LEVEL: "silent" };
      delete env["SWITCHBOARD_CONFIG"];
      const child = spawn(
        CLI[0]!,
        [...CLI.slice(1), "serve", "--port", "0", "--data-dir", dataDir, "--token", "test-token-0123456789abcdef"],
        { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] },
      );
      onTestFinished(() => void child.kill("SIGKILL"));
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      await waitUntil(() => stdout.includes("switchboard listening on"), 30_000, "listening");
      child.kill("SIGHUP");
      await waitUntil(() => stderr.includes("config reload"), 10_000, "the reload notice");
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(stderr).toBe(
        "switchboard: config reload refused: no config file to reload (serve was started without --config or SWITCHBOARD_CONFIG)\n",
      );
    },
    SERVE_TEST_MS,
  );
});
