import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit-codes.js";
import { readerWatchAvailable } from "../../src/cli/reader-gone.js";
import { CLI, REPO, shellQuote, spawnCli, startCliGateway } from "./helpers.js";
import type { CliGateway } from "./helpers.js";
import { waitFor } from "../helpers/wait-for.js";

let cg: CliGateway;

beforeAll(async () => {
  cg = await startCliGateway();
});
afterAll(() => cg.close());

describe("a follower stopped by a signal", () => {
  // Regression (exploratory testing): `logs -f` ended by SIGTERM (`kill`, a service manager)
  // exited 130, the code of Ctrl-C; attach, and shells, say 128 + 15 for it.
  it.each([
    ["SIGINT", EXIT.INTERRUPTED],
    ["SIGTERM", EXIT.TERMINATED],
  ] as const)(
    "logs -f exits 128 + the signal's number on %s, and the session keeps running",
    async (signal, code) => {
      const session = await cg.http.createSession({ command: ["sh", "-c", "echo started; exec sleep 60"] });
      const run = spawnCli(["logs", "-f", session.id], cg.env);
      try {
        await waitFor(() => run.stdout() === "started\n", 20_000);
        await waitFor(async () => (await cg.http.getSession(session.id)).viewers === 1, 20_000);
        run.child.kill(signal);
        expect(await run.exit).toBe(code);
        expect(run.stderr()).toBe("");
        expect((await cg.http.getSession(session.id)).state).toBe("running");
      } finally {
        run.child.kill("SIGKILL");
        await cg.http.deleteSession(session.id);
      }
    },
    40_000,
  );
});

describe("a follower whose output's reader went away", () => {
  it("readerWatchAvailable: native/fd_hangup.c is built (npm run build)", () => {
    expect(readerWatchAvailable()).toBe(true);
  });

  // Exploratory test: `logs -f ID | grep -m1 ready` on a session that then went quiet waited
  // for the session's next output after grep had exited, which might never come.
  it("logs -f stops with 141 within seconds when the pipe's reader has its line, on a quiet session", async () => {
    const session = await cg.http.createSession({ command: ["sh", "-c", "echo ready; exec sleep 60"] });
    const cliLine = CLI.map(shellQuote).join(" ");
    try {
      for (const flags of ["-f", "-f --json"]) {
        const started = Date.now();
        const shell = spawn("sh", ["-c", `${cliLine} logs ${flags} ${session.id} | head -c 5; echo " $?"`], {
          cwd: REPO,
          env: { ...process.env, ...cg.env, SWITCHBOARD_LOG_LEVEL: "silent" },
        });
        let out = "";
        shell.stdout.on("data", (d: Buffer) => (out += d.toString()));
        const code = await new Promise<number | null>((resolve) => shell.once("exit", resolve));
        // The pipeline ends only once the CLI is gone too: the shell waits for both.
        expect({ code, out }, flags).toEqual({ code: 0, out: flags === "-f" ? "ready 0\n" : '{"seq 0\n' });
        expect(Date.now() - started, flags).toBeLessThan(15_000);
      }
      // And a reader that closes a socket (how a spawning program reads it): 141, nothing on stderr.
      const run = spawnCli(["logs", "-f", session.id], cg.env);
      run.child.stdout.once("data", () => run.child.stdout.destroy());
      expect(await run.exit).toBe(EXIT.BROKEN_PIPE);
      expect(run.stderr()).toBe("");
      expect((await cg.http.getSession(session.id)).state).toBe("running");
    } finally {
      await cg.http.deleteSession(session.id);
    }
  }, 60_000);
});
