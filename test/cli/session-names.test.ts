/**
 * Every command that takes a session takes its id, its name or a prefix of its id (src/cli/
 * session-ref.ts); a name two sessions have, or a prefix two ids start with, is refused with
 * SESSION_NAME_AMBIGUOUS and the candidates, never a guess.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionInfo } from "../../src/client/index.js";
import { EXIT } from "../../src/cli/exit-codes.js";
import { waitFor } from "../helpers/wait-for.js";
import { cli, sessionEnded, spawnCli, startCliGateway } from "./helpers.js";
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
    expect(lsNone).toMatchObject({
      code: 0,
      stdout: "",
      stderr: "no session has the id, name or id prefix nobody-has-this\n",
    });
  });
});

/** At most this many CLI runs at a time: more only queue for the machine's cores. */
const CLI_RUNS_AT_ONCE = 4;

/** `run` of each of `items`, at most {@link CLI_RUNS_AT_ONCE} at a time, the results in order. */
async function inTurns<T, R>(items: readonly T[], run: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await run(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: CLI_RUNS_AT_ONCE }, worker));
  return results;
}

/** The shortest prefix (at least `min` characters) of `id` that no other of `ids` starts with. */
function uniquePrefix(id: string, ids: readonly string[], min = 4): string {
  for (let n = min; n < id.length; n++) {
    const prefix = id.slice(0, n);
    if (ids.every((other) => other === id || !other.startsWith(prefix))) return prefix;
  }
  return id;
}

describe("every command that takes a session takes its name or an id prefix (one resolver)", () => {
  /**
   * Per command: its arguments around the session reference, and the exit code it gives once it
   * found the session (a refusal about something else proves the lookup went through).
   */
  type Row = {
    command: string;
    args: (ref: string) => string[];
    kind: "terminal" | "agent";
    code: number;
    says?: string;
    /** Exit code 0 is right too (a refusal then says `says`). */
    orOk?: boolean;
  };
  const rows: Row[] = [
    { command: "logs", args: (r) => ["logs", r], kind: "terminal", code: EXIT.OK },
    { command: "ls", args: (r) => ["ls", r, "--json"], kind: "terminal", code: EXIT.OK },
    { command: "send", args: (r) => ["send", r, "hello"], kind: "terminal", code: EXIT.OK },
    { command: "signal", args: (r) => ["signal", r, "WINCH"], kind: "terminal", code: EXIT.OK },
    { command: "prompt", args: (r) => ["prompt", r, "hi"], kind: "agent", code: EXIT.OK },
    // The prompt above may have ended already (the echo agent answers at once): then nothing runs.
    {
      command: "abort",
      args: (r) => ["abort", r],
      kind: "agent",
      code: EXIT.FAILURE,
      says: "RUN_NOT_ACTIVE",
      orOk: true,
    },
    {
      command: "permission",
      args: (r) => ["permission", r, "no-such-request", "allow"],
      kind: "agent",
      code: EXIT.FAILURE,
      says: "PERMISSION_REQUEST_NOT_FOUND",
    },
    { command: "mode", args: (r) => ["mode", r], kind: "agent", code: EXIT.OK },
    { command: "config", args: (r) => ["config", r], kind: "agent", code: EXIT.OK },
    {
      command: "elicit",
      args: (r) => ["elicit", r, "no-such-request", "cancel"],
      kind: "agent",
      code: EXIT.FAILURE,
      says: "ELICITATION_NOT_FOUND",
    },
    {
      command: "resume",
      args: (r) => ["resume", r],
      kind: "agent",
      code: EXIT.FAILURE,
      says: "AGENT_CANNOT_RESUME",
    },
  ];

  it(
    "by name and by id prefix; an ambiguous reference is refused listing the candidates",
    { timeout: 90_000 },
    async () => {
      const { http, env } = cg;
      const term = await http.createSession({ command: ["cat"], name: "resolver-term" });
      const agent = await http.createSession({ kind: "agent", agent: "echo", name: "resolver-agent" });
      // Two sessions whose ids share a first character (64 choices each: found within a few).
      const byFirst = new Map<string, string>();
      let shared: string | undefined;
      for (let i = 0; i < 40 && shared === undefined; i++) {
        const s = await http.createSession({ command: ["true"], name: "resolver-twin" });
        if (byFirst.has(s.id[0]!)) shared = s.id[0]!;
        byFirst.set(s.id[0]!, s.id);
      }
      expect(shared).toBeDefined();
      const ids = (await http.listSessions()).map((s) => s.id);
      const refs = (kind: Row["kind"]) => {
        const s = kind === "terminal" ? term : agent;
        return { name: s.name!, prefix: uniquePrefix(s.id, ids) };
      };
      // Each command by name or by prefix, and refused an ambiguous one, by turns: one resolver
      // does it for all, so each way is taken by half of them (a CLI run costs ~0.3 s of CPU).
      const cases = rows.flatMap((row, i) =>
        i % 2 === 0
          ? [
              { row, ref: refs(row.kind).name, how: "name" },
              { row, ref: shared!, how: "ambiguous prefix" },
            ]
          : [
              { row, ref: refs(row.kind).prefix, how: "prefix" },
              { row, ref: "resolver-twin", how: "ambiguous name" },
            ],
      );
      const results = await inTurns(cases, (c) => cli(c.row.args(c.ref), env));
      for (const [i, { row, ref, how }] of cases.entries()) {
        const r = results[i]!;
        const where = `${row.command} by ${how} (${ref}): ${r.stdout}${r.stderr}`;
        if (how.startsWith("ambiguous")) {
          if (row.command === "ls") {
            // ls lists every session a reference fits.
            expect(r.code, where).toBe(EXIT.OK);
            expect((JSON.parse(r.stdout) as SessionInfo[]).length, where).toBeGreaterThan(1);
            continue;
          }
          expect(r.code, where).toBe(EXIT.FAILURE);
          expect(r.stderr, where).toContain("(SESSION_NAME_AMBIGUOUS)");
          expect(r.stderr, where).toMatch(
            how === "ambiguous name" ? /\d+ sessions are named resolver-twin/ : /\d+ session ids start with /,
          );
          continue;
        }
        if (row.orOk === true && r.code === EXIT.OK) continue;
        expect(r.code, where).toBe(row.code);
        expect(`${r.stdout}${r.stderr}`, where).not.toMatch(/SESSION_NOT_FOUND|SESSION_NAME_AMBIGUOUS/);
        if (row.says !== undefined) expect(r.stderr, where).toContain(row.says);
        if (row.command === "ls")
          expect(
            (JSON.parse(r.stdout) as SessionInfo[]).map((s) => s.id),
            where,
          ).toEqual([row.kind === "terminal" ? term.id : agent.id]);
      }
      // What send typed reached the session it named.
      await waitFor(async () => Buffer.from((await http.output(term.id)).bytes).toString() === "hello\n", 10_000);

      // kill and rm, which end what they name: by prefix and by name.
      const [doomed, gone] = await Promise.all([
        http.createSession({ command: ["sleep", "60"], name: "resolver-doomed" }),
        http.createSession({ command: ["sleep", "60"], name: "resolver-gone" }),
      ]);
      const all = (await http.listSessions()).map((s) => s.id);
      const [killed, removed, missing] = await Promise.all([
        cli(["kill", uniquePrefix(doomed.id, all)], env),
        cli(["rm", "-f", "resolver-gone"], env),
        cli(["kill", "resolver-nobody"], env),
      ]);
      expect(killed, killed.stderr).toMatchObject({ code: EXIT.OK, stdout: expect.stringContaining(doomed.id) });
      expect(removed, removed.stderr).toMatchObject({ code: EXIT.OK, stdout: `removed ${gone.id} (resolver-gone)\n` });
      expect(missing.code).toBe(EXIT.NOT_FOUND);
      expect(missing.stderr).toBe(
        'switchboard: no session resolver-nobody (SESSION_NOT_FOUND); "switchboard ls" lists sessions\n',
      );
    },
  );

  it("the detach line names the session by its name when that names it alone", async () => {
    const { http, env } = cg;
    const named = await http.createSession({ command: ["cat"], name: "resolver-detach" });
    const plain = await http.createSession({ command: ["cat"] });
    const detach = async (ref: string) => {
      const run = spawnCli(["attach", ref, "--read-only"], env);
      // Ctrl-] (the default detach key) on attach's input.
      run.child.stdin.write("\x1d");
      await run.exit;
      return run.stderr();
    };
    const [byName, byId] = await Promise.all([detach(named.id.slice(0, 8)), detach(plain.id)]);
    expect(byName).toContain(
      `[detached from resolver-detach (${named.id}); "switchboard attach resolver-detach" to come back]`,
    );
    expect(byId).toContain(`[detached from ${plain.id}; "switchboard attach ${plain.id}" to come back]`);
  });
});
