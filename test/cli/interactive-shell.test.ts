/**
 * `run bash` gets a PTY (src/cli/interactive-shell.ts): on pipes a shell shows no prompt and
 * attach a blank screen. A shell given a script or -c, or told --no-pty, keeps pipes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionInfo } from "../../src/client/index.js";
import { EXIT } from "../../src/cli/exit-codes.js";
import { isInteractiveShell } from "../../src/cli/interactive-shell.js";
import { cli, startCliGateway } from "./helpers.js";
import type { CliGateway } from "./helpers.js";

let cg: CliGateway;
beforeAll(async () => {
  cg = await startCliGateway();
});
afterAll(() => cg.close());

describe("run of an interactive shell", () => {
  it("tells a shell to type into from one given its commands", () => {
    for (const command of [["bash"], ["/bin/zsh", "-l"], ["fish", "--login"], ["sh", "-i"], ["dash"]])
      expect(isInteractiveShell(command), command.join(" ")).toBe(true);
    for (const command of [
      ["bash", "-c", "ls"],
      ["bash", "-lc", "ls"],
      ["sh", "script.sh"],
      ["sh", "-s"],
      ["sh", "-"],
      ["fish", "--command=ls"],
      ["cat"],
      ["bashful"],
    ])
      expect(isInteractiveShell(command), command.join(" ")).toBe(false);
  });

  it("runs `run bash` in a PTY and says so; --no-pty and bash -c keep pipes", async () => {
    const { env } = cg;
    const [shell, piped, script, both] = await Promise.all([
      cli(["run", "--json", "--", "bash", "--norc"], env),
      cli(["run", "--json", "--no-pty", "bash"], env),
      cli(["run", "--json", "bash", "-c", "exit 0"], env),
      cli(["run", "--pty", "--no-pty", "bash"], env),
    ]);
    const session = (r: { stdout: string }) => JSON.parse(r.stdout) as SessionInfo;
    expect(shell.code, shell.stderr).toBe(EXIT.OK);
    expect(session(shell).pty).toBe(true);
    // With --json, stdout is the session alone; the note is for people.
    expect(shell.stderr).toBe("");
    expect(session(piped).pty).toBe(false);
    expect(session(script).pty).toBe(false);
    expect(both.code).toBe(EXIT.USAGE);
    expect(both.stderr).toContain("--pty and --no-pty exclude each other");
    const plain = await cli(["run", "sh"], env);
    expect(plain.code).toBe(EXIT.OK);
    expect(plain.stderr).toBe(
      "sh is an interactive shell: running it in a PTY, as --pty does (--no-pty runs it on pipes)\n",
    );
    const id = plain.stdout.trim();
    expect((await cg.http.getSession(id)).pty).toBe(true);
    for (const r of [shell, piped, plain]) await cg.http.deleteSession(r === plain ? id : session(r).id);
  });
});
