import { monitorEventLoopDelay } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { Holders } from "../../src/sessions/holders.js";
import type { Session } from "../../src/sessions/session.js";
import type { SessionManager } from "../../src/sessions/session-manager.js";
import { createTerminalSession } from "../../src/sessions/terminal-session.js";
import { testGateway } from "../helpers/gateway.js";

/** The gateway admin token's principal, as a session owner. */
const ADMIN_OWNER = { id: "token:admin", name: "admin" };

/*
 * Holders start while the event loop goes on (Holders.launch: spawn, then their answer): 64 PTY
 * sessions created at once stalled the loop 1.4 s while each holder was awaited in turn
 * (spawnSync). docs/benchmarks.md, "Session holders". Regression test for that stall.
 */

/** Sessions created at once. */
const SESSIONS = 64;
/**
 * The loop's longest stall allowed meanwhile, generous for a loaded 2-core machine: measured
 * 133-258 ms alone at load 15-19, 452-515 ms beside another test file at load 20 (its thread
 * starved of CPU, not blocked: 64 creates' own work is ~57 ms of CPU). spawnSync: 1,440-2,380 ms.
 */
const MAX_LOOP_DELAY_MS = 600;
/** Bursts at most, until one stays under the bound. */
const ROUNDS = 2;

/** One burst: `SESSIONS` created in one turn of the loop; its longest delay meanwhile (ms). */
async function burst(sessions: SessionManager, round: number): Promise<{ maxMs: number; created: Session[] }> {
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  // Its first tick only starts the clock: a stall before it would go unmeasured.
  await new Promise((r) => setTimeout(r, 50));
  const started = performance.now();
  const created = await Promise.all(
    Array.from({ length: SESSIONS }, (_, i) =>
      createTerminalSession(
        sessions,
        { kind: "terminal", command: ["sleep", "30"], pty: true, name: `r${round}-${i}` },
        ADMIN_OWNER,
      ),
    ),
  );
  // The loop's first turn after a stall is what measures it.
  await new Promise((r) => setTimeout(r, 50));
  delay.disable();
  const maxMs = delay.max / 1e6;
  console.log(
    `${SESSIONS} held PTY sessions created at once in ${(performance.now() - started).toFixed(0)} ms: event loop max delay ${maxMs.toFixed(1)} ms`,
  );
  return { maxMs, created };
}

describe("starting session holders", () => {
  it(`creates ${SESSIONS} PTY sessions at once with the event loop's longest delay under ${MAX_LOOP_DELAY_MS} ms`, async () => {
    const gw = await testGateway({
      config: {
        sessions: { holders: true, onStop: "end" },
        limits: { sessions: SESSIONS * ROUNDS, sessionsPerToken: SESSIONS * ROUNDS },
      },
    });
    // The best of ROUNDS: test files running beside this one can starve its thread of CPU for
    // a while; spawnSync stalls every round for the whole burst.
    const rounds = [];
    for (let round = 0; round < ROUNDS; round++) {
      rounds.push(await burst(gw.core.sessions, round));
      if (rounds.at(-1)!.maxMs < MAX_LOOP_DELAY_MS) break;
    }
    const sessions = rounds.flatMap((r) => r.created);
    for (const s of sessions) {
      expect(s.running).toBe(true);
      expect(s.record.holder?.pid).toBeGreaterThan(0);
      expect(Holders.alive(s.record.holder!)).toBe(true);
      expect(s.record.pid).toBeGreaterThan(0);
    }
    expect(new Set(sessions.map((s) => s.record.holder!.pid)).size).toBe(sessions.length);
    expect(Math.min(...rounds.map((r) => r.maxMs))).toBeLessThan(MAX_LOOP_DELAY_MS);
  }, 60_000);

  it("lists a held session only once its holder runs the program, and counts starting ones against the limits", async () => {
    const gw = await testGateway({
      config: { sessions: { holders: true, onStop: "end" }, limits: { sessions: 2, sessionsPerToken: 2 } },
    });
    const create = (name: string) =>
      createTerminalSession(gw.core.sessions, { kind: "terminal", command: ["sleep", "30"], name }, ADMIN_OWNER);
    const starting = [create("a"), create("b"), create("c")];
    // While their holders start, the sessions are in no list.
    expect(gw.core.sessions.list()).toHaveLength(0);
    const results = await Promise.allSettled(starting);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected"]);
    const refused = results[2] as PromiseRejectedResult;
    expect(refused.reason).toMatchObject({ code: "LIMIT_EXCEEDED" });
    expect(
      gw.core.sessions
        .list()
        .map((s) => s.record.name)
        .sort(),
    ).toEqual(["a", "b"]);
  }, 30_000);
});
