/**
 * A gateway records where it listens in DATA_DIR/gateway.json (src/cli/gateway-file.ts), and the
 * client commands find it there: `serve --port 0` then `ls` needs no SWITCHBOARD_URL.
 */
import { execFile, spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { EXIT } from "../../src/cli/exit-codes.js";
import { GATEWAY_FILE, readGatewayFile } from "../../src/cli/gateway-file.js";
import { cliCommand } from "../helpers/compiled-cli.js";
import { waitFor } from "../helpers/wait-for.js";

const TEST_MS = 60_000;
const CLI = cliCommand();

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-gwfile-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The environment without any SWITCHBOARD_ variable, plus `vars`. */
function envWith(vars: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, SWITCHBOARD_LOG_LEVEL: "silent" };
  for (const name of Object.keys(env))
    if (name.startsWith("SWITCHBOARD_") && name !== "SWITCHBOARD_LOG_LEVEL") delete env[name];
  return { ...env, ...vars };
}

function cliIn(cwd: string, args: string[], vars: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(
      CLI[0]!,
      [...CLI.slice(1), ...args],
      { cwd, env: envWith(vars), timeout: TEST_MS },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr }),
    ),
  );
}

describe("DATA_DIR/gateway.json", () => {
  it(
    "serve --port 0 records its URL (no token); ls finds it from the default data dir or SWITCHBOARD_DATA_DIR; a clean stop removes it",
    async () => {
      const cwd = tempDir();
      // As `npm start` serves: the data dir ./.switchboard of the current directory.
      const serve = spawn(CLI[0]!, [...CLI.slice(1), "serve", "--port", "0"], {
        cwd,
        env: envWith(),
        stdio: ["ignore", "pipe", "pipe"],
      });
      onTestFinished(() => void serve.kill("SIGKILL"));
      let stdout = "";
      serve.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      const exited = new Promise<number | null>((resolve) => serve.once("exit", resolve));
      await waitFor(() => stdout.includes("switchboard listening on"), 30_000);
      const url = /listening on (\S+)/.exec(stdout)![1]!;
      const dataDir = join(cwd, ".switchboard");
      const file = join(dataDir, GATEWAY_FILE);
      const text = readFileSync(file, "utf8");
      expect(JSON.parse(text)).toEqual({ url, pid: serve.pid });
      expect(text).not.toContain(readFileSync(join(dataDir, "token"), "utf8").trim());

      const elsewhere = tempDir();
      const [here, byEnv, byFlag, flagWins] = await Promise.all([
        cliIn(cwd, ["ls", "--json"]),
        cliIn(elsewhere, ["ls", "--json"], { SWITCHBOARD_DATA_DIR: dataDir }),
        cliIn(elsewhere, ["ls", "--json", "--data-dir", dataDir]),
        // --url goes first: port 9 (discard) has nothing listening here.
        cliIn(cwd, ["ls", "--json", "--url", "http://127.0.0.1:9"]),
      ]);
      for (const r of [here, byEnv, byFlag]) expect(r, r.stderr).toMatchObject({ code: EXIT.OK, stdout: "[]\n" });
      expect(flagWins.code).toBe(EXIT.UNREACHABLE);
      expect(flagWins.stdout).toContain("(the URL from --url)");

      serve.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(existsSync(file)).toBe(false);
    },
    TEST_MS,
  );

  it("a record whose process is gone is ignored; one that is not JSON too; an unreachable one is named", async () => {
    const dir = tempDir();
    const gone = spawnSync("true").pid!;
    writeFileSync(join(dir, GATEWAY_FILE), JSON.stringify({ url: "http://127.0.0.1:1234", pid: gone }));
    expect(readGatewayFile(dir)).toBeUndefined();
    writeFileSync(join(dir, GATEWAY_FILE), JSON.stringify({ url: "http://127.0.0.1:1234", pid: process.pid }));
    chmodSync(join(dir, GATEWAY_FILE), 0o644);
    expect(readGatewayFile(dir)).toEqual({ url: "http://127.0.0.1:1234", pid: process.pid });
    // One others could have written is not taken: the commands would send the token there.
    chmodSync(join(dir, GATEWAY_FILE), 0o666);
    expect(readGatewayFile(dir)).toBeUndefined();
    chmodSync(join(dir, GATEWAY_FILE), 0o644);
    writeFileSync(join(dir, GATEWAY_FILE), "{not json");
    expect(readGatewayFile(dir)).toBeUndefined();
    // A live process (this one) that serves nothing at the recorded URL: the message says where the URL came from.
    writeFileSync(join(dir, GATEWAY_FILE), JSON.stringify({ url: "http://127.0.0.1:9", pid: process.pid }));
    const r = await cliIn(dir, ["ls", "--data-dir", dir]);
    expect(r.code).toBe(EXIT.UNREACHABLE);
    expect(r.stderr).toContain(`(the URL from ${join(dir, GATEWAY_FILE)}, which a gateway wrote)`);
  });
});
