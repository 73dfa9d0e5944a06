import { readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import WebSocket from "ws";
import { describe, expect, it, onTestFinished } from "vitest";
import { procStat } from "../../src/sessions/processes.js";
import { connect } from "../../src/client/node.js";
import type { ClientError } from "../../src/client/node.js";
import { api, TEST_TOKEN } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

/*
 * Input a restarted gateway's take-over is given before its holder answered HELLO waits in the
 * gateway (TerminalSession.writeOnHello): written, and recorded, once the HELLO came. Its answer
 * comes only once it left the gateway, and a stop hands it to the holder before letting go, so
 * neither a kill -9 nor a SIGTERM of the gateway loses input it accepted, and a kill -9 before
 * the HELLO leaves no record of input the program never got. The holder is held with SIGSTOP from before the gateway
 * starts, so the take-over cannot be greeted before the input arrives; the program appends what
 * it reads to a file, which must hold each line exactly once.
 */
/** How long the holder stays stopped after the input was sent (the old code answered at once). */
const HOLD_MS = 500;
const TEST_MS = 60_000;

function exited(gateway: ChildGateway): Promise<unknown> {
  return new Promise((resolve) => gateway.child.once("exit", resolve));
}

/**
 * The holder of the program `pid` (its parent: native/holder.c forks it), woken and the program
 * killed when the test finishes, as a test may leave the holder stopped.
 */
function holderOf(pid: number): number {
  const holderPid = Number(procStat(pid)?.[1]);
  expect(holderPid).toBeGreaterThan(1);
  onTestFinished(() => {
    try {
      process.kill(holderPid, "SIGCONT");
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  });
  return holderPid;
}

/** "ok" once `answer` resolves, else the code it was refused with. */
async function answerCode(answer: Promise<unknown>): Promise<string> {
  return answer.then(
    () => "ok",
    (error: unknown) => (error as ClientError).code,
  );
}

/** The `bytes` of each `input` event of session `id`, in order. */
async function inputBytes(gateway: ChildGateway, id: string): Promise<number[]> {
  const events = (await api(gateway.url).get(`/v1/sessions/${id}/events`)).json.events as Array<
    Record<string, unknown>
  >;
  return events.filter((e) => e["type"] === "input").map((e) => e["bytes"] as number);
}

/** A held PTY session whose program appends what it reads to a file (`read` gives it), on a gateway in a child. */
async function catSession(prefix: string) {
  const dir = tempDir(prefix);
  const dataDir = join(dir, "data");
  const typed = join(dir, "typed");
  const read = () => {
    try {
      return readFileSync(typed, "utf8");
    } catch {
      // Not written yet.
      return "";
    }
  };
  const first = await serveInChild({ dataDir, holders: true });
  const created = await api(first.url).post("/v1/sessions", {
    command: ["sh", "-c", `stty -echo; exec cat >> ${typed}`],
    pty: true,
  });
  expect(created.status, created.text).toBe(201);
  const { id, pid } = created.json as { id: string; pid: number };
  /** Types `line` and a newline on `gateway`: answered 200, then in the file. */
  const type = async (gateway: ChildGateway, line: string) => {
    const res = await api(gateway.url).post(`/v1/sessions/${id}/input`, { data: `${line}\n` });
    expect(res.status, res.text).toBe(200);
    await waitFor(() => read().includes(`${line}\n`), 10_000, `${line} in the file`);
  };
  return { dataDir, read, type, first, id, pid };
}

/**
 * A {@link catSession} typed into once, its gateway stopped (SIGTERM), its holder stopped
 * (SIGSTOP: it cannot say HELLO yet), and a second gateway started on its data directory: a
 * take-over whose holder has not greeted it.
 */
async function takeOverBeforeHello(prefix: string) {
  const { dataDir, read, type, first, id, pid } = await catSession(prefix);
  const holderPid = holderOf(pid);
  await type(first, "ready-0");
  const gone = exited(first);
  first.child.kill("SIGTERM");
  await gone;
  process.kill(holderPid, "SIGSTOP");
  const second = await serveInChild({ dataDir, holders: true });
  return { dataDir, read, type, id, holderPid, second };
}

describe("input given to a take-over before its holder's HELLO", () => {
  it(
    "reaches the program exactly once across a kill -9 and a SIGTERM of the gateway that took it",
    async () => {
      // kill -9 as soon as the input is answered; the holder goes on after that, or after HOLD_MS.
      const { dataDir, read, type, id, holderPid, second } = await takeOverBeforeHello("switchboard-early-");
      let gone = exited(second);
      const answer = api(second.url)
        .post(`/v1/sessions/${id}/input`, { data: "line-1\n" })
        .then((res) => {
          second.child.kill("SIGKILL");
          return res;
        });
      const resumed = Promise.race([answer, new Promise((resolve) => setTimeout(resolve, HOLD_MS))]).then(() =>
        process.kill(holderPid, "SIGCONT"),
      );
      const answered = await answer;
      expect(answered.status, answered.text).toBe(200);
      await gone;
      await resumed;

      // SIGTERM while the input waits for the holder's HELLO: the stop hands it over first.
      process.kill(holderPid, "SIGSTOP");
      const third = await serveInChild({ dataDir, holders: true });
      gone = exited(third);
      const client = await connect({ url: third.url, token: TEST_TOKEN });
      onTestFinished(() => client.close());
      // Three inputs waiting together: written in the order given, each once.
      const stopped = ["line-2\n", "line-2b\n", "line-2c\n"].map((line) => answerCode(client.input(id, line)));
      // Answered after the input frames were taken: they wait for the HELLO now.
      await client.ping();
      third.child.kill("SIGTERM");
      setTimeout(() => process.kill(holderPid, "SIGCONT"), HOLD_MS);
      await gone;
      // Taken, or cut off by the stop (the line reaches the program either way, below).
      for (const answer of stopped) expect(["ok", "DISCONNECTED", "RESTARTING"]).toContain(await answer);

      // Each line reached the program once, in order, and the log says so: one event per line.
      const fourth = await serveInChild({ dataDir, holders: true });
      await type(fourth, "after-3");
      expect(read()).toBe("ready-0\nline-1\nline-2\nline-2b\nline-2c\nafter-3\n");
      expect(await inputBytes(fourth, id)).toEqual([8, 7, 7, 8, 8, 8]);
    },
    TEST_MS,
  );

  it(
    "is not recorded when a kill -9 of the gateway comes before the HELLO: neither the program nor the log has it",
    async () => {
      // The input waited in the gateway for the HELLO, so it died with it. Its event was committed
      // at once before: the next gateway's log said a line was typed that the program never got
      // (holder-chaos, seed 1415449756 under load).
      const { dataDir, read, type, id, holderPid, second } = await takeOverBeforeHello("switchboard-early-kill-");
      const gone = exited(second);
      const client = await connect({ url: second.url, token: TEST_TOKEN });
      onTestFinished(() => client.close());
      const answer = answerCode(client.input(id, "lost-1\n"));
      // Answered after the input frame was taken, and the log given time to commit what it would.
      await client.ping();
      await new Promise((resolve) => setTimeout(resolve, 200));
      second.child.kill("SIGKILL");
      await gone;
      expect(await answer).toBe("DISCONNECTED");
      process.kill(holderPid, "SIGCONT");

      const third = await serveInChild({ dataDir, holders: true });
      await type(third, "after-2");
      expect(read()).toBe("ready-0\nafter-2\n");
      expect(await inputBytes(third, id)).toEqual([8, 8]);
    },
    TEST_MS,
  );

  it(
    "is written at once while the log cannot commit, and recorded once by the next gateway after a kill -9 (and not again by a third)",
    async () => {
      // The holder writes input as it comes and keeps its record until the commit (protocol 1.2):
      // with the log's file locked by another connection, the line reaches the program though
      // nothing commits; the gateway dies; the next one appends the event its holder reported.
      const { dataDir, read, first, id, pid } = await catSession("switchboard-late-");
      onTestFinished(() => {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      });
      const ready = await api(first.url).post(`/v1/sessions/${id}/input`, { data: "ready-0\n" });
      expect(ready.status, ready.text).toBe(200);

      const lock = new Database(join(dataDir, "switchboard.db"));
      onTestFinished(() => {
        lock.close();
      });
      lock.exec("BEGIN IMMEDIATE");
      // Never answered: its event cannot commit before the gateway dies.
      void api(first.url)
        .post(`/v1/sessions/${id}/input`, { data: "while-locked\n" })
        .catch(() => undefined);
      await waitFor(() => read().includes("while-locked\n"), 10_000, "the line in the program before its commit");
      let gone = exited(first);
      first.child.kill("SIGKILL");
      await gone;
      lock.exec("ROLLBACK");

      const inputs = async (gateway: ChildGateway) =>
        ((await api(gateway.url).get(`/v1/sessions/${id}/events`)).json.events as Array<Record<string, unknown>>)
          .filter((e) => e["type"] === "input")
          .map((e) => [e["bytes"], (e["by"] as { role?: string }).role]);
      const second = await serveInChild({ dataDir, holders: true });
      await waitFor(async () => (await inputs(second)).length >= 2, 10_000, "the line recorded by the next gateway");
      expect(await inputs(second)).toEqual([
        [8, "admin"],
        [13, "admin"],
      ]);
      // Killed once that record may be committed but not yet told to the holder.
      gone = exited(second);
      second.child.kill("SIGKILL");
      await gone;

      const third = await serveInChild({ dataDir, holders: true });
      const after = await api(third.url).post(`/v1/sessions/${id}/input`, { data: "after\n" });
      expect(after.status, after.text).toBe(200);
      await waitFor(() => read().includes("after\n"), 10_000, "the last line");
      expect(read()).toBe("ready-0\nwhile-locked\nafter\n");
      expect(await inputs(third)).toEqual([
        [8, "admin"],
        [13, "admin"],
        [6, "admin"],
      ]);
    },
    TEST_MS,
  );

  /**
   * Input sent over `path` (`key` says which field names a frame's kind: `type` or `op`) to a
   * take-over whose holder is stopped before its HELLO; the holder then dies. The error frame the
   * sender gets, after nothing was said while the input waited.
   */
  async function refusedAfterWaiting(
    prefix: string,
    path: (id: string) => string,
    key: "type" | "op",
    input: (id: string) => object,
  ): Promise<{ error: Record<string, unknown>; id: string }> {
    const { read, id, holderPid, second } = await takeOverBeforeHello(prefix);
    onTestFinished(() => void second.child.kill("SIGKILL"));
    const ws = new WebSocket(`${second.url.replace(/^http/, "ws")}${path(id)}`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    onTestFinished(() => ws.terminate());
    const frames: Array<Record<string, unknown>> = [];
    ws.on("message", (data) => frames.push(JSON.parse(String(data)) as Record<string, unknown>));
    await waitFor(() => frames.some((f) => f[key] === "connected" || f[key] === "hello"), 10_000, "connected");
    ws.send(JSON.stringify(input(id)));
    // Taken and waiting for the HELLO: nothing said yet.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(frames.filter((f) => f[key] === "error")).toEqual([]);
    // The holder dies before it greeted: the input is refused, and its sender told.
    process.kill(holderPid, "SIGKILL");
    const error = await waitFor(() => frames.find((f) => f[key] === "error"), 10_000, "an error frame");
    expect(error["code"], JSON.stringify(error)).toMatch(/^SESSION_/);
    expect(String(error["message"])).not.toBe("");
    expect(read()).toBe("ready-0\n");
    expect(await inputBytes(second, id)).toEqual([8]);
    return { error, id };
  }

  it(
    "refused after it waited (the holder gone before its HELLO) gets an error frame on /ws/session, as input refused at once does",
    async () => {
      await refusedAfterWaiting(
        "switchboard-early-refused-",
        (id) => `/ws/session/${id}`,
        "type",
        () => ({ type: "stdin", data: "lost-1\n" }),
      );
    },
    TEST_MS,
  );

  it(
    "refused after it waited gets an error frame naming its session on /v1/ws too, when the input frame had no ref",
    async () => {
      const { error, id } = await refusedAfterWaiting(
        "switchboard-early-refused-v1-",
        () => "/v1/ws",
        "op",
        (id) => ({ op: "input", session: id, data: "lost-1\n" }),
      );
      expect(error["session"]).toBe(id);
      expect(error["ref"]).toBeUndefined();
    },
    TEST_MS,
  );
});
