import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpClient, connect } from "../../src/client/node.js";
import type { SessionInfo } from "../../src/client/node.js";
import { EXIT } from "../../src/cli/exit-codes.js";
import { TEST_ENV, countingText, startTestGateway } from "../client/helpers.js";
import type { TestGateway } from "../client/helpers.js";
import { cli, sessionEnded, spawnCli, startCliGateway } from "./helpers.js";
import type { CliGateway } from "./helpers.js";
import { closedPortUrl } from "../helpers/net.js";
import { waitFor } from "../helpers/wait-for.js";

/** These tests start several CLI processes (each loads the code): room for a loaded machine. */
const HEAVY_TEST_MS = 60_000;

let cg: CliGateway;
let gw: TestGateway;
let http: HttpClient;
let env: Record<string, string>;

beforeAll(async () => {
  cg = await startCliGateway();
  ({ gw, http, env } = cg);
});
afterAll(() => cg.close());

const ended = (id: string): Promise<SessionInfo> => sessionEnded(http, id);

describe("switchboard client commands", () => {
  it(
    "run prints the id, ls lists it, logs prints its output",
    async () => {
      const [plain, json, relative] = await Promise.all([
        cli(["run", "--name", "greeter", "--", "sh", "-c", "echo hello; echo oops >&2; exit 3"], env),
        cli(["run", "--json", "--env", "WHO=world", "--", "sh", "-c", 'echo "hi $WHO"'], env),
        cli(["run", "--json", "--cwd", "test", "--", "pwd"], env),
      ]);
      // A relative --cwd is from where the command runs (the repository here), not the gateway's directory.
      expect(JSON.parse(relative.stdout)).toMatchObject({ cwd: join(process.cwd(), "test") });
      expect(plain).toMatchObject({ code: 0, stderr: "" });
      const id = plain.stdout.trim();
      expect(id).toMatch(/^[A-Za-z0-9_-]{16,}$/);
      const created = JSON.parse(json.stdout) as SessionInfo;
      expect(created).toMatchObject({ kind: "terminal", state: "running", cwd: process.cwd() });
      await Promise.all([ended(id), ended(created.id)]);

      const [ls, lsJson, logs, logsSince, logsJson, lsRunning, lsEnded, lsBogus, lsJsonFirst] = await Promise.all([
        cli(["ls"], env),
        cli(["ls", "--json"], env),
        cli(["logs", id], env),
        cli(["logs", id, "--since", "3"], env),
        cli(["logs", id, "--json"], env),
        cli(["ls", "--json", "--state", "running"], env),
        cli(["ls", "--json", "--state", "exited,lost"], env),
        cli(["ls", "--state", "done"], env),
        // The common options may come before the command.
        cli(["--json", "--url", env["SWITCHBOARD_URL"]!, "ls", "--state", "exited"], { ...env, SWITCHBOARD_URL: "" }),
      ]);
      expect(ls.code).toBe(0);
      const states = (r: { stdout: string }) => (JSON.parse(r.stdout) as SessionInfo[]).map((s) => [s.id, s.state]);
      expect(lsJsonFirst).toMatchObject({ code: 0, stderr: "" });
      expect(states(lsJsonFirst)).toEqual(expect.arrayContaining([[id, "exited"]]));
      expect(states(lsRunning).every(([sid, state]) => state === "running" && sid !== id)).toBe(true);
      expect(states(lsEnded)).toEqual(
        expect.arrayContaining([
          [id, "exited"],
          [created.id, "exited"],
        ]),
      );
      expect(lsBogus).toMatchObject({
        code: EXIT.USAGE,
        stderr: expect.stringContaining("--state takes running, exited, lost"),
      });
      const header = ls.stdout.split("\n")[0]!;
      expect(header).toMatch(/^ID\s+NAME\s+KIND\s+STATE\s+PID\s+EXIT\s+AGE\s+COMMAND$/);
      const row = ls.stdout.split("\n").find((l) => l.startsWith(id))!;
      expect(row).toMatch(/greeter\s+terminal\s+exited\s+\d+\s+3\s+\d+s\s+sh -c 'echo hello; echo oops >&2; exit 3'$/);
      expect((JSON.parse(lsJson.stdout) as SessionInfo[]).map((s) => s.id)).toEqual(
        expect.arrayContaining([id, created.id]),
      );
      // stdout and stderr are two pipes: the log has them in the order the gateway read them,
      // which for two writes in a row may be either.
      expect(logs).toMatchObject({ code: 0, stderr: "" });
      expect(["hello\noops\n", "oops\nhello\n"]).toContain(logs.stdout);
      expect(logsSince.stdout).toBe(logs.stdout.slice(3));
      const events = logsJson.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { seq: number; type: string });
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
      expect(events.at(-1)).toMatchObject({ type: "exit", exitCode: 3 });
      expect(new TextDecoder().decode((await http.output(created.id)).bytes)).toBe("hi world\n");
    },
    HEAVY_TEST_MS,
  );

  it(
    "logs -f follows the output until the session ends, with no byte lost or repeated",
    async () => {
      // Half the lines before logs -f follows live, the rest in bursts after: the test releases
      // them once it is following, so the switch from history to live always falls mid-stream.
      const script =
        `const lines=(a,b)=>{let s="";for(let i=a;i<=b;i++)s+=i+"\\n";return s};` +
        `process.stdout.write(lines(1,1500));` +
        `process.stdin.once("data",()=>{let i=1500;const t=setInterval(()=>{` +
        `process.stdout.write(lines(i+1,i+30));i+=30;if(i>=3000){clearInterval(t);process.stdin.destroy()}},2)})`;
      const session = await http.createSession({ command: [process.execPath, "-e", script], env: TEST_ENV });
      const run = spawnCli(["logs", "-f", session.id], env);
      try {
        await waitFor(() => run.stdout().endsWith("\n1500\n") === true, 15_000);
        await waitFor(async () => (await http.getSession(session.id)).viewers === 1, 15_000);
        await http.input(session.id, "go\n");
        expect(await run.exit).toBe(0);
      } finally {
        run.child.kill();
      }
      expect(run.stdout()).toBe(countingText(3000));
    },
    HEAVY_TEST_MS,
  );

  // Regression (exploratory testing): `ls a extra` ignored the argument, `run --attach --json` printed no JSON.
  it("refuses arguments a command does not take, and --attach with --json, as command-line mistakes", async () => {
    const results = await Promise.all([
      cli(["ls", "some-name", "extra"], env),
      cli(["kill", "AAAAAAAAAAAAAAAAAAAAAA", "extra"], env),
      cli(["logs", "AAAAAAAAAAAAAAAAAAAAAA", "again"], env),
      cli(["run", "--attach", "--json", "--", "true"], env),
    ]);
    for (const r of results) expect(r.code).toBe(EXIT.USAGE);
    expect(results[0]!.stderr).toContain('unexpected argument "extra"');
    expect(results[1]!.stderr).toContain('unexpected argument "extra"');
    expect(results[2]!.stderr).toContain('unexpected argument "again"');
    // With --json the mistake itself is reported as JSON, on stdout.
    expect(results[3]!.stdout).toContain("--attach and --json exclude each other");
  });

  it(
    "logs -f says a session was lost and exits 1, raw and in JSON (regression: exit 0 without a word)",
    async () => {
      // Raw and JSON side by side: two independent followers of two sessions.
      const followLost = async (json: boolean) => {
        const s = await http.createSession({ kind: "stream" });
        await http.appendEvents(s.id, { type: "output", data: { data: "partial\n" } });
        const run = spawnCli(["logs", "-f", ...(json ? ["--json"] : []), s.id], env);
        try {
          await waitFor(() => run.stdout().includes("partial") === true, 15_000);
          await waitFor(async () => (await http.getSession(s.id)).viewers === 1, 15_000);
          // What the gateway does to a session whose process it lost (a crash under it).
          gw.gateway.core.sessions.get(s.id)!.markLost("the producer went away");
          expect(await run.exit).toBe(EXIT.FAILURE);
        } finally {
          run.child.kill();
        }
        const [stdout, stderr] = [run.stdout(), run.stderr()];
        if (json) expect(stdout.trim().split("\n").at(-1)).toContain('"type":"lost"');
        else expect(stderr).toContain(`session ${s.id} was lost`);
      };
      await Promise.all([followLost(false), followLost(true)]);
    },
    HEAVY_TEST_MS,
  );

  it(
    "logs into a reader that stops early (| head) stops quietly with 141 (regression: an EPIPE stack trace)",
    async () => {
      const session = await http.createSession({ command: ["seq", "1", "200000"] });
      await ended(session.id);
      const readFirstChunk = async (args: string[]) => {
        const run = spawnCli(args, env);
        // Read the first chunk, then go away, as `head -1` does.
        run.child.stdout.once("data", () => run.child.stdout.destroy());
        const result = { code: await run.exit, stdout: run.stdout().split("\n")[0]!, stderr: run.stderr() };
        expect(result.stderr, args.join(" ")).toBe("");
        expect(result.code, args.join(" ")).toBe(EXIT.BROKEN_PIPE);
        expect(result.stdout.length, args.join(" ")).toBeGreaterThan(0);
      };
      await Promise.all([readFirstChunk(["logs", session.id]), readFirstChunk(["logs", "--json", session.id])]);
    },
    HEAVY_TEST_MS,
  );

  it(
    "send types a line (Enter as CR on a PTY, LF on a pipe), signal and kill end processes",
    async () => {
      const pipe = await http.createSession({ command: ["sh", "-c", "read a; echo pipe:$a"], env: TEST_ENV });
      const pty = await http.createSession({ command: ["sh", "-c", "read a; echo pty:$a"], pty: true, env: TEST_ENV });
      const sleeper = await http.createSession({ command: ["sleep", "30"], env: TEST_ENV });
      const victim = await http.createSession({ command: ["sleep", "30"], env: TEST_ENV });
      const [sendPipe, sendPty, sig, kill] = await Promise.all([
        cli(["send", pipe.id, "one", "two"], env),
        cli(["send", "--json", pty.id, "three"], env),
        cli(["signal", sleeper.id, "term"], env),
        cli(["kill", victim.id], env),
      ]);
      expect(sendPipe).toEqual({ code: 0, stdout: "", stderr: "" });
      expect(JSON.parse(sendPty.stdout)).toEqual({ ok: true, bytes: 6 });
      expect(sig.code).toBe(0);
      expect(kill).toMatchObject({ code: 0, stdout: `${victim.id} was killed by SIGTERM\n` });
      await Promise.all([ended(pipe.id), ended(pty.id)]);
      expect(new TextDecoder().decode((await http.output(pipe.id)).bytes)).toBe("pipe:one two\n");
      expect(new TextDecoder().decode((await http.output(pty.id)).bytes)).toContain("pty:three");
      expect(await ended(sleeper.id)).toMatchObject({ state: "exited", signal: "SIGTERM" });
    },
    HEAVY_TEST_MS,
  );

  it(
    "run --agent starts an agent session; abort stops its run (--all: and the queue), and says when nothing runs",
    async () => {
      const [created, json, withCommand, withPty] = await Promise.all([
        cli(["run", "--agent", "echo", "--name", "helper"], env),
        cli(["run", "--json", "--agent", "echo"], env),
        cli(["run", "--agent", "echo", "--", "ls"], env),
        cli(["run", "--agent", "echo", "--pty"], env),
      ]);
      expect(created).toMatchObject({ code: 0, stderr: "" });
      const id = created.stdout.trim();
      expect(await http.getSession(id)).toMatchObject({
        kind: "agent",
        agent: "echo",
        name: "helper",
        cwd: process.cwd(),
      });
      expect(JSON.parse(json.stdout)).toMatchObject({ kind: "agent", agent: "echo", state: "running" });
      expect(withCommand).toMatchObject({
        code: EXIT.USAGE,
        stderr: expect.stringContaining("--agent takes no command (ls...)"),
      });
      expect(withPty).toMatchObject({
        code: EXIT.USAGE,
        stderr: expect.stringContaining("--agent and --pty exclude each other"),
      });

      // A run that waits for a permission answer, and one queued behind it.
      const first = (await http.prompt(id, "/permission go")).runId;
      await http.prompt(id, "next");
      const aborted = await cli(["abort", id, "--all"], env);
      expect(aborted).toMatchObject({ code: 0, stdout: `${first}\n`, stderr: "dropped 1 queued prompt\n" });
      const nothing = await cli(["abort", id], env);
      expect(nothing.code).toBe(EXIT.FAILURE);
      expect(nothing.stderr).toMatch(/RUN_NOT_ACTIVE/);
      const ends = (await http.events(id, { types: ["chat.aborted"] })).events;
      expect(ends).toHaveLength(2);
      await Promise.all([http.deleteSession(id), http.deleteSession(JSON.parse(json.stdout).id as string)]);
    },
    HEAVY_TEST_MS,
  );

  it(
    "prompt queues a prompt on an agent session and prints the run id; other kinds are refused",
    async () => {
      const agent = await http.createSession({ kind: "agent", agent: { adapter: "echo" } });
      const session = await http.createSession({ command: ["sleep", "30"], env: TEST_ENV });
      const [ok, refused] = await Promise.all([
        cli(["prompt", agent.id, "hello", "there"], env),
        cli(["prompt", session.id, "hi"], env),
      ]);
      expect(ok.code).toBe(0);
      const runId = ok.stdout.trim();
      await waitFor(async () => {
        expect((await http.events(agent.id, { types: ["chat.final"] })).events).toEqual([
          expect.objectContaining({ type: "chat.final", runId }),
        ]);
        return true;
      }, 10_000);
      expect(refused.code).toBe(EXIT.FAILURE);
      expect(refused.stderr).toMatch(/WRONG_SESSION_KIND/);
      await Promise.all([http.deleteSession(session.id), http.deleteSession(agent.id)]);
    },
    HEAVY_TEST_MS,
  );

  it(
    "prompt --image is refused by an agent that takes no images, sending nothing; --link goes with the text",
    async () => {
      const agent = await http.createSession({ kind: "agent", agent: { adapter: "echo" } });
      const dir = mkdtempSync(join(tmpdir(), "sb-cli-image-"));
      const png = join(dir, "shot.png");
      writeFileSync(png, Buffer.from("89504e470d0a1a0a", "hex"));
      const refused = await cli(["prompt", agent.id, "--image", png, "what", "is", "this"], env);
      expect(refused.code).toBe(EXIT.FAILURE);
      expect(refused.stderr).toContain(
        "switchboard: content[1] is an image, which the agent does not take in a prompt: it takes text and resource links only (its ACP promptCapabilities); nothing was sent to it (UNSUPPORTED_CONTENT)",
      );
      const ok = await cli(["prompt", agent.id, "--link", "https://example.com/bug/7", "see"], env);
      expect(ok.code, ok.stderr).toBe(0);
      await waitFor(async () => {
        const queued = (await http.events(agent.id, { types: ["run.queued"] })).events;
        expect(queued).toEqual([
          expect.objectContaining({
            text: "see\n\nhttps://example.com/bug/7",
            content: [
              { type: "text", text: "see" },
              { type: "resource_link", uri: "https://example.com/bug/7", name: "7" },
            ],
          }),
        ]);
        return true;
      }, 10_000);
      rmSync(dir, { recursive: true, force: true });
      await http.deleteSession(agent.id);
    },
    HEAVY_TEST_MS,
  );

  it(
    "prompt --wait prints the answer as it streams and exits with how the run ended; logs shows the conversation",
    async () => {
      const agent = await http.createSession({ kind: "agent", agent: { adapter: "echo" } });
      // One at a time: the second must not start before the first is in the log.
      const ok = await cli(["prompt", "-w", agent.id, "/tool", "hello", "there"], env);
      const failed = await cli(["prompt", "--wait", agent.id, "/fail", "no luck"], env);
      // stdout is exactly the answer; the tool call is told on stderr.
      expect(ok).toMatchObject({ code: 0, stdout: "hello there\n" });
      expect(ok.stderr).toMatch(/^\[tool\] .+ \((pending|in_progress)\)\n(.*\n)*\[tool\] .+ \(completed\)\n$/);
      expect(failed.code).toBe(EXIT.FAILURE);
      expect(failed.stderr).toMatch(/\[error\] \w+: /);

      const logs = await cli(["logs", agent.id], env);
      expect(logs.code).toBe(0);
      const lines = logs.stdout.split("\n");
      expect(lines[0]).toBe("> /tool hello there");
      expect(lines).toContain("hello there");
      expect(lines).toContain("> /fail no luck");
      expect(lines.at(-2)).toMatch(/^\[error\] /);
      await http.deleteSession(agent.id);
    },
    HEAVY_TEST_MS,
  );

  it(
    "mode and config list an ACP agent's modes and settings and switch them; one it does not offer is named",
    async () => {
      const agent = fileURLToPath(new URL("../agents/fixtures/scripted-agent.mjs", import.meta.url));
      const { id } = await http.createSession({
        kind: "agent",
        agent: { adapter: "acp", command: [process.execPath, agent, "--state"] },
      });
      // The agent starts with the first choice: its modes come with its session.
      expect((await cli(["mode", id, "code"], env)).stdout).toBe("code\n");
      expect((await cli(["mode", id], env)).stdout).toBe("  ask\tAsk\n* code\tCode - Writes code\n");
      expect(await cli(["config", id, "model", "fast-1"], env)).toEqual({
        code: 0,
        stdout: "model fast-1\n",
        stderr: "",
      });
      expect((await cli(["config", id, "think", "false"], env)).stdout).toBe("think false\n");
      expect((await cli(["config", id], env)).stdout).toBe(
        "model\tModel: slow-1 *fast-1\nthink\tThink hard: true *false\n",
      );
      const refused = await cli(["mode", id, "plan"], env);
      expect(refused.code).toBe(EXIT.FAILURE);
      expect(refused.stderr).toBe(
        'switchboard: the agent offers no mode "plan"; its modes: ask, code (INVALID_OPTION)\n',
      );
      await http.deleteSession(id);
    },
    HEAVY_TEST_MS,
  );

  // Exploratory test: "queued behind N runs" did not count the active run (nothing was said when
  // only the active run was ahead), nothing in the CLI could answer a permission request, and
  // Ctrl-C on prompt -w left people thinking it had stopped the agent.
  it(
    "prompt -w says what its run waits behind, permission answers a request, and Ctrl-C says the run goes on",
    async () => {
      const agent = await http.createSession({ kind: "agent", agent: { adapter: "echo" } });
      const first = spawnCli(["prompt", "-w", agent.id, "/permission", "edit"], env);
      const line = /\[permission\] .*; to answer: switchboard permission (\S+) (\S+) allow\|reject\n/;
      await waitFor(() => line.exec(first.stderr()) !== null, 15_000);
      const [, sessionId, requestId] = line.exec(first.stderr())!;
      expect(sessionId).toBe(agent.id);

      const second = spawnCli(["prompt", "-w", agent.id, "second"], env);
      await waitFor(
        () => second.stderr() === "[queued behind 1 run; the active one waits for a permission answer]\n",
        15_000,
      );
      const third = spawnCli(["prompt", "-w", agent.id, "third"], env);
      const behindTwo = "[queued behind 2 runs; the active one waits for a permission answer]\n";
      await waitFor(() => third.stderr() === behindTwo, 15_000);
      third.child.kill("SIGINT");
      expect(await third.exit).toBe(EXIT.INTERRUPTED);
      expect(third.stderr()).toBe(`${behindTwo}the run goes on; switchboard abort ${agent.id} stops it\n`);

      const [answered, again, usage] = await Promise.all([
        cli(["permission", agent.id, requestId!, "allow"], env),
        cli(["permission", agent.id, "no-such-request", "allow"], env),
        cli(["permission", agent.id, requestId!], env),
      ]);
      expect(answered).toEqual({ code: 0, stdout: "", stderr: "" });
      expect(again.code).toBe(EXIT.FAILURE);
      expect(again.stderr).toMatch(/PERMISSION_REQUEST_NOT_FOUND/);
      expect(usage.code).toBe(EXIT.USAGE);
      expect(usage.stderr).toMatch(/missing the option id/);
      expect(await first.exit).toBe(0);
      expect(first.stdout()).toBe("Allowed. edit\n");
      expect(first.stderr()).toMatch(/\n\[permission\] Allow \(by \w+\)\n/);
      expect(await second.exit).toBe(0);
      expect(second.stdout()).toBe("second\n");
      await http.deleteSession(agent.id);
    },
    HEAVY_TEST_MS,
  );

  it(
    "gives clear errors and distinct exit codes",
    async () => {
      const cat = await http.createSession({ command: ["cat"], env: TEST_ENV });
      const done = await http.createSession({ command: ["true"], env: TEST_ENV });
      await ended(done.id);
      const holder = await connect({ url: gw.url, token: gw.token });
      await holder.control(cat.id, "acquire");
      const dataDir = mkdtempSync(join(tmpdir(), "switchboard-cli-token-"));
      writeFileSync(join(dataDir, "token"), `${gw.token}\n`);
      const noToken = {
        SWITCHBOARD_URL: gw.url,
        SWITCHBOARD_TOKEN: "",
        SWITCHBOARD_DATA_DIR: env["SWITCHBOARD_DATA_DIR"]!,
      };
      const deadUrl = await closedPortUrl();
      try {
        const [missing, badToken, none, fromFile, unreachable, usage, held, notRunning, badSignal, jsonError, empty] =
          await Promise.all([
            cli(["logs", "no-such-session"], env),
            cli(["ls", "--token", "wrong-token-0123456789"], env),
            cli(["ls"], noToken),
            cli(["ls", "--data-dir", dataDir, "--json"], noToken),
            cli(["ls", "--url", deadUrl], env),
            cli(["attach"], env),
            cli(["send", cat.id, "x"], env),
            cli(["send", done.id, "x"], env),
            cli(["signal", cat.id, "NOPE"], env),
            cli(["kill", "no-such-session", "--json"], env),
            cli(["ls", "--token", ""], env),
          ]);
        expect(missing.code).toBe(EXIT.NOT_FOUND);
        expect(missing.stderr).toBe(
          'switchboard: no session no-such-session (SESSION_NOT_FOUND); "switchboard ls" lists sessions\n',
        );
        expect(badToken.code).toBe(EXIT.AUTH);
        expect(badToken.stderr).toMatch(/refused the token from --token \(UNAUTHORIZED\)/);
        // An empty --token (an unset variable in `--token "$T"`) is a command-line mistake, not a refused token.
        expect(empty.code).toBe(EXIT.USAGE);
        expect(empty.stderr).toMatch(/--token is empty/);
        expect(none.code).toBe(EXIT.AUTH);
        expect(none.stderr).toMatch(/no token: pass --token, set SWITCHBOARD_TOKEN/);
        expect(fromFile.code).toBe(0);
        expect(JSON.parse(fromFile.stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ id: cat.id })]));
        expect(unreachable.code).toBe(EXIT.UNREACHABLE);
        expect(unreachable.stderr).toMatch(
          /cannot reach the gateway at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED.*switchboard serve/,
        );
        expect(usage.code).toBe(EXIT.USAGE);
        expect(usage.stderr).toMatch(/missing the session id[\s\S]*Usage: switchboard attach/);
        expect(held.code).toBe(EXIT.CONTROL_HELD);
        expect(held.stderr).toMatch(/held by another connection of admin.*CONTROL_HELD/);
        expect(notRunning.code).toBe(EXIT.NOT_RUNNING);
        // A mistake on the command line, said before anything is sent (it was exit 1, VALIDATION_FAILED).
        expect(badSignal.code).toBe(EXIT.USAGE);
        expect(badSignal.stderr).toMatch(/^switchboard: SIGNAL is a name, one of INT, TERM, .* not "NOPE"\n/);
        expect(jsonError.code).toBe(EXIT.NOT_FOUND);
        expect(JSON.parse(jsonError.stdout)).toEqual({
          error: { code: "SESSION_NOT_FOUND", message: expect.any(String), exitCode: EXIT.NOT_FOUND },
        });
      } finally {
        holder.close();
        rmSync(dataDir, { recursive: true, force: true });
        await http.deleteSession(cat.id);
      }
    },
    HEAVY_TEST_MS,
  );

  it(
    "takes session ids that start with a dash",
    async () => {
      const result = await cli(["logs", "-Abcdefghijklmnopqrstu"], env);
      expect(result.code).toBe(EXIT.NOT_FOUND);
      expect(result.stderr).toMatch(/no session -Abcdefghijklmnopqrstu/);
    },
    HEAVY_TEST_MS,
  );

  it(
    "send --eof ends a pipe session's input, with or without text",
    async () => {
      // Two sessions side by side: text then --eof with text, and text then --eof alone.
      const sort = await http.createSession({ command: ["sort"], env: TEST_ENV });
      const wc = await http.createSession({ command: ["wc", "-c"], env: TEST_ENV });
      const sortDone = (async () => {
        expect((await cli(["send", sort.id, "pear"], env)).code).toBe(0);
        const last = await cli(["send", "--json", "--eof", sort.id, "apple"], env);
        expect(JSON.parse(last.stdout)).toEqual({ ok: true, bytes: 6, eof: true });
        expect(await ended(sort.id)).toMatchObject({ state: "exited", exitCode: 0 });
        expect(new TextDecoder().decode((await http.output(sort.id)).bytes)).toBe("apple\npear\n");
      })();
      const wcDone = (async () => {
        expect((await cli(["send", "-n", wc.id, "abc"], env)).code).toBe(0);
        expect((await cli(["send", "--eof", wc.id], env)).code).toBe(0);
        await ended(wc.id);
        expect(new TextDecoder().decode((await http.output(wc.id)).bytes).trim()).toBe("3");
      })();
      // Neither text nor --eof: a mistake, refused before anything is sent.
      const [nothing] = await Promise.all([cli(["send", wc.id], env), sortDone, wcDone]);
      expect(nothing).toMatchObject({ code: EXIT.USAGE, stderr: expect.stringContaining("missing TEXT (or --eof)") });
    },
    HEAVY_TEST_MS,
  );

  it(
    "rm removes ended sessions, refuses running ones without -f, and --ended clears what has ended",
    async () => {
      // A gateway of its own: rm --ended would take the other tests' sessions.
      const VIEWER = "viewer-token-vera-0123456789abcdef";
      const own = await startTestGateway({
        config: { auth: { tokens: [{ name: "vera", token: VIEWER, role: "viewer", sessions: ["*"] }] } },
      });
      try {
        const ownHttp = new HttpClient({ url: own.url, token: own.token });
        const ownEnv = { ...env, SWITCHBOARD_URL: own.url, SWITCHBOARD_TOKEN: own.token };
        const endedOne = await ownHttp.createSession({ command: ["true"], name: "done", env: TEST_ENV });
        const endedTwo = await ownHttp.createSession({ command: ["true"], env: TEST_ENV });
        const endedThree = await ownHttp.createSession({ command: ["true"], env: TEST_ENV });
        const sleeper = await ownHttp.createSession({ command: ["sleep", "300"], env: TEST_ENV });
        for (const s of [endedOne, endedTwo, endedThree]) {
          await waitFor(async () => (await ownHttp.getSession(s.id)).state === "exited", 10_000);
        }

        const one = await cli(["rm", endedOne.id, sleeper.id], ownEnv);
        expect(one.code).toBe(EXIT.FAILURE);
        expect(one.stdout).toBe(`removed ${endedOne.id} (done)\n`);
        expect(one.stderr).toContain(`session ${sleeper.id} is running`);
        expect(one.stderr).toContain("SESSION_RUNNING");
        expect((await ownHttp.getSession(sleeper.id)).state).toBe("running");

        // Runs that remove nothing, side by side.
        const [refusedJson, missing, usage, badAge, none, watcher] = await Promise.all([
          cli(["rm", "--json", sleeper.id], ownEnv),
          cli(["rm", endedOne.id], ownEnv),
          cli(["rm", "--older-than", "1d", endedTwo.id], ownEnv),
          cli(["rm", "--ended", "--older-than", "soon"], ownEnv),
          // Nothing ended a day ago.
          cli(["rm", "--ended", "--older-than", "1d"], ownEnv),
          cli(["rm", "--ended"], { ...ownEnv, SWITCHBOARD_TOKEN: VIEWER }),
        ]);
        // With --json, each refusal names its session, with its code and exit code as other --json errors do.
        expect(refusedJson.code).toBe(EXIT.FAILURE);
        expect(JSON.parse(refusedJson.stdout)).toEqual({
          removed: [],
          skipped: 0,
          errors: [{ id: sleeper.id, code: "SESSION_RUNNING", message: expect.any(String), exitCode: EXIT.FAILURE }],
        });
        expect(missing.code).toBe(EXIT.NOT_FOUND);
        expect(usage.code).toBe(EXIT.USAGE);
        expect(badAge.code).toBe(EXIT.USAGE);
        expect(badAge.stderr).toContain("like 90s, 30m, 12h or 7d");
        expect(none).toMatchObject({ code: 0, stdout: "", stderr: "no ended sessions to remove\n" });
        // A viewer sees the ended sessions but may remove none: they are left, and that is no error.
        expect(watcher).toMatchObject({
          code: 0,
          stdout: "",
          stderr: "left 2 ended session(s) this token may only watch\n",
        });

        const all = await cli(["rm", "--ended", "--json"], ownEnv);
        expect(all.code).toBe(0);
        const out = JSON.parse(all.stdout) as { removed: SessionInfo[]; skipped: number; errors: unknown[] };
        expect(out.skipped).toBe(0);
        expect(out.removed.map((s) => s.id).sort()).toEqual([endedTwo.id, endedThree.id].sort());
        expect(out.errors).toEqual([]);

        const forced = await cli(["rm", "-f", sleeper.id], ownEnv);
        expect(forced).toMatchObject({ code: 0, stdout: `removed ${sleeper.id}\n` });
        expect(await ownHttp.listSessions()).toEqual([]);
        expect(await cli(["ls"], ownEnv)).toMatchObject({
          code: 0,
          stdout: "",
          stderr: 'no sessions; "switchboard run -- CMD" starts one\n',
        });
      } finally {
        await own.close();
      }
    },
    HEAVY_TEST_MS,
  );

  // Regression (CLI audit): attach said "connection lost; reconnecting" and then blamed a proxy
  // (BAD_RESPONSE) because it ignored the gateway's own refusal of the upgrade.
  it(
    "attach past the end of the output prints the gateway's refusal, without a reconnect notice",
    async () => {
      const session = await http.createSession({ command: ["printf", "abc"], env: TEST_ENV });
      await ended(session.id);
      const result = await cli(["attach", "--since", "99999", session.id], env);
      expect(result).toEqual({
        code: EXIT.FAILURE,
        stdout: "",
        stderr: "switchboard: since=99999 is past the end of the output (3 bytes) (BAD_REQUEST)\n",
      });
    },
    HEAVY_TEST_MS,
  );

  // Regression (CLI audit): usage errors printed nothing on stdout with --json, a bad --url was
  // INTERNAL (exit 1), and JSON messages repeated the code.
  it(
    "with --json, command-line mistakes and refusals are JSON errors with their exit codes",
    async () => {
      const done = await http.createSession({ command: ["true"], env: TEST_ENV });
      await ended(done.id);
      const [
        unknownOption,
        noCommand,
        missingId,
        badUrl,
        badUrlText,
        badEnvUrl,
        refused,
        withPassword,
        mcpWithPassword,
        ftpWithPassword,
        badPortWithPassword,
      ] = await Promise.all([
        cli(["ls", "--bogus", "--json"], env),
        cli(["--json"], env),
        cli(["attach", "--json"], env),
        cli(["ls", "--json", "--url", "notaurl"], env),
        cli(["ls", "--url", "notaurl"], env),
        cli(["ls", "--json"], { ...env, SWITCHBOARD_URL: "ftp://example.com" }),
        cli(["send", "--json", done.id, "x"], env),
        // A URL with a password: refused up front, and the password is not repeated anywhere.
        cli(["ls", "--json", "--url", "http://user:hunter2pass@127.0.0.1:9"], env),
        cli(["mcp"], { ...env, SWITCHBOARD_URL: "http://user:hunter2pass@127.0.0.1:9" }),
        // ... also when the URL is wrong in another way first (exploratory test: it was quoted whole).
        cli(["ls", "--url", "ftp://user:hunter2pass@x"], env),
        cli(["ls", "--json", "--url", "http://u:hunter2pass@127.0.0.1:99999"], env),
      ]);
      const usage = (message: string | RegExp) => ({
        error: {
          code: "USAGE",
          message: typeof message === "string" ? message : expect.stringMatching(message),
          exitCode: EXIT.USAGE,
        },
      });
      for (const r of [unknownOption, noCommand, missingId, badUrl, badEnvUrl]) {
        expect(r.code).toBe(EXIT.USAGE);
        expect(r.stderr).toBe("");
      }
      // Regression (exploratory testing): Node's wording advised `ls` to take "a positional argument
      // ... after '--'", with an unbalanced quote.
      expect(JSON.parse(unknownOption.stdout)).toEqual(usage("unknown option --bogus"));
      expect(JSON.parse(noCommand.stdout)).toEqual(usage("missing the command (before --json)"));
      expect(JSON.parse(missingId.stdout)).toEqual(usage("missing the session id or name"));
      expect(JSON.parse(badUrl.stdout)).toEqual(
        usage(`--url must be the gateway's URL, like http://127.0.0.1:7317 (http, https, ws or wss), not "notaurl"`),
      );
      expect(JSON.parse(badEnvUrl.stdout)).toEqual(usage(/^SWITCHBOARD_URL must be the gateway's URL, like http:/));
      expect(badUrlText).toMatchObject({ code: EXIT.USAGE, stdout: "" });
      expect(badUrlText.stderr).toMatch(
        /^switchboard: --url must be the gateway's URL, like http:\/\/127\.0\.0\.1:7317 .*\n\nUsage: switchboard ls/,
      );
      expect(JSON.parse(withPassword.stdout)).toEqual(usage(/^--url must not carry a user name or password/));
      expect(mcpWithPassword.code).toBe(EXIT.USAGE);
      expect(mcpWithPassword.stderr).toMatch(/SWITCHBOARD_URL must not carry a user name or password/);
      expect(ftpWithPassword.stderr).toMatch(
        /^switchboard: --url must be the gateway's URL, .* not "ftp:\/\/\*\*\*@x"\n/,
      );
      expect(JSON.parse(badPortWithPassword.stdout)).toEqual(usage(/not "http:\/\/\*\*\*@127\.0\.0\.1:99999"$/));
      for (const r of [withPassword, mcpWithPassword, ftpWithPassword, badPortWithPassword])
        expect(r.stdout + r.stderr).not.toContain("hunter2pass");
      expect(refused.code).toBe(EXIT.NOT_RUNNING);
      const { error } = JSON.parse(refused.stdout) as { error: { code: string; message: string } };
      expect(error.code).toBe("SESSION_NOT_RUNNING");
      expect(error.message).toMatch(/\S/);
      expect(error.message).not.toContain("SESSION_NOT_RUNNING");
    },
    HEAVY_TEST_MS,
  );

  // Regression (CLI audit): kill said "exited with code ?" and attach "was lost" (exit 1) for an
  // agent session that ended without an exit code.
  it(
    "kill and attach say an agent session ended, and attach exits 0",
    async () => {
      const agent = await http.createSession({ kind: "agent", agent: { adapter: "echo" } });
      const kill = await cli(["kill", agent.id], env);
      expect(kill).toEqual({ code: 0, stdout: `${agent.id} ended\n`, stderr: "" });
      const attached = await cli(["attach", agent.id], env);
      expect(attached).toEqual({ code: 0, stdout: "", stderr: `[session ${agent.id} ended]\n` });
    },
    HEAVY_TEST_MS,
  );

  // Regression (CLI audit): ls printed commands raw; escape sequences acted on the terminal.
  it(
    "ls escapes control characters in what sessions were started with, and keeps the table aligned",
    async () => {
      const own = await startTestGateway();
      try {
        const ownHttp = new HttpClient({ url: own.url, token: own.token });
        const evil = await ownHttp.createSession({
          command: ["true", "evil\x1b]0;pwned\x07\x1b[2J", "two\nlines\x9b"],
          name: "plain",
          env: TEST_ENV,
        });
        const other = await ownHttp.createSession({ command: ["true"], name: "a-longer-name", env: TEST_ENV });
        for (const s of [evil, other]) {
          await waitFor(async () => (await ownHttp.getSession(s.id)).state === "exited", 10_000);
        }
        const ls = await cli(["ls"], { ...env, SWITCHBOARD_URL: own.url, SWITCHBOARD_TOKEN: own.token });
        expect(ls.code).toBe(0);
        // eslint-disable-next-line no-control-regex -- no control character may reach the terminal
        expect(ls.stdout.replace(/\n/g, "")).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
        const lines = ls.stdout.trimEnd().split("\n");
        expect(lines).toHaveLength(3);
        expect(lines[1]).toContain("true 'evil\\e]0;pwned\\x07\\e[2J' 'two\\nlines\\x9b'");
        // Every row starts its columns where the header does.
        const starts = (line: string) => [...line.matchAll(/(?<=^|\s{2})\S/g)].map((m) => m.index);
        expect(starts(lines[1]!)).toEqual(starts(lines[0]!));
        expect(starts(lines[2]!)).toEqual(starts(lines[0]!));
      } finally {
        await own.close();
      }
    },
    HEAVY_TEST_MS,
  );
});
