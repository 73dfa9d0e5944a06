import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { EXIT } from "../../src/cli/exit-codes.js";
import { CLI, REPO, cli } from "./helpers.js";
import { cliCommand } from "../helpers/compiled-cli.js";
import { waitFor } from "../helpers/wait-for.js";

const SERVE_TEST_MS = 60_000;

function tempDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-serve-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The CLI from its sources, runnable from any directory. */
const CLI_ANYWHERE = cliCommand();

/**
 * Runs `switchboard serve` in `cwd` with exactly the given `SWITCHBOARD_*` variables until it exits,
 * or until it listens: then it is sent SIGTERM and the result says `listening`.
 */
async function serveUntilReady(
  args: string[],
  vars: Record<string, string>,
  cwd: string,
): Promise<{ code: number | null; listening: boolean; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith("SWITCHBOARD_")) delete env[name];
  const child = spawn(CLI_ANYWHERE[0]!, [...CLI_ANYWHERE.slice(1), "serve", ...args], {
    cwd,
    env: { ...env, ...vars },
    stdio: ["ignore", "pipe", "pipe"],
  });
  onTestFinished(() => void child.kill("SIGKILL"));
  let stdout = "";
  let stderr = "";
  let listening = false;
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
    if (!listening && stdout.includes("switchboard listening on")) {
      listening = true;
      child.kill("SIGTERM");
    }
  });
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { code, listening, stdout, stderr };
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

  /**
   * `serve --port 0` on a fresh data dir with `args` (and `nodeArgs` for node), logging at info,
   * until it listens; killed after the test.
   */
  async function serveListening(
    args: string[],
    nodeArgs: string[] = [],
    dataDir = tempDataDir(),
    options: { detached?: boolean } = {},
  ) {
    const env: NodeJS.ProcessEnv = { ...process.env, SWITCHBOARD_LOG_LEVEL: "info" };
    delete env["SWITCHBOARD_CONFIG"];
    const child = spawn(
      CLI[0]!,
      [...nodeArgs, ...CLI.slice(1), "serve", "--port", "0", "--data-dir", dataDir, ...args],
      { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"], detached: options.detached === true },
    );
    onTestFinished(() => void child.kill("SIGKILL"));
    const out = { stdout: "", stderr: "" };
    child.stdout.on("data", (d: Buffer) => (out.stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out.stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    await waitFor(() => out.stdout.includes("switchboard listening on"), 30_000, "listening");
    return { child, out, exited };
  }

  /** `serve` with `args`, until it listens; then SIGHUP, wait for the reload's log line, SIGTERM. */
  async function hupOnce(args: string[]): Promise<{ code: number | null; reloadLines: Record<string, unknown>[] }> {
    const { child, out, exited } = await serveListening(["--token", "test-token-0123456789abcdef", ...args]);
    child.kill("SIGHUP");
    await waitFor(() => out.stderr.includes("config reload"), 10_000, "the reload's log line");
    child.kill("SIGTERM");
    const code = await exited;
    const reloadLines = out.stderr
      .split("\n")
      .filter((line) => line.includes("reload"))
      .map((line) => {
        try {
          return JSON.parse(line) as Record<string, unknown>;
        } catch {
          return { notJson: line };
        }
      });
    return { code, reloadLines };
  }

  /** `POST /v1/sessions` on a gateway `serveListening` started with {@link SESSION_TOKEN}: the session's id. */
  const SESSION_TOKEN = "test-token-0123456789abcdef";
  const auth = { authorization: `Bearer ${SESSION_TOKEN}`, "content-type": "application/json" };
  async function createSession(url: string, body: Record<string, unknown>): Promise<string> {
    const res = await fetch(`${url}/v1/sessions`, { method: "POST", headers: auth, body: JSON.stringify(body) });
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: string }).id;
  }
  async function outputOf(url: string, id: string): Promise<string> {
    return (await fetch(`${url}/v1/sessions/${id}/output`, { headers: auth })).text();
  }
  async function stateOf(url: string, id: string): Promise<string> {
    return ((await (await fetch(`${url}/v1/sessions/${id}`, { headers: auth })).json()) as { state: string }).state;
  }
  function typeInto(url: string, id: string, data: string): Promise<Response> {
    return fetch(`${url}/v1/sessions/${id}/input`, { method: "POST", headers: auth, body: JSON.stringify({ data }) });
  }
  const urlOf = (stdout: string) => /switchboard listening on (\S+)/.exec(stdout)![1]!;
  const logLines = (stderr: string) =>
    stderr
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { msg: string; kept?: number; session?: string });

  // Regression (new user): Ctrl-C on `npm start` sends SIGINT twice (the terminal's and npm's);
  // the second ended the gateway mid-stop, with no "gateway stopped" line, and its sessions came
  // back `lost`; one during the exit after a clean stop ended it "killed by SIGINT". Now the stop
  // finishes, the exit code is 0, and the shell runs on under its holder for the next serve.
  it(
    "keeps a shell session running across Ctrl-C (signals repeated during the stop) and the next serve, with its output",
    async () => {
      const dataDir = tempDataDir();
      const first = await serveListening(["--token", SESSION_TOKEN], [], dataDir);
      const url = urlOf(first.out.stdout);
      const id = await createSession(url, { command: ["bash", "--norc", "--noprofile", "-i"], pty: true });
      await typeInto(url, id, "echo marker-$((6*7))\r");
      await waitFor(async () => (await outputOf(url, id)).includes("marker-42"), 10_000);
      // Signals again and again through the whole stop and the process's exit, where Node puts the
      // default actions back.
      const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM"];
      let sent = 0;
      const repeat = setInterval(() => first.child.exitCode === null && first.child.kill(signals[sent++ % 2]), 1);
      onTestFinished(() => clearInterval(repeat));
      expect(await first.exited).toBe(0);
      clearInterval(repeat);
      expect(sent).toBeGreaterThan(1);
      const lines = logLines(first.out.stderr);
      // Said once at most: a stop of a few ms may be over before a repeat is handled.
      expect(lines.filter((l) => l.msg.startsWith("already stopping")).length).toBeLessThanOrEqual(1);
      expect(lines.find((l) => l.msg.startsWith("stopping"))).toMatchObject({ kept: 1 });
      expect(lines.filter((l) => l.msg === "gateway stopped")).toHaveLength(1);
      const again = await serveListening(["--token", SESSION_TOKEN], [], dataDir);
      const url2 = urlOf(again.out.stdout);
      expect(await stateOf(url2, id)).toBe("running");
      expect(await outputOf(url2, id)).toContain("marker-42");
      await typeInto(url2, id, "echo after-$((2*3))\r");
      await waitFor(async () => (await outputOf(url2, id)).includes("after-6"), 10_000);
      expect(logLines(again.out.stderr)).toContainEqual(
        expect.objectContaining({ msg: "session adopted from its holder", session: id }),
      );
      await fetch(`${url2}/v1/sessions/${id}`, { method: "DELETE", headers: auth });
      again.child.kill("SIGTERM");
      expect(await again.exited).toBe(0);
    },
    SERVE_TEST_MS,
  );

  /** `npm start` in a process group of its own (as a terminal runs it), until it listens. */
  async function npmStart(dataDir: string) {
    const env: NodeJS.ProcessEnv = { ...process.env, SWITCHBOARD_LOG_LEVEL: "info" };
    for (const name of Object.keys(env))
      if (name.startsWith("SWITCHBOARD_") && name !== "SWITCHBOARD_LOG_LEVEL") delete env[name];
    const npm = spawn(
      "npm",
      ["start", "--silent", "--", "--port", "0", "--data-dir", dataDir, "--token", SESSION_TOKEN],
      { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"], detached: true },
    );
    onTestFinished(() => {
      if (npm.exitCode === null) process.kill(-npm.pid!, "SIGKILL");
    });
    const out = { stdout: "", stderr: "" };
    npm.stdout.on("data", (d: Buffer) => (out.stdout += d.toString()));
    npm.stderr.on("data", (d: Buffer) => (out.stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => npm.once("exit", resolve));
    await waitFor(() => out.stdout.includes("switchboard listening on"), 30_000, "listening");
    return { npm, out, exited };
  }

  it(
    "npm start, Ctrl-C, npm start again: the shell session left is still running, with its screen",
    async () => {
      const dataDir = tempDataDir();
      const first = await npmStart(dataDir);
      const url = urlOf(first.out.stdout);
      const id = await createSession(url, { command: ["bash", "--norc", "--noprofile", "-i"], pty: true });
      await typeInto(url, id, "echo left-$((20+1))\r");
      await waitFor(async () => (await outputOf(url, id)).includes("left-21"), 10_000);
      // Ctrl-C: SIGINT to the terminal's foreground process group, npm and the gateway alike.
      process.kill(-first.npm.pid!, "SIGINT");
      await first.exited;
      await waitFor(() => first.out.stderr.includes("gateway stopped"), 10_000, "the gateway's stop");
      const again = await npmStart(dataDir);
      const url2 = urlOf(again.out.stdout);
      expect(await stateOf(url2, id)).toBe("running");
      const screen = async () =>
        JSON.stringify(await (await fetch(`${url2}/v1/sessions/${id}/screen`, { headers: auth })).json());
      await waitFor(async () => (await screen()).includes("left-21"), 10_000);
      await fetch(`${url2}/v1/sessions/${id}`, { method: "DELETE", headers: auth });
      process.kill(-again.npm.pid!, "SIGINT");
      await again.exited;
    },
    SERVE_TEST_MS,
  );

  it(
    "leaves the sessions running when the gateway's whole process group is sent SIGTERM (kill -TERM -PGID)",
    async () => {
      const dataDir = tempDataDir();
      const first = await serveListening(["--token", SESSION_TOKEN], [], dataDir, { detached: true });
      const url = urlOf(first.out.stdout);
      const pipe = await createSession(url, { command: ["sh", "-c", "echo started; exec sleep 60"] });
      const pty = await createSession(url, { command: ["sh", "-c", "echo started; exec sleep 60"], pty: true });
      await waitFor(async () => (await outputOf(url, pipe)).includes("started"), 10_000);
      process.kill(-first.child.pid!, "SIGTERM");
      expect(await first.exited).toBe(0);
      const again = await serveListening(["--token", SESSION_TOKEN], [], dataDir);
      const url2 = urlOf(again.out.stdout);
      expect([await stateOf(url2, pipe), await stateOf(url2, pty)]).toEqual(["running", "running"]);
      for (const id of [pipe, pty]) await fetch(`${url2}/v1/sessions/${id}`, { method: "DELETE", headers: auth });
      expect([await stateOf(url2, pipe), await stateOf(url2, pty)]).toEqual(["exited", "exited"]);
      again.child.kill("SIGTERM");
      expect(await again.exited).toBe(0);
    },
    SERVE_TEST_MS,
  );

  // Regressions: without any config, SIGHUP said "the config was given inline" (CLI audit); and
  // every SIGHUP was reported twice on stderr, once in the log and once as a plain line.
  it(
    "says on SIGHUP that there is no config file when serve was started without one, once",
    async () => {
      const { code, reloadLines } = await hupOnce([]);
      expect(code).toBe(0);
      expect(reloadLines).toEqual([
        expect.objectContaining({
          level: 50,
          code: "CONFIG_INVALID",
          msg: "config reload refused",
          err: "no config file to reload (serve was started without --config or SWITCHBOARD_CONFIG)",
        }),
      ]);
    },
    SERVE_TEST_MS,
  );

  it(
    "logs a SIGHUP's reload of the config file once",
    async () => {
      const config = join(tempDataDir(), "switchboard.json");
      writeFileSync(config, "{}\n");
      const { code, reloadLines } = await hupOnce(["--config", config]);
      expect(code).toBe(0);
      expect(reloadLines).toEqual([expect.objectContaining({ level: 30, msg: "config reloaded", warnings: [] })]);
    },
    SERVE_TEST_MS,
  );

  // Exploratory test (new user): `npm start &` then `kill $!` ended npm and its shell and left the
  // gateway running, holding the port and the data directory (the shell did not pass SIGTERM on).
  it(
    "stops the gateway when the npm start process gets SIGTERM",
    async () => {
      const dataDir = tempDataDir();
      const env: NodeJS.ProcessEnv = { ...process.env, SWITCHBOARD_LOG_LEVEL: "silent" };
      for (const name of Object.keys(env))
        if (name.startsWith("SWITCHBOARD_") && name !== "SWITCHBOARD_LOG_LEVEL") delete env[name];
      const npm = spawn("npm", ["start", "--silent", "--", "--port", "0", "--data-dir", dataDir], {
        cwd: REPO,
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      onTestFinished(() => {
        npm.kill("SIGKILL");
        // A gateway the signal did not reach (the bug) would outlive the test: its data dir names it.
        spawnSync("pkill", ["-KILL", "-f", dataDir]);
      });
      let stdout = "";
      npm.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      const exited = new Promise<number | null>((resolve) => npm.once("exit", resolve));
      await waitFor(() => stdout.includes("switchboard listening on"), 30_000, "listening");
      const url = /switchboard listening on (\S+)/.exec(stdout)![1]!;
      npm.kill("SIGTERM");
      await exited;
      // The gateway itself is gone: its port refuses, and its data directory is free again.
      await waitFor(
        async () =>
          (await fetch(`${url}/healthz`).then(
            () => "answering",
            () => "gone",
          )) === "gone",
        10_000,
      );
      const again = await serveUntilReady(["--port", "0", "--data-dir", dataDir], {}, tempDataDir());
      expect(again).toMatchObject({ code: 0, listening: true });
    },
    SERVE_TEST_MS,
  );

  // Security audit: a plugin (or any process of the gateway's user) could signal the gateway to
  // open Node's inspector, then run code in it over 127.0.0.1.
  it(
    "does not open Node's inspector on SIGUSR1, and says it ignored the signal",
    async () => {
      // (--inspect-port=0: were it opened, the inspector would take a free port, not 9229.)
      const { child, out, exited } = await serveListening([], ["--inspect-port=127.0.0.1:0"]);
      child.kill("SIGUSR1");
      await waitFor(() => out.stderr.includes("SIGUSR1 ignored"), 10_000, "the ignored signal's log line");
      // The inspector says so on stderr when it opens; give it time to.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(out.stderr).not.toMatch(/Debugger listening/);
      const url = /switchboard listening on (\S+)/.exec(out.stdout)![1]!;
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    },
    SERVE_TEST_MS,
  );

  // Regression (operator pass): an empty SWITCHBOARD_HOST listened on every address, an empty
  // SWITCHBOARD_DATA_DIR made the current directory the data directory, an empty
  // SWITCHBOARD_CONFIG was a file named "" and an empty SWITCHBOARD_LOG_LEVEL made pino throw.
  it(
    "treats empty SWITCHBOARD_* variables as unset, and keeps the token out of a stderr that is not a terminal",
    async () => {
      const cwd = tempDataDir();
      const empty = {
        SWITCHBOARD_HOST: "",
        SWITCHBOARD_DATA_DIR: "",
        SWITCHBOARD_CONFIG: "",
        SWITCHBOARD_TOKEN: "",
        SWITCHBOARD_LOG_LEVEL: "",
      };
      const run = await serveUntilReady(["--port", "0"], empty, cwd);
      expect(run).toMatchObject({ code: 0, listening: true });
      expect(run.stdout).toMatch(/^switchboard listening on http:\/\/127\.0\.0\.1:\d+\n$/);
      // The default data directory, in the current directory; not the current directory itself.
      const tokenFile = join(cwd, ".switchboard", "token");
      const token = readFileSync(tokenFile, "utf8").trim();
      expect(token.length).toBeGreaterThanOrEqual(32);
      // Regression (operator pass): the admin token was printed to stderr, a service's log, at every start.
      expect(run.stderr).not.toContain(token);
      expect(run.stderr).toContain(
        `open the UI: ${run.stdout.slice("switchboard listening on ".length, -1)}/ with the token in ${tokenFile}\n`,
      );
      const log = run.stderr
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      // At the default level, info; and a stop says what stopped it before it waits for the sessions.
      expect(log.map((l) => l["msg"])).toEqual([
        "gateway listening",
        "gateway started",
        "stopping: ending sessions",
        "gateway stopped",
      ]);
      expect(log[2]).toMatchObject({ level: 30, signal: "SIGTERM" });
    },
    SERVE_TEST_MS,
  );

  // Regression (operator pass): `--host ""` listened on every address and `--data-dir ""` used the
  // current directory; SWITCHBOARD_LOG_LEVEL=verbose ended serve, exit 1, once the data directory
  // was claimed, with pino's "default level:verbose must be included in custom levels".
  it(
    "refuses an empty --host, --data-dir or --config and an unknown log level as command-line mistakes (exit 2)",
    async () => {
      const cwd = tempDataDir();
      // A config that cannot be read: before the fix, none of these got as far as listening.
      const unreadable = ["--port", "0", "--config", join(cwd, "missing.json")];
      const [host, dataDir, config, level, port, envPort, token] = await Promise.all([
        serveUntilReady(["--host", "", ...unreadable], {}, cwd),
        serveUntilReady(["--data-dir", "", ...unreadable], {}, cwd),
        serveUntilReady(["--port", "0", "--data-dir", join(cwd, "d"), "--config", ""], {}, cwd),
        serveUntilReady(["--data-dir", join(cwd, "d"), ...unreadable], { SWITCHBOARD_LOG_LEVEL: "verbose" }, cwd),
        serveUntilReady(["--port", "http"], {}, cwd),
        // Named where it came from (exploratory test: it said --port).
        serveUntilReady([], { SWITCHBOARD_PORT: "abc" }, cwd),
        serveUntilReady(["--port", "0", "--token", "t\u00f6ken-0123456789abcdef"], {}, cwd),
      ]);
      expect(token).toMatchObject({
        code: EXIT.USAGE,
        stderr:
          "switchboard: --token cannot be a token: it has U+00F6 at character 2: a token travels in an HTTP header, so it may hold printable ASCII only (no spaces)\n",
      });
      expect(port.stderr).toBe("switchboard: --port must be a number from 0 to 65535, not http\n");
      expect(envPort.stderr).toBe("switchboard: SWITCHBOARD_PORT must be a number from 0 to 65535, not abc\n");
      expect([port.code, envPort.code]).toEqual([EXIT.USAGE, EXIT.USAGE]);
      expect(host).toEqual({
        code: EXIT.USAGE,
        listening: false,
        stdout: "",
        stderr: "switchboard: --host is empty: give it a value, or leave it out\n",
      });
      expect(dataDir.stderr).toBe("switchboard: --data-dir is empty: give it a value, or leave it out\n");
      expect(config.stderr).toBe("switchboard: --config is empty: give it a value, or leave it out\n");
      expect(level).toEqual({
        code: EXIT.USAGE,
        listening: false,
        stdout: "",
        stderr:
          "switchboard: SWITCHBOARD_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, not verbose\n",
      });
      expect([dataDir.code, config.code]).toEqual([EXIT.USAGE, EXIT.USAGE]);
    },
    SERVE_TEST_MS,
  );

  // Regression (operator pass): an allowedOrigins entry with a trailing slash, or an allowedHosts
  // entry with a port, could never match a request: the gateway started and answered 403 or 421.
  it(
    "refuses at start allowedHosts and allowedOrigins entries that could never match, saying what to write",
    async () => {
      const cwd = tempDataDir();
      const file = join(cwd, "config.json");
      writeFileSync(
        file,
        JSON.stringify({
          allowedHosts: ["switchboard.example.com:443"],
          allowedOrigins: ["https://Switchboard.example.com/"],
        }),
      );
      const run = await serveUntilReady(["--port", "0", "--data-dir", join(cwd, "d"), "--config", file], {}, cwd);
      expect(run).toEqual({
        code: 1,
        listening: false,
        stdout: "",
        stderr: `switchboard: CONFIG_INVALID: ${file}: allowedHosts.0: a host name or [IPv6] address as in the Host header, without scheme, port or path (e.g. switchboard.example.com); allowedOrigins.0: "https://Switchboard.example.com/" is not an origin as browsers send it (scheme://host[:port]): write https://switchboard.example.com\n`,
      });
    },
    SERVE_TEST_MS,
  );
});
