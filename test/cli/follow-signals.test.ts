import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit-codes.js";
import { spawnCli, startCliGateway } from "./helpers.js";
import type { CliGateway } from "./helpers.js";

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
        await expect.poll(() => run.stdout(), { timeout: 20_000 }).toBe("started\n");
        await expect.poll(async () => (await cg.http.getSession(session.id)).viewers, { timeout: 20_000 }).toBe(1);
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
