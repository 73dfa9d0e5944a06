import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  FLOOD_BYTES,
  FLOOD_PACE_MS,
  PTY_READ_BYTES,
  QUIET_MS,
  THREAD_QUEUE_BYTES,
  floodReaderMode,
  forgetInput,
  masterMoves,
  noteInput,
  setFloodReader,
} from "../../src/sessions/pty-master.js";
import type { MasterReaderMode } from "../../src/sessions/pty-master.js";
import { alive, watch } from "./process-helpers.js";
import type { Watched } from "./process-helpers.js";
import { sleep } from "../helpers/sleep.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

/** What `seq from to` prints through a PTY (the terminal turns \n into \r\n). */
function seqText(from: number, to: number): string {
  let text = "";
  for (let i = from; i <= to; i++) text += `${i}\r\n`;
  return text;
}

afterEach(() => setFloodReader("thread"));

/**
 * A node program: `seq 1 400000` in one write (a flood), then `lines` lines "line-N GAP" every
 * `everyMs`, GAP being how long after its previous write the writer wrote it (ms), then quiet for
 * `lingerMs`. A loaded host can hold the writer past QUIET_MS: the gaps say so.
 */
function floodThenLines(lines: number, everyMs: number, lingerMs: number): string[] {
  const script = `
    const { writeSync } = require("node:fs");
    let text = "";
    for (let i = 1; i <= 400000; i++) text += i + "\\n";
    writeSync(1, text);
    let last = performance.now();
    let i = 0;
    const next = () => {
      const now = performance.now();
      writeSync(1, "line-" + ++i + " " + Math.round(now - last) + "\\n");
      last = performance.now();
      if (i < ${lines}) setTimeout(next, ${everyMs}); else setTimeout(() => {}, ${lingerMs});
    };
    setTimeout(next, ${everyMs});`;
  return [process.execPath, "-e", script];
}

/** What {@link floodThenLines} printed, checked whole and in order: each line's gap. */
function linesAfterFlood(w: Watched, lines: number): number[] {
  const text = w.text();
  const flood = seqText(1, 400000);
  expect(text.startsWith(flood)).toBe(true);
  const tail = text.slice(flood.length);
  expect(tail).toMatch(new RegExp(`^(line-\\d+ \\d+\\r\\n){${lines}}$`));
  expect([...tail.matchAll(/line-(\d+) /g)].map((m) => Number(m[1]))).toEqual(
    Array.from({ length: lines }, (_, i) => i + 1),
  );
  return [...tail.matchAll(/line-\d+ (\d+)\r\n/g)].map((m) => Number(m[1]));
}

/**
 * Runs `attempt` up to three times, until one whose writer kept time (no gap that counts reached
 * QUIET_MS - 20 ms: held that long, a move back to the event loop is right), and judges that one.
 */
async function whileWriterKeepsTime(attempt: () => Promise<{ gaps: number[]; judge: () => void }>): Promise<void> {
  const held: number[][] = [];
  for (let i = 0; i < 3; i++) {
    const { gaps, judge } = await attempt();
    if (!gaps.some((gap) => gap >= QUIET_MS - 20)) return judge();
    held.push(gaps);
  }
  throw new Error(`the writer was held past QUIET_MS in every try (gaps ${JSON.stringify(held)} ms)`);
}

/**
 * Runs `fn` while someone types into a PTY (what pty-process.ts notes on every write), then
 * forgets the typing so that the next test's flood is not taken for one during typing.
 */
async function whileTyping(fn: () => Promise<void>): Promise<void> {
  noteInput();
  const typing = setInterval(noteInput, 100);
  try {
    await fn();
  } finally {
    clearInterval(typing);
    forgetInput();
  }
}

/**
 * `seq 1 N` for an N it does not know yet: it counts on, and ends at the next multiple of
 * 10,000 once the file `stop` exists (looked for without a pause in the output).
 */
function countUntil(stop: string): string[] {
  const script =
    "BEGIN { for (i = 1; ; i++) { print i; if (i % 10000 == 0) { if ((getline x < f) >= 0) exit; close(f) } } }";
  return ["awk", "-v", `f=${stop}`, script];
}

/**
 * Pauses the output of `w`, a flood of `total` bytes of "a", waits `settleMs`, then checks that
 * nothing is handed over for `holdMs` while the producer waits; resumed, every byte arrives.
 */
async function pausedFloodWaits(w: Watched, total: number, settleMs: number, holdMs: number): Promise<void> {
  w.proc.pauseOutput();
  await sleep(settleMs);
  const held = w.bytes().length;
  await sleep(holdMs);
  expect(w.bytes().length).toBe(held);
  expect(alive(w.proc.pid)).toBe(true);
  w.proc.resumeOutput();
  expect(await w.exit).toEqual({ exitCode: 0, signal: null });
  expect(w.bytes().length).toBe(total);
  expect(w.bytes().every((b) => b === 0x61)).toBe(true);
}

describe("PTY masters: the event loop, and the reader thread for floods", () => {
  it("the reader thread is built and used on Linux", () => {
    // npm ci builds native/pty_reader.c (scripts/build-native.mjs); a failed build would only warn.
    expect(floodReaderMode()).toBe(process.platform === "linux" ? "thread" : "loop");
  });

  it("input to any PTY brings a flood back to the event loop mid-stream, without losing a byte", async () => {
    const moves = { ...masterMoves };
    const w = watch({ command: ["seq", "1", "1500000"], pty: true });
    await waitFor(() => masterMoves.toThread > moves.toThread, 5_000, "the flood on the thread");
    await whileTyping(async () => {
      await waitFor(() => masterMoves.toLoop > moves.toLoop, 5_000, "the flood back on the event loop");
      expect(await w.exit).toEqual({ exitCode: 0, signal: null });
    });
    expect(w.text() === seqText(1, 1_500_000)).toBe(true);
    // Not handed to the thread again while someone is typing.
    expect(masterMoves.toThread - moves.toThread).toBe(1);
  });

  it("on the thread, output that trickles in after a flood is handed over as it comes, not at the quiet check", async () => {
    // The thread wakes the event loop at once only for a full piece (64 KiB); a line is due 1 ms
    // after it was read.
    await whileWriterKeepsTime(async () => {
      const moves = { ...masterMoves };
      const w = watch({ command: floodThenLines(5, 30, 300), pty: true });
      await waitFor(() => masterMoves.toThread > moves.toThread, 5_000, "the flood on the thread");
      await waitFor(() => /line-5 \d+\r\n$/.test(w.text()), 5_000, "the last line");
      const movedBack = masterMoves.toLoop - moves.toLoop;
      expect(await w.exit).toEqual({ exitCode: 0, signal: null });
      // The lines came inside QUIET_MS: had they waited on the thread until the event loop's
      // quiet check, that check would have found the master quiet and moved it back first.
      return { gaps: linesAfterFlood(w, 5), judge: () => expect(movedBack).toBe(0) };
    });
  });

  it("on the thread, output queued while the event loop was held is not taken for quiet", async () => {
    // The test holds its own event loop past QUIET_MS while lines come every 20 ms: the quiet
    // timer runs before the thread's wake-up, and must find the lines the thread queued meanwhile.
    await whileWriterKeepsTime(async () => {
      const moves = { ...masterMoves };
      const w = watch({ command: floodThenLines(60, 20, 0), pty: true });
      await waitFor(() => masterMoves.toThread > moves.toThread, 5_000, "the flood on the thread");
      await waitFor(() => /line-3 \d+\r\n/.test(w.text()), 10_000, "the lines after the flood");
      const heldUntil = performance.now() + QUIET_MS * 3;
      while (performance.now() < heldUntil);
      await sleep(QUIET_MS / 2);
      const movedBack = masterMoves.toLoop - moves.toLoop;
      expect(await w.exit).toEqual({ exitCode: 0, signal: null });
      // Only the lines written up to the check count (the hold plus the sleep, ~18 lines).
      return { gaps: linesAfterFlood(w, 60).slice(0, 24), judge: () => expect(movedBack).toBe(0) };
    });
  });

  describe.each<MasterReaderMode>(["thread", "loop"])("floods read on the %s", (mode) => {
    it("every byte arrives once and in order, across the move to the thread and back", async () => {
      setFloodReader(mode);
      const moves = { ...masterMoves };
      // ~2.7 MB without a pause (a flood), quiet for longer than QUIET_MS, then a little more.
      const script = `seq 1 400000; sleep ${(QUIET_MS * 4) / 1000}; seq 400001 400100`;
      const w = watch({ command: ["sh", "-c", script], pty: true });
      expect(await w.exit).toEqual({ exitCode: 0, signal: null });
      expect(w.text() === seqText(1, 400100)).toBe(true);
      expect(w.outputAfterExit).toBe(false);
      const moved = mode === "thread" ? 1 : 0;
      expect(masterMoves.toThread - moves.toThread).toBe(moved);
      expect(masterMoves.toLoop - moves.toLoop).toBe(moved);
      // Nobody typed: the flood was never held back.
      expect(masterMoves.paced - moves.paced).toBe(0);
    });

    it("while anyone types, a flood rests after each read: it runs slower and every byte arrives", async () => {
      setFloodReader(mode);
      const moves = { ...masterMoves };
      await whileTyping(async () => {
        const started = performance.now();
        // ~2.3 MB. Past the first FLOOD_BYTES every read is followed by a rest of FLOOD_PACE_MS
        // (timers never fire early). A PTY read gives about 4 KiB (the n_tty buffer: 4.7 KiB on
        // average here, but up to 13 KiB on a loaded machine, where the kernel refills it during
        // the copy), and at most the reader's buffer; unpaced there are no rests at all.
        const w = watch({ command: ["seq", "1", "300000"], pty: true });
        expect(await w.exit).toEqual({ exitCode: 0, signal: null });
        const elapsed = performance.now() - started;
        expect(w.text() === seqText(1, 300_000)).toBe(true);
        const rests = masterMoves.paced - moves.paced;
        expect(rests).toBeGreaterThanOrEqual(Math.floor((w.bytes().length - FLOOD_BYTES) / PTY_READ_BYTES));
        expect(elapsed).toBeGreaterThanOrEqual(rests * FLOOD_PACE_MS);
        // Never handed to the thread while someone types.
        expect(masterMoves.toThread - moves.toThread).toBe(0);
      });
    });

    // Found by a full CI run: with the other test worker keeping the cores busy, a flood was never
    // paced, because the gateway's own stalls looked like pauses of the flood.
    it("a flood is still paced when the event loop itself stalls between reads (a busy machine)", async () => {
      setFloodReader(mode);
      const moves = { ...masterMoves };
      // The event loop is held 8 ms in every 12: every gap between reads is longer than FLOOD_GAP_MS.
      const stall = setInterval(() => {
        const until = performance.now() + 8;
        while (performance.now() < until);
      }, 4);
      try {
        await whileTyping(async () => {
          // It floods until it has been paced, however long the held loop takes to see a flood
          // (a fixed 2.3 MB took seconds longer, and on a busier machine could still end unpaced).
          const stop = join(tempDir(), "stop");
          const w = watch({ command: countUntil(stop), pty: true });
          await waitFor(() => masterMoves.paced - moves.paced > 10, 20_000, "a flood resting");
          writeFileSync(stop, "");
          expect(await w.exit).toEqual({ exitCode: 0, signal: null });
          const last = Number(/(\d+)\r\n$/.exec(w.text())?.[1]);
          expect(last % 10_000).toBe(0);
          expect(w.text() === seqText(1, last)).toBe(true);
          expect(masterMoves.paced - moves.paced).toBeGreaterThan(10);
          expect(masterMoves.toThread - moves.toThread).toBe(0);
        });
      } finally {
        clearInterval(stall);
      }
    });

    it("output paused while a flood rests stays paused when the rest ends; resumed, every byte arrives", async () => {
      setFloodReader(mode);
      const moves = { ...masterMoves };
      await whileTyping(async () => {
        const total = 4_000_000;
        const w = watch({ command: ["sh", "-c", `head -c ${total} /dev/zero | tr '\\0' a`], pty: true });
        await waitFor(() => masterMoves.paced - moves.paced > 10, 5_000, "a flood resting");
        await pausedFloodWaits(w, total, 50, 200);
      });
    });

    it("output paused on the thread holds the producer; resumed, every byte arrives", async () => {
      setFloodReader(mode);
      const total = 16_000_000;
      const w = watch({ command: ["sh", "-c", `head -c ${total} /dev/zero | tr '\\0' a`], pty: true });
      await waitFor(() => w.bytes().length > FLOOD_BYTES * 2, 5_000, "a flood under way");
      // Nothing is handed over while paused, and the producer is blocked (it has not finished).
      await pausedFloodWaits(w, total, 100, 300);
    });

    it("a grandchild flooding the terminal after the leader exits: the drain timeout ends the output", async () => {
      setFloodReader(mode);
      // The grandchild ignores the hangup and keeps writing; the drain timeout abandons the output.
      const script = "trap '' HUP; (while :; do seq 1 20000; done) & echo grandchild:$!; sleep 0.3; echo leader-done";
      const w = watch({ command: ["bash", "-c", script], pty: true, drainTimeoutMs: 300 });
      const exit = await w.exit;
      const grandchild = Number(/grandchild:(\d+)/.exec(w.text())![1]);
      try {
        expect(exit).toEqual({ exitCode: 0, signal: null });
        expect(w.text()).toContain("leader-done\r\n");
        const after = w.bytes().length;
        await new Promise((r) => setTimeout(r, 200));
        expect(w.bytes().length).toBe(after);
      } finally {
        process.kill(grandchild, "SIGKILL");
      }
    });

    it("dispose() in the middle of a flood stops the output at once", async () => {
      setFloodReader(mode);
      const moves = { ...masterMoves };
      const w = watch({ command: ["yes"], pty: true });
      // In thread mode, disposed while the reader thread has it. (Waited for, not assumed: a
      // loaded machine may pause the flood past FLOOD_GAP_MS.)
      const onThread = () => mode === "loop" || masterMoves.toThread > moves.toThread;
      await waitFor(
        () => w.bytes().length > FLOOD_BYTES + THREAD_QUEUE_BYTES && onThread(),
        5_000,
        "a flood under way",
      );
      w.proc.dispose();
      const after = w.bytes().length;
      expect(await w.proc.exited).toEqual({ exitCode: null, signal: "SIGKILL" });
      await new Promise((r) => setTimeout(r, 100));
      expect(w.bytes().length).toBe(after);
      expect(w.text().slice(0, 64)).toBe("y\r\n".repeat(21) + "y");
    });
  });
});
