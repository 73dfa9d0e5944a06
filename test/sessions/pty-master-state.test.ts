import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { closeSync } from "node:fs";
import { createRequire } from "node:module";
import { afterEach, describe, expect, it } from "vitest";
import {
  FLOOD_BYTES,
  INTERACTIVE_MS,
  READER_MOVES,
  noteInput,
  readMaster,
  setFloodReader,
} from "../../src/sessions/pty-master.js";
import type { MasterReaderMode, PtyMasterReader, ReaderAt } from "../../src/sessions/pty-master.js";

/** A PTY pair from node-pty's native open(): the master non-blocking, the slave ours to hold. */
function openPty(): { master: number; slave: number; pty: string } {
  const require = createRequire(import.meta.url);
  const { loadNativeModule } = require("node-pty/lib/utils.js") as {
    loadNativeModule(name: string): {
      module: { open(cols: number, rows: number): { master: number; slave: number; pty: string } };
    };
  };
  return loadNativeModule("pty").module.open(80, 24);
}

/**
 * Reads a fresh PTY master and records each state the reader is in, as the sink and a poll
 * at every turn of the event loop see it (consecutive repeats dropped).
 */
function observed(mode: MasterReaderMode) {
  setFloodReader(mode);
  const { master, slave, pty } = openPty();
  const states: ReaderAt[] = [];
  let bytes = 0;
  let ended = 0;
  let afterClose = 0;
  let closed = false;
  const note = (): void => {
    const at = reader.state;
    if (states.at(-1) !== at) states.push(at);
  };
  const reader = readMaster(master, {
    output: (chunk) => {
      if (closed) afterClose++;
      bytes += chunk.length;
      note();
    },
    ended: () => {
      if (closed) afterClose++;
      ended++;
      note();
    },
  }) as PtyMasterReader;
  let polling = true;
  const poll = (): void => {
    note();
    if (polling) setImmediate(poll);
  };
  poll();
  return {
    reader,
    states,
    bytes: () => bytes,
    ended: () => ended,
    afterClose: () => afterClose,
    /** Writes `n` bytes to the slave from a child process (its own writes block on a full terminal). */
    flood: (n: number): Promise<void> => {
      const child = spawn("sh", ["-c", `head -c ${n} /dev/zero | tr '\\0' a > ${pty}`], {
        stdio: "ignore",
        detached: true,
      });
      children.push(child);
      return new Promise((resolve, reject) => {
        child.on("error", reject);
        child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`the flood exited with ${code}`))));
      });
    },
    /** Closes our slave: with no slave left the master reads to EIO. */
    hangUp: () => closeSync(slave),
    close: () => {
      closed = true;
      polling = false;
      reader.close();
      note();
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, what: string): Promise<void> {
  for (const deadline = performance.now() + 10_000; !check(); await sleep(5)) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
}

/** Flood writers, killed (with their pipelines) after each test. */
const children: ChildProcess[] = [];

afterEach(() => {
  setFloodReader("thread");
  for (const child of children.splice(0))
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null)
      process.kill(-child.pid, "SIGKILL");
});

describe("the PTY master reader's state", () => {
  it("moves only as READER_MOVES says: closed is final, ended only closes, the thread goes back to the loop", () => {
    expect(READER_MOVES.closed).toEqual([]);
    expect(READER_MOVES.ended).toEqual(["closed"]);
    expect(READER_MOVES.thread).toEqual(["loop", "closed"]);
    // Every state can be closed, and the loop is where each one starts and is left from.
    for (const [from, to] of Object.entries(READER_MOVES)) if (from !== "closed") expect(to).toContain("closed");
  });

  it("a flood goes loop → thread → loop (quiet), then ends at EIO and closes; closed, it takes no call", async () => {
    const r = observed("thread");
    const total = 4 * FLOOD_BYTES;
    await r.flood(total);
    await until(
      () => r.bytes() === total && r.states.at(-1) === "loop" && r.states.length > 1,
      "the flood back on the loop",
    );
    r.hangUp();
    await until(() => r.ended() === 1, "the end");
    expect(r.reader.state).toBe("ended");
    r.close();
    // Refused once closed: nothing moves and the sink hears nothing more.
    r.reader.pause();
    r.reader.resume();
    r.reader.abandon();
    r.reader.close();
    await sleep(20);
    expect(r.reader.state).toBe("closed");
    expect(r.reader.fdOpen).toBe(false);
    expect(r.afterClose()).toBe(0);
    expect(r.ended()).toBe(1);
    // (A loaded machine may pause the flood past QUIET_MS: it moves to the thread again.)
    expect(r.states.join(" ")).toMatch(/^loop (thread loop )+(draining )?ended closed$/);
  });

  it("while someone types, a flood on the loop rests after each read and is never handed to the thread", async () => {
    const r = observed("thread");
    noteInput();
    const typing = setInterval(noteInput, 100);
    try {
      const total = 2 * FLOOD_BYTES;
      await r.flood(total);
      await until(() => r.bytes() === total, "the flood");
    } finally {
      clearInterval(typing);
    }
    r.hangUp();
    await until(() => r.ended() === 1, "the end");
    r.close();
    expect(r.states).toContain("resting");
    expect(r.states).not.toContain("thread");
    expect(r.states.join(" ")).toMatch(/^loop (resting loop )+(resting )?(draining )?ended closed$/);
    await sleep(INTERACTIVE_MS);
  });

  it("abandon() on the thread hands over what it queued, then ends and closes the master", async () => {
    const r = observed("thread");
    void r.flood(8 * FLOOD_BYTES).catch(() => undefined);
    await until(() => r.reader.state === "thread", "the flood on the thread");
    r.reader.pause();
    await sleep(50);
    const before = r.bytes();
    r.reader.abandon();
    expect(r.bytes()).toBeGreaterThan(before);
    expect(r.reader.state).toBe("ended");
    expect(r.reader.fdOpen).toBe(false);
    expect(r.ended()).toBe(1);
    r.hangUp();
    r.close();
    expect(r.states.join(" ")).toMatch(/^loop (thread loop )*thread (loop )?ended closed$/);
  });
});
