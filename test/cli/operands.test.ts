import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HttpClient, SessionInfo } from "../../src/client/node.js";
import { EXIT } from "../../src/cli/exit-codes.js";
import { TEST_ENV } from "../client/helpers.js";
import { cli, sessionEnded, startCliGateway } from "./helpers.js";
import type { CliGateway } from "./helpers.js";

let cg: CliGateway;
let http: HttpClient;
let env: Record<string, string>;

beforeAll(async () => {
  cg = await startCliGateway();
  ({ http, env } = cg);
});
afterAll(() => cg.close());

const ended = (id: string): Promise<SessionInfo> => sessionEnded(http, id);

async function output(id: string): Promise<string> {
  return new TextDecoder().decode((await http.output(id)).bytes);
}

describe("the command and the text are the user's, options and all", () => {
  // Regression (CLI exploratory pass): `switchboard run echo --pty hi` ran `echo hi` in a PTY,
  // and `run sleep 5 --name x` named the session: options meant for the command were taken
  // by switchboard without a word, so another command ran than the one typed.
  it("run: options after CMD are CMD's, with or without --", async () => {
    const [echo, python, json] = await Promise.all([
      cli(["run", "echo", "--pty", "--name", "x"], env),
      cli(["run", "sh", "-c", "echo $0-$1", "a", "--json"], env),
      cli(["run", "--json", "--name", "n", "printf", "%s|", "-n", "--cwd"], env),
    ]);
    expect(echo).toMatchObject({ code: EXIT.OK, stderr: "" });
    const echoed = await ended(echo.stdout.trim());
    expect(echoed).toMatchObject({ command: ["echo", "--pty", "--name", "x"], pty: false, name: null });
    expect(await output(echoed.id)).toBe("--pty --name x\n");
    expect(python).toMatchObject({ code: EXIT.OK, stderr: "" });
    expect(await ended(python.stdout.trim())).toMatchObject({ command: ["sh", "-c", "echo $0-$1", "a", "--json"] });
    expect(await output(python.stdout.trim())).toBe("a---json\n");
    const created = JSON.parse(json.stdout) as SessionInfo;
    expect(created).toMatchObject({ name: "n", command: ["printf", "%s|", "-n", "--cwd"] });
    expect(await ended(created.id)).toMatchObject({ exitCode: 0 });
    expect(await output(created.id)).toBe("-n|--cwd|");
  });

  // Regression (CLI exploratory pass): `switchboard send ID grep -n foo` typed "grep foo" and no
  // Enter, and `send ID git commit -m x` was refused: the text's own options were read as send's.
  it("send: words of TEXT that look like options are typed as they are", async () => {
    const cat = await http.createSession({ command: ["cat"], env: TEST_ENV });
    const a = await cli(["send", cat.id, "grep", "-n", "foo", "--eof"], env);
    expect(a).toMatchObject({ code: EXIT.OK, stderr: "" });
    const b = await cli(["send", "-n", "--eof", cat.id, "git", "commit", "-m", "x"], env);
    expect(b).toMatchObject({ code: EXIT.OK, stderr: "" });
    await ended(cat.id);
    expect(await output(cat.id)).toBe("grep -n foo --eof\ngit commit -m x");
  });

  // Regression (exploratory testing): an unknown option before TEXT got Node's advice to put "a
  // positional argument ... at the end of the command after '--'", with an unbalanced quote.
  it("send, ls: an unknown option is named, with how to pass a word that starts with a dash", async () => {
    const [send, ls] = await Promise.all([
      cli(["send", "AAAAAAAAAAAAAAAAAAAAAA", "-x", "hi"], env),
      cli(["ls", "-x"], env),
    ]);
    expect(send).toMatchObject({ code: EXIT.USAGE, stdout: "" });
    expect(send.stderr).toMatch(
      /^switchboard: unknown option -x \(to pass on a word that starts with "-", put -- before it\)\n\nUsage: switchboard send /,
    );
    expect(ls).toMatchObject({ code: EXIT.USAGE, stdout: "" });
    expect(ls.stderr).toMatch(/^switchboard: unknown option -x\n\nUsage: switchboard ls /);
  });

  // Regression (CLI exploratory pass): TEXT over the gateway's 64 KiB per message was refused
  // (PAYLOAD_TOO_LARGE) instead of being typed: `send ID "$(cat notes.txt)"` failed for a 100 KB file.
  it("send: a TEXT longer than the gateway takes in one message is typed whole, in order", async () => {
    const wc = await http.createSession({ command: ["wc", "-c"], env: TEST_ENV });
    // Multi-byte characters across the pieces' edges: none may be cut.
    const text = "é✓".repeat(20_000);
    const sent = await cli(["send", "--json", "--eof", wc.id, text], env);
    expect(sent.stderr).toBe("");
    expect(sent.code).toBe(EXIT.OK);
    const bytes = Buffer.byteLength(`${text}\n`);
    expect(JSON.parse(sent.stdout)).toEqual({ ok: true, bytes, eof: true });
    expect(await ended(wc.id)).toMatchObject({ exitCode: 0 });
    expect((await output(wc.id)).trim()).toBe(String(bytes));
  });
});
