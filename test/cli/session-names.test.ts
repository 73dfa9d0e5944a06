/**
 * `attach`, `logs` and `ls` take a session's name as well as its id; a name two sessions have
 * is refused with SESSION_NAME_AMBIGUOUS and their ids, never a guess.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionInfo } from "../../src/client/index.js";
import { EXIT } from "../../src/cli/exit-codes.js";
import { cli, sessionEnded, startCliGateway } from "./helpers.js";
import type { CliGateway } from "./helpers.js";

let cg: CliGateway;
beforeAll(async () => {
  cg = await startCliGateway();
});
afterAll(() => cg.close());

describe("session names on the command line", () => {
  it("logs and ls find a session by name; a shared name is refused with the ids to choose from", async () => {
    const { http, env } = cg;
    const one = await http.createSession({ command: ["sh", "-c", "echo from-the-builder"], name: "builder" });
    const twinA = await http.createSession({ command: ["sh", "-c", "echo a"], name: "twin" });
    const twinB = await http.createSession({ command: ["sh", "-c", "echo b"], name: "twin" });
    await Promise.all([one, twinA, twinB].map((s) => sessionEnded(http, s.id)));

    const [logs, ls, lsId, lsTwins, ambiguous, ambiguousJson, attachAmbiguous, missing, lsNone] = await Promise.all([
      cli(["logs", "builder"], env),
      cli(["ls", "builder", "--json"], env),
      cli(["ls", one.id, "--json"], env),
      cli(["ls", "twin", "--json"], env),
      cli(["logs", "twin"], env),
      cli(["logs", "twin", "--json"], env),
      cli(["attach", "twin", "--read-only"], env),
      cli(["logs", "nobody-has-this"], env),
      cli(["ls", "nobody-has-this"], env),
    ]);
    expect(logs).toMatchObject({ code: 0, stdout: "from-the-builder\n" });
    expect((JSON.parse(ls.stdout) as SessionInfo[]).map((s) => s.id)).toEqual([one.id]);
    expect((JSON.parse(lsId.stdout) as SessionInfo[]).map((s) => s.id)).toEqual([one.id]);
    expect((JSON.parse(lsTwins.stdout) as SessionInfo[]).map((s) => s.id)).toEqual([twinA.id, twinB.id]);

    expect(ambiguous.code).toBe(EXIT.FAILURE);
    expect(ambiguous.stderr).toContain("2 sessions are named twin");
    expect(ambiguous.stderr).toContain(twinA.id);
    expect(ambiguous.stderr).toContain(twinB.id);
    expect(ambiguous.stderr).toContain(
      'give the id of one ("switchboard ls twin" lists them) (SESSION_NAME_AMBIGUOUS)',
    );
    expect(JSON.parse(ambiguousJson.stdout).error).toMatchObject({ code: "SESSION_NAME_AMBIGUOUS" });
    expect(attachAmbiguous.stderr).toContain("SESSION_NAME_AMBIGUOUS");
    expect(missing.code).toBe(EXIT.NOT_FOUND);
    expect(missing.stderr).toContain("no session nobody-has-this (SESSION_NOT_FOUND)");
    expect(lsNone).toMatchObject({ code: 0, stdout: "", stderr: "no session has the id or name nobody-has-this\n" });
  });
});
