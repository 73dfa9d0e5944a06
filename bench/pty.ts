import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EventLog, SqliteEventStore } from "../src/log/index.js";
import { spawn as spawnRawPty } from "node-pty";
import { systemClock } from "../src/core/clock.js";
import { OutputCoalescer } from "../src/core/output-coalescer.js";
import type { CoalescedOutput } from "../src/core/output-coalescer.js";
import { piecePools } from "../src/core/buffer-pool.js";
import { spawnTerminalProcess } from "../src/sessions/terminal-process.js";
import { fmt, median, sideBySide } from "./stats.js";
import type { BenchSection } from "./types.js";

/**
 * PTY read throughput: a 50 MB output read through TerminalProcess +
 * OutputCoalescer + Utf8Chunker, as a ratio of node-pty reading the same command raw
 * (`onData` with `encoding: null`, nothing done with the bytes), alternating in one process.
 */

/** Size of the output: 50 MiB. */
export const PTY_BENCH_BYTES = 50 * 1024 * 1024;
/** The command both sides run: PTY_BENCH_BYTES of "a" (no newlines, so the terminal adds nothing). */
export const PTY_BENCH_COMMAND: readonly string[] = ["sh", "-c", `head -c ${PTY_BENCH_BYTES} /dev/zero | tr '\\0' a`];
/** Rounds per side; the figures are medians (9: the machine is shared, single runs are noisy). */
export const PTY_BENCH_ROUNDS = 9;
/** Goal: PTY-to-log throughput ≥ 0.9 × raw node-pty. */
export const PTY_BENCH_GOAL_RATIO = 0.9;
/** One run that takes longer than this is broken, not slow. */
const RUN_TIMEOUT_MS = 60_000;

/** Bytes read, milliseconds from spawn until the reader saw the end, and this process's CPU time meanwhile. */
export interface PtyReadMeasure {
  bytes: number;
  ms: number;
  /** User + system CPU of this (the reading) process: the reader's cost, whatever else loads the machine. */
  cpuMs: number;
}

/** Starts a measurement; the returned function completes it. */
function startMeasure(): (bytes: number) => PtyReadMeasure {
  const started = performance.now();
  const cpu = process.cpuUsage();
  return (bytes) => {
    const used = process.cpuUsage(cpu);
    return { bytes, ms: performance.now() - started, cpuMs: (used.user + used.system) / 1000 };
  };
}

const ENV: Record<string, string> = { PATH: process.env["PATH"] ?? "/usr/bin:/bin" };

/**
 * The baseline: node-pty's own reader, bytes counted and dropped, until its `onExit`.
 * (Its `onExit` may come before the last few KiB, see src/sessions/pty-process.ts; that
 * only flatters the baseline.)
 *
 * With `workUsPer64KiB` (the sensitivity rows): a busy wait of that long on the reading
 * thread after every 64 KiB, standing in for whatever a gateway does per event. A PTY's
 * kernel buffer holds under a millisecond of this output, so the producer waits out most of it.
 */
export function measureRawPty(command: readonly string[], workUsPer64KiB = 0): Promise<PtyReadMeasure> {
  const [file, ...args] = command;
  if (file === undefined) return Promise.reject(new Error("empty command"));
  return withTimeout(
    new Promise((resolve) => {
      const done = startMeasure();
      let bytes = 0;
      let sinceWork = 0;
      const term = spawnRawPty(file, args, {
        name: "xterm-256color",
        cols: 80,
        rows: 24,
        cwd: process.cwd(),
        env: ENV,
        encoding: null,
      });
      const data = term.onData((chunk) => {
        const n = (chunk as unknown as Buffer).length;
        bytes += n;
        if (workUsPer64KiB === 0) return;
        sinceWork += n;
        if (sinceWork >= 65536) {
          sinceWork = 0;
          const until = performance.now() + workUsPer64KiB / 1000;
          while (performance.now() < until);
        }
      });
      const exit = term.onExit(() => {
        data.dispose();
        exit.dispose();
        resolve(done(bytes));
      });
    }),
  );
}

/**
 * Switchboard's path up to the log: TerminalProcess (PTY) → OutputCoalescer → pieces, until
 * `exit` (after the last byte). `onPiece` receives every piece; pass the log's append to
 * measure PTY→log (the default drops them).
 */
export function measurePtyPipeline(
  command: readonly string[],
  // Dropped: a pooled buffer goes back at once, as the log gives it back once done with it.
  onPiece: (piece: CoalescedOutput) => void = (piece) => piece.pool?.give(piece.bytes.buffer),
): Promise<PtyReadMeasure> {
  return withTimeout(
    new Promise((resolve) => {
      const done = startMeasure();
      let bytes = 0;
      const coalescer = new OutputCoalescer({
        clock: systemClock,
        pools: piecePools,
        emit: (piece) => {
          bytes += piece.bytes.length;
          onPiece(piece);
        },
      });
      spawnTerminalProcess({
        command,
        cwd: process.cwd(),
        env: ENV,
        pty: true,
        onOutput: (stream, chunk) => coalescer.push(stream, chunk),
        onExit: () => {
          coalescer.flush();
          coalescer.dispose();
          resolve(done(bytes));
        },
      });
    }),
  );
}

function withTimeout<T>(promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`PTY bench run took over ${RUN_TIMEOUT_MS} ms`)), RUN_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Work added per 64 KiB read in the sensitivity rows (µs), and runs per setting. */
const SENSITIVITY_WORK_US = [0, 100, 200, 400];
const SENSITIVITY_RUNS = 3;

/** Bytes this process caused to be written to storage so far (Linux /proc/self/io `write_bytes`). */
function diskWritten(): number {
  return Number(/^write_bytes: (\d+)$/m.exec(readFileSync("/proc/self/io", "utf8"))?.[1] ?? Number.NaN);
}

/** MB/s of one run (MB = 10^6 bytes). */
const mbPerSecond = (m: PtyReadMeasure): number => m.bytes / 1e6 / (m.ms / 1000);

export async function run(): Promise<BenchSection> {
  const rawRuns: PtyReadMeasure[] = [];
  const oursRuns: PtyReadMeasure[] = [];
  const result = await sideBySide(
    PTY_BENCH_ROUNDS,
    async () => {
      const m = await measureRawPty(PTY_BENCH_COMMAND);
      rawRuns.push(m);
      return mbPerSecond(m);
    },
    async () => {
      const m = await measurePtyPipeline(PTY_BENCH_COMMAND);
      oursRuns.push(m);
      return mbPerSecond(m);
    },
  );
  // The whole PTY → log path: pieces appended to a real SQLite log (group commit), flushed before the clock stops.
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-pty-"));
  // Bytes this process has the kernel write to storage (all threads; counted when written, not when flushed).
  const writtenBefore = diskWritten();
  const events = new EventLog({ store: new SqliteEventStore(join(dir, "log.db")), clock: systemClock });
  let logged = 0;
  const toLog = await sideBySide(
    PTY_BENCH_ROUNDS,
    async () => mbPerSecond(await measureRawPty(PTY_BENCH_COMMAND)),
    async () => {
      const log = events.create(`s${logged++}`);
      const t0 = performance.now();
      await measurePtyPipeline(PTY_BENCH_COMMAND, (piece) =>
        log.appendOutputBytes(piece.stream, piece.bytes, piece.binary, piece.pool),
      );
      events.flush();
      if (log.outputBytes !== PTY_BENCH_BYTES) throw new Error(`the log holds ${log.outputBytes} bytes`);
      return PTY_BENCH_BYTES / 1e6 / ((performance.now() - t0) / 1000);
    },
  );
  // Closing checkpoints what is left: the log's whole cost on disk (the raw runs in between write nothing).
  events.close();
  const writtenPerByte = (diskWritten() - writtenBefore) / (logged * PTY_BENCH_BYTES);
  rmSync(dir, { recursive: true, force: true });
  // Sensitivity: interleaved settings, medians.
  const sensitivity = new Map<number, number[]>(SENSITIVITY_WORK_US.map((w) => [w, []]));
  for (let i = 0; i < SENSITIVITY_RUNS; i++) {
    for (const w of SENSITIVITY_WORK_US)
      sensitivity.get(w)!.push(mbPerSecond(await measureRawPty(PTY_BENCH_COMMAND, w)));
  }
  const sens = SENSITIVITY_WORK_US.map((w) => ({ w, mbs: median(sensitivity.get(w)!) }));
  const sens0 = sens[0]!.mbs;
  const logRatio = toLog.ratio;
  const ratio = result.ratio;
  const complete = oursRuns.every((m) => m.bytes === PTY_BENCH_BYTES);
  const rawMin = Math.min(...rawRuns.map((m) => m.bytes));
  const runs = (values: number[]): string => values.map((v) => fmt(v)).join(", ");
  const cpuPerMb = (ms: PtyReadMeasure[]): number => median(ms.map((m) => m.cpuMs / (m.bytes / 1e6)));
  const oursCpu = cpuPerMb(oursRuns);
  const rawCpu = cpuPerMb(rawRuns);
  return {
    title: "PTY read throughput",
    rows: [
      {
        measure: `PTY read, 50 MiB`,
        ours: `${fmt(result.subject)} MB/s`,
        baseline: `raw node-pty: ${fmt(result.baseline)} MB/s`,
        ratio: ratio.toFixed(2),
        goal: `≥ ${PTY_BENCH_GOAL_RATIO}`,
        met: ratio >= PTY_BENCH_GOAL_RATIO,
      },
      {
        measure: `PTY → log (SQLite, flushed), 50 MiB`,
        ours: `${fmt(toLog.subject)} MB/s`,
        baseline: `raw node-pty: ${fmt(toLog.baseline)} MB/s`,
        ratio: logRatio.toFixed(2),
        goal: `≥ ${PTY_BENCH_GOAL_RATIO}`,
        met: logRatio >= PTY_BENCH_GOAL_RATIO,
      },
      {
        measure: `CPU of the reading process per MB`,
        ours: `${fmt(oursCpu, 2)} ms`,
        baseline: `raw node-pty: ${fmt(rawCpu, 2)} ms`,
        ratio: (oursCpu / rawCpu).toFixed(2),
      },
      {
        measure: `disk written per byte of output logged (WAL, database, output files)`,
        ours: `${fmt(writtenPerByte, 2)} bytes`,
        baseline: `the output itself: 1 byte`,
        ratio: writtenPerByte.toFixed(2),
      },
    ],
    tables: [
      [
        `How sensitive a PTY producer is to its reader: raw node-pty with a busy wait on the reading thread after every 64 KiB (medians of ${SENSITIVITY_RUNS}, interleaved).`,
        "",
        "| work per 64 KiB on the reading thread | throughput | of none |",
        "|---|---|---|",
        ...sens.map((r) => `| ${r.w} µs | ${fmt(r.mbs)} MB/s | ${(r.mbs / sens0).toFixed(2)} |`),
      ].join("\n"),
    ],
    method: [
      `\`${PTY_BENCH_COMMAND.map((arg) => (arg.includes(" ") ? `"${arg}"` : arg)).join(" ")}\` (${fmt(PTY_BENCH_BYTES / 2 ** 20)} MiB) in a PTY, read until exit; ${PTY_BENCH_ROUNDS} runs per side and row, alternating, in one process. MB/s are medians; a ratio is the median of each run's ratio to the baseline run next to it.`,
      "PTY read: `TerminalProcess` → `OutputCoalescer` → `Utf8Chunker`, byte pieces ready to append. PTY → log: the same pieces appended to a `SessionLog` on SQLite (with its output files) and flushed.",
      "Baseline: node-pty 1.1.0 `spawn` with `encoding: null`, bytes counted and dropped, until its `onExit`. Disk written: `/proc/self/io` while the runs logged and the log closed, per byte of output.",
      "A PTY read returns at most ~4 KiB and the kernel buffer holds under a millisecond of this flood, so the reader's work per event adds to the producer's time (the sweep above).",
    ],
    notes: [
      `Runs (MB/s): PTY read ${runs(result.subjectRuns)}, its baseline ${runs(result.baselineRuns)}; PTY → log ${runs(toLog.subjectRuns)}, its baseline ${runs(toLog.baselineRuns)}.`,
      `Bytes delivered: Switchboard ${complete ? "all of them in every run" : `**short**: ${oursRuns.map((m) => fmt(m.bytes)).join(", ")}`}; baseline at least ${fmt(rawMin)} of ${fmt(PTY_BENCH_BYTES)} (node-pty's \`onExit\` may precede the tail).`,
    ],
  };
}
