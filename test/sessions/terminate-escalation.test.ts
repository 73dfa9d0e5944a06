import { readFileSync } from "node:fs";
import { constants } from "node:os";
import { beforeAll, describe, expect, it } from "vitest";
import { api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { alive } from "./process-helpers.js";

/*
 * Terminating terminal sessions through a gateway, as a client does (DELETE, a graceful stop):
 * "TERM (a PTY is hung up first), and after a 3 s grace KILL to every process of its session"
 * (docs/protocol.md, docs/operations.md). The DELETEs run concurrently on one gateway, each on
 * sessions of its own: most of their time is the grace, waited for once instead of once each.
 */

type Ev = { seq: number; type: string; [k: string]: unknown };
type Http = ReturnType<typeof api>;
/** The test context's onTestFinished: concurrent tests must register their cleanup with their own. */
type OnFinished = (fn: () => void) => void;

const MODES = [
  { name: "pipe", pty: false },
  { name: "pty", pty: true },
] as const;

/** Process state letter from /proc (R, S, T, Z...), "-" once it is gone. */
function state(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return "-";
  }
}

/** Gone, or a zombie waiting for whoever reaps orphans. */
const dead = (pid: number): boolean => !alive(pid) || state(pid) === "Z";

/**
 * The signal a session's main process ended by: its own death, or a shell's exit status 128+n
 * after its foreground job died of signal n. (Under load bash with `set -m` sometimes sees its
 * foreground `sleep` die of the hangup and exits 129 before its own HUP ends it.)
 */
function endedBy(exit: { signal: string | null; exitCode: number | null }): string | null {
  if (exit.signal !== null) return exit.signal;
  const n = (exit.exitCode ?? 0) - 128;
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0] ?? null;
}

/** KILLs `pid` after the test if it is still there, so a failing test leaves nothing behind. */
function reap(pid: number, onFinished: OnFinished): void {
  onFinished(() => {
    if (alive(pid)) process.kill(pid, "SIGKILL");
  });
}

async function outputOf(http: Http, id: string): Promise<string> {
  return (await http.get(`/v1/sessions/${id}/output`)).text;
}

/** Starts a session whose script prints `job:PID`; resolves with the session and that pid. */
async function startWithJob(http: Http, body: Record<string, unknown>, onFinished: OnFinished) {
  const created = await http.post("/v1/sessions", body);
  expect(created.status, created.text).toBe(201);
  const id = created.json.id as string;
  const job = Number(await waitFor(async () => /job:(\d+)/.exec(await outputOf(http, id))?.[1], 10_000, "job pid"));
  reap(job, onFinished);
  return { id, pid: created.json.pid as number, job };
}

/**
 * The main process dies of the first signal, but a job it started ignores TERM and HUP (it
 * says so once its traps are set) and keeps the output open. With `set -m` the job has a process group of its own, out of reach
 * of a signal to the main process's group; without it, it shares that group.
 */
const JOB_SCRIPTS = {
  "in a group of its own": "set -m; (trap '' HUP TERM; echo job:$BASHPID; exec sleep 301) & sleep 302",
  "in the main process's group": "(trap '' HUP TERM; echo job:$BASHPID; exec sleep 303) & sleep 304",
};

/** The gateway of the DELETE tests (closed after the file's tests). */
let http: Http;
beforeAll(async () => {
  http = api((await testGateway()).url);
});

describe.concurrent.each(MODES)("DELETE of a $name session", ({ pty }) => {
  it("ends a stopped process with TERM at once, not with KILL after the grace", async ({ onTestFinished }) => {
    const created = await http.post("/v1/sessions", { command: ["sleep", "300"], pty });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    reap(created.json.pid, onTestFinished);
    expect((await http.post(`/v1/sessions/${id}/signal`, { signal: "STOP" })).status).toBe(200);
    await waitFor(() => state(created.json.pid) === "T", 5_000, "process stopped");
    const started = Date.now();
    const del = await http.del(`/v1/sessions/${id}`);
    const took = Date.now() - started;
    expect(del.status).toBe(200);
    // A stopped process acts on TERM (or a PTY's HUP) only once continued; without CONT it waited for KILL.
    // (In a PTY the hangup and the TERM may both be pending when it runs again: either ends it.)
    expect(del.json.state).toBe("exited");
    expect(pty ? ["SIGHUP", "SIGTERM"] : ["SIGTERM"]).toContain(del.json.signal);
    expect(took).toBeLessThan(2_000);
  });

  it.for(Object.entries(JOB_SCRIPTS))(
    "KILLs after the grace a job %s that ignores TERM and HUP and holds the output after the main process died",
    { timeout: 20_000 },
    async ([, script], { onTestFinished }) => {
      const { id, job } = await startWithJob(http, { command: ["bash", "-c", script], pty }, onTestFinished);
      const started = Date.now();
      const del = await http.del(`/v1/sessions/${id}`);
      expect(del.status).toBe(200);
      expect(del.json.state).toBe("exited");
      // The main process died of the first signal; the job was left for the KILL after the 3 s grace,
      // which the drain timeout (2 s after the main process's exit) used to cancel.
      expect(endedBy(del.json)).toBe(pty ? "SIGHUP" : "SIGTERM");
      await waitFor(() => dead(job), 5_000, `job ${job} killed (state ${state(job)})`);
      expect(Date.now() - started).toBeGreaterThanOrEqual(2_500);
      const evs = (await http.get(`/v1/sessions/${id}/events`)).json.events as Ev[];
      expect(evs.filter((e) => e.type === "exit")).toHaveLength(1);
    },
  );
});

describe.concurrent("DELETE of a pipe session whose job has a process group of its own", () => {
  it("gives the job the TERM too, so it can clean up before the KILL (it got only the KILL, after the grace)", async ({
    onTestFinished,
  }) => {
    const script =
      "set -m; (trap 'echo job-cleaned-up; exit 0' TERM; echo job:$BASHPID; while :; do sleep 0.05; done) & sleep 305";
    const { id, job } = await startWithJob(http, { command: ["bash", "-c", script], pty: false }, onTestFinished);
    const started = Date.now();
    const del = await http.del(`/v1/sessions/${id}`);
    expect(del.status).toBe(200);
    expect(await outputOf(http, id)).toContain("job-cleaned-up");
    await waitFor(() => dead(job), 5_000, `job ${job} gone`);
    // Ended by its own TERM, long before the 3 s grace.
    expect(Date.now() - started).toBeLessThan(2_500);
  }, 20_000);
});

describe("a graceful stop of the gateway", () => {
  it("KILLs the jobs of every terminal session that ignore TERM and HUP, after the grace", async ({
    onTestFinished,
  }) => {
    const gw = await testGateway();
    const own = api(gw.url);
    const sessions = [];
    for (const { pty } of MODES) {
      for (const script of Object.values(JOB_SCRIPTS))
        sessions.push(await startWithJob(own, { command: ["bash", "-c", script], pty }, onTestFinished));
    }
    await gw.close();
    for (const { job } of sessions) await waitFor(() => dead(job), 5_000, `job ${job} killed (state ${state(job)})`);
  }, 30_000);
});
