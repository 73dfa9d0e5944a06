import { readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import WebSocket from "ws";
import { describe, expect, it, onTestFinished } from "vitest";
import { connect } from "../../src/client/node.js";
import type { SessionEvent } from "../../src/client/node.js";
import { readBinaryOutput } from "../../src/protocol/index.js";
import { EARLY_OUTPUT_WAIT_MS } from "../../src/sessions/terminal-session.js";
import { TEST_TOKEN, api, testGateway } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import { sleep } from "../helpers/sleep.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

/*
 * A held session's output is shown to `/ws/session` viewers before it is durable (its holder keeps
 * the bytes until the commit is acknowledged), never to `/v1/ws` and SSE, which resume by seq. The
 * log's file is locked by another connection so that nothing commits; the program prints meanwhile.
 */

/** A raw `/ws/session` viewer (binary output): its bytes in order, and where each frame started. */
function terminalViewer(url: string, id: string, since: number) {
  const viewer = {
    bytes: Buffer.alloc(0),
    /** Each binary frame's first byte, and the byte after its last. */
    frames: [] as Array<[number, number]>,
    opened: false,
    refused: undefined as number | undefined,
    closed: undefined as number | undefined,
  };
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/ws/session/${id}?since=${since}&output=binary`, {
    headers: { authorization: `Bearer ${TEST_TOKEN}` },
  });
  ws.on("upgrade", () => (viewer.opened = true));
  ws.on("unexpected-response", (req, res) => {
    viewer.refused = res.statusCode;
    req.destroy();
  });
  // The refusal is told above; what follows it (the socket's end) says nothing more.
  ws.on("error", () => undefined);
  ws.on("message", (data: Buffer, binary: boolean) => {
    if (!binary) return;
    const output = readBinaryOutput(data)!;
    viewer.frames.push([output.offset, output.offset + output.bytes.length]);
    viewer.bytes = Buffer.concat([viewer.bytes, output.bytes]);
  });
  ws.on("close", (code) => (viewer.closed = code));
  onTestFinished(() => ws.close());
  return viewer;
}

describe("output shown before its commit (held sessions)", () => {
  it("reaches /ws/session viewers while the log cannot commit, /v1/ws only once durable; a resume past the durable end waits for it", async () => {
    const gw = await testGateway({ holders: true });
    onTestFinished(() => gw.close());
    const created = await api(gw.url).post("/v1/sessions", {
      command: ["sh", "-c", "stty -opost -echo; i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.02; done"],
      pty: true,
    });
    expect(created.status, created.text).toBe(201);
    const { id } = created.json as { id: string };
    onTestFinished(async () => {
      await api(gw.url).del(`/v1/sessions/${id}`);
    });

    const client = await connect({ url: gw.url, token: TEST_TOKEN });
    onTestFinished(() => client.close());
    const events: SessionEvent[] = [];
    client.subscribe(id, { since: 0 }, (e) => events.push(e));
    const durableText = () => events.flatMap((e) => (e.type === "output" ? [e.data] : [])).join("");
    const first = terminalViewer(gw.url, id, 0);
    await waitFor(() => first.bytes.includes("tick-3\n") && durableText().includes("tick-3\n"), 10_000, "ticks");

    // Another connection takes the log's write lock: no commit succeeds while it holds it.
    const lock = new Database(join(gw.dataDir, "switchboard.db"));
    onTestFinished(() => {
      lock.close();
    });
    lock.exec("BEGIN IMMEDIATE");
    // What was published before the lock reaches the subscriber first.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const durableAtLock = durableText().length;
    const shownAtLock = first.bytes.length;
    await waitFor(() => first.bytes.length >= shownAtLock + 40, 10_000, "output shown while nothing commits");
    expect(durableText().length).toBe(durableAtLock);

    // A viewer resuming where the first one is (past the durable end) is let in and waits.
    const resumeAt = first.bytes.length;
    const second = terminalViewer(gw.url, id, resumeAt);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect({ durable: durableText().length, bytes: second.bytes.length, refused: second.refused }).toEqual({
      durable: durableAtLock,
      bytes: 0,
      refused: undefined,
    });

    lock.exec("ROLLBACK");
    await waitFor(() => durableText().length >= resumeAt + 40 && second.bytes.length >= 40, 10_000, "commits again");
    // The bytes shown early are the bytes the log holds; the second viewer starts exactly where it asked.
    const durable = Buffer.from(durableText());
    // (Each viewer may be ahead of the subscriber: compared over what both have.)
    const agree = (shown: Buffer, from: number) => {
      const n = Math.min(shown.length, durable.length - from);
      return shown.subarray(0, n).equals(durable.subarray(from, from + n));
    };
    expect(agree(first.bytes, 0)).toBe(true);
    expect(second.frames[0]![0]).toBe(resumeAt);
    expect(agree(second.bytes, resumeAt)).toBe(true);
    // Each frame starts where the one before it ended: no gap, nothing twice.
    for (const viewer of [first, second])
      for (let i = 1; i < viewer.frames.length; i++)
        expect(viewer.frames[i]![0], `frame ${i}`).toBe(viewer.frames[i - 1]![1]);

    // Past what any holder keeps unacknowledged: refused at once, as past the end.
    const far = terminalViewer(gw.url, id, durable.length + 64 * 1024 * 1024);
    await waitFor(() => far.refused !== undefined || far.opened, 5_000, "an answer");
    expect(far.refused).toBe(400);
  });

  it("a resume past the durable end after a kill -9 waits for a take-over slower than EARLY_OUTPUT_WAIT_MS", async () => {
    const dataDir = tempDir();
    const first = await serveInChild({ dataDir, holders: true });
    const created = await api(first.url).post("/v1/sessions", {
      command: ["sh", "-c", "stty -opost -echo; i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.02; done"],
      pty: true,
    });
    expect(created.status, created.text).toBe(201);
    const { id, pid } = created.json as { id: string; pid: number };
    const early = terminalViewer(first.url, id, 0);
    await waitFor(() => early.bytes.includes("tick-3\n"), 10_000, "ticks");
    // Nothing commits while another connection holds the write lock: the viewer is shown output
    // the log does not hold when the gateway is killed. The lock is held at most 4 s a try: past
    // the writer's busy timeout (5 s) the log stops taking output and holds the program back.
    const lock = new Database(join(dataDir, "switchboard.db"));
    onTestFinished(() => {
      if (lock.open) lock.close();
    });
    const durableEnd = lock.prepare("SELECT COALESCE(MAX(out_end), 0) FROM events WHERE session_id = ?").pluck();
    for (let attempt = 1; ; attempt++) {
      lock.exec("BEGIN IMMEDIATE");
      const durable = durableEnd.get(id) as number;
      try {
        await waitFor(
          () => early.bytes.length > durable && early.bytes.at(-1) === 0x0a,
          4_000,
          "a line shown while nothing commits",
        );
        break;
      } catch (error) {
        lock.exec("ROLLBACK");
        if (attempt === 3) throw error;
        await sleep(1_000);
      }
    }
    first.child.kill("SIGKILL");
    await new Promise((resolve) => first.child.once("exit", resolve));
    const resumeAt = early.bytes.length;
    lock.exec("ROLLBACK");
    lock.close();

    // The holder (the program's parent) answers the next gateway's take-over only when let go.
    const holder = Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[1]);
    process.kill(holder, "SIGSTOP");
    onTestFinished(() => {
      try {
        process.kill(holder, "SIGCONT");
      } catch {
        // Gone with its session already.
      }
    });
    const second = await serveInChild({ dataDir, holders: true });
    onTestFinished(async () => {
      await api(second.url).del(`/v1/sessions/${id}`);
    });
    const resumed = terminalViewer(second.url, id, resumeAt);
    await sleep(EARLY_OUTPUT_WAIT_MS + 1_000);
    expect({ opened: resumed.opened, refused: resumed.refused }).toEqual({ opened: false, refused: undefined });
    process.kill(holder, "SIGCONT");
    await waitFor(() => resumed.bytes.length >= 40, 10_000, "the resumed viewer's output");
    expect(resumed.frames[0]![0]).toBe(resumeAt);
    // What both viewers were shown is what the log holds.
    const log = terminalViewer(second.url, id, 0);
    await waitFor(() => log.bytes.length >= resumeAt + resumed.bytes.length, 10_000, "the log from the start");
    expect(log.bytes.subarray(0, resumeAt).equals(early.bytes.subarray(0, resumeAt))).toBe(true);
    expect(log.bytes.subarray(resumeAt, resumeAt + resumed.bytes.length).equals(resumed.bytes)).toBe(true);
  }, 60_000);

  it("refuses a resume past the end of a session without a holder", async () => {
    const gw = await testGateway({ holders: false });
    onTestFinished(() => gw.close());
    const created = await api(gw.url).post("/v1/sessions", { command: ["sh", "-c", "echo hi; sleep 30"], pty: true });
    const { id } = created.json as { id: string };
    onTestFinished(async () => {
      await api(gw.url).del(`/v1/sessions/${id}`);
    });
    await waitFor(async () => (await api(gw.url).get(`/v1/sessions/${id}`)).json.outputBytes > 0, 5_000, "hi");
    const viewer = terminalViewer(gw.url, id, 1_000);
    await waitFor(() => viewer.refused !== undefined || viewer.opened, 5_000, "an answer");
    expect(viewer.refused).toBe(400);
  });
});
