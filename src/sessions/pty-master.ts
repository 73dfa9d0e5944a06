import { readSync } from "node:fs";
import type { OnReadOpts, SocketConstructorOpts } from "node:net";
import { ReadStream } from "node:tty";
import { TimerSet } from "../system/timer-set.js";
import {
  FLOOD_BYTES,
  FLOOD_GAP_MS,
  FLOOD_PACE_MS,
  FLOOD_STALL_MS,
  FULL_READ_BYTES,
  QUIET_MS,
  floodReaderMode,
  masterMoves,
  typing,
} from "./pty-flood.js";
import { THREAD_QUEUE_BYTES, readerThread } from "./pty-reader-thread.js";
import type { ReaderThread } from "./pty-reader-thread.js";
import { CLOSED, DRAINING, ENDED, LOOP, READER_MOVES, RESTING } from "./pty-reader-state.js";
import type { ReaderAt, ReaderState } from "./pty-reader-state.js";
import { InternalError } from "../protocol/errors.js";

// Part of the reader's API, defined with the flood policy and the thread they belong to.
export {
  FLOOD_BYTES,
  FLOOD_GAP_MS,
  FLOOD_PACE_MS,
  FLOOD_STALL_MS,
  FULL_READ_BYTES,
  INTERACTIVE_MS,
  QUIET_MS,
  floodReaderMode,
  forgetInput,
  masterMoves,
  noteInput,
  setFloodReader,
} from "./pty-flood.js";
export type { MasterReaderMode } from "./pty-flood.js";
export { THREAD_QUEUE_BYTES } from "./pty-reader-thread.js";
export { READER_MOVES } from "./pty-reader-state.js";
export type { ReaderAt, ReaderState } from "./pty-reader-state.js";

/**
 * Reading a PTY master: on the event loop while its output is interactive, on a reader thread
 * (native/pty_reader.c, epoll) while it floods, so the gateway's work overlaps the producer's
 * instead of adding to it (a PTY buffers only ~4 KiB). A flood moves after FLOOD_BYTES, comes
 * back after QUIET_MS of quiet or at once while anyone types (`noteInput`, paced by FLOOD_PACE_MS).
 * Read until EIO (pty-process.ts holds the slave until the child exits) or `abandon()`; without
 * the addon all stay on the loop. docs/benchmarks.md "PTY read throughput"; bench/README.md.
 */
export interface MasterReader {
  /** The master fd is still open: input may be written to it and it may be resized. */
  readonly fdOpen: boolean;
  /** Stops reading: the producer blocks once the kernel's buffer is full. */
  pause(): void;
  resume(): void;
  /** Reads what is buffered now, closes the master (a grandchild on the slave gets a hangup), then `ended`. */
  abandon(): void;
  /** Closes the master without reading further; no more calls to the sink. Idempotent. */
  close(): void;
}

export interface MasterSink {
  /** A chunk of output, valid only during the call (the sink copies what it keeps). */
  output(chunk: Uint8Array): void;
  /** The output has ended: EIO/EOF, a read error, or `abandon()`. Called once. */
  ended(): void;
}

/** Size of the buffer every read of a master goes into (a PTY read returns at most ~4 KiB anyway). */
export const PTY_READ_BYTES = 64 * 1024;
/**
 * The one buffer all PTY output on the event loop is read into (stream reads, drains, thread
 * batches). Safe because reads start only from the event loop, never inside the sink, and the
 * sink copies what it keeps. A fresh 64 KiB per read cost ~30% more CPU (bench/README.md).
 */
const readBuffer = Buffer.allocUnsafe(PTY_READ_BYTES);
/** Most bytes one synchronous drain reads, so a writer that never stops cannot hold the event loop. */
export const PTY_DRAIN_MAX_BYTES = 4 * 1024 * 1024;
/** When the master reports EOF but still has a slave open elsewhere: how often to read it again. */
export const PTY_DRAIN_POLL_MS = 10;

/** Reads `fd`, a non-blocking PTY master, into `sink`. */
export function readMaster(fd: number, sink: MasterSink): MasterReader {
  return new PtyMasterReader(fd, sink, floodReaderMode() === "thread" ? readerThread() : null);
}

// ---- one master ----

/**
 * The stream (libuv, on the event loop) owns the fd and reads whenever the master is not on the
 * thread. libuv ends it at POLLHUP after a partial read, and every PTY read is partial, so on `end`
 * the tail is read synchronously until EIO (`allowHalfOpen` keeps the fd open for that).
 * `paused` (the sink's flow control) and `fdOpen` (Node may close the fd if libuv read EIO itself)
 * are apart from the state: either can hold in any state.
 */
export class PtyMasterReader implements MasterReader {
  private _fdOpen = true;
  private _state: ReaderState = LOOP;
  private readonly fd: number;
  private readonly sink: MasterSink;
  private readonly stream: ReadStream;
  /** Null: this master is always read on the event loop. */
  private thread: ReaderThread | null;
  private paused = false;
  /** Output of the current burst on the event loop, and when its last read was. */
  private burstBytes = 0;
  private lastReadAt = 0;
  private readonly timers = new TimerSet({
    /** Ends a flood's rest (`resting`). */
    pace: { after: FLOOD_PACE_MS, fire: () => this.endRest() },
    /** While on the thread: back to the event loop once the master has been quiet for QUIET_MS. */
    quiet: { after: QUIET_MS, fire: () => this.checkQuiet() },
    /** While draining: reads the tail again (not unref()ed: the output has not ended yet). */
    poll: { after: PTY_DRAIN_POLL_MS, fire: () => this.drainAfterEnd(), ref: true },
  });

  constructor(fd: number, sink: MasterSink, thread: ReaderThread | null) {
    this.fd = fd;
    this.sink = sink;
    this.thread = thread;
    // `onread` is a net.Socket constructor option (Node ≥ 12) that @types/node lists only for connect().
    const options: SocketConstructorOpts & { onread: OnReadOpts } = {
      allowHalfOpen: true,
      onread: {
        buffer: readBuffer,
        callback: (n, buffer) => {
          this.sink.output(buffer.subarray(0, n));
          this.countBurst(n);
          return true;
        },
      },
    };
    this.stream = new ReadStream(fd, options);
    // With `onread` there are no 'data' listeners to start the flow; 'end', 'error' and 'close' come as usual.
    this.stream.resume();
    this.stream.on("end", () => this.drainAfterEnd());
    this.stream.on("error", () => {
      // Node destroyed the stream, so the fd is closed. EIO is the normal end (the slave
      // side is closed and everything was read); any other read error ends the output too.
      this._fdOpen = false;
      this.end();
    });
    this.stream.on("close", () => {
      this._fdOpen = false;
      this.end();
    });
  }

  get fdOpen(): boolean {
    return this._fdOpen;
  }

  /** Where the master is read (tests). */
  get state(): ReaderAt {
    return this._state.at;
  }

  pause(): void {
    this.paused = true;
    const state = this._state;
    switch (state.at) {
      case "thread":
        this.thread!.native.pause(state.id);
        return;
      case "loop":
      case "resting":
        this.pauseStream();
        return;
      case "draining":
      case "ended":
      case "closed":
        return;
    }
  }

  resume(): void {
    this.paused = false;
    const state = this._state;
    switch (state.at) {
      case "thread":
        this.thread!.native.resume(state.id);
        // What the thread queued before the pause is not announced again.
        this.scheduleTake(state);
        return;
      case "loop":
        if (this._fdOpen) this.stream.resume();
        return;
      case "resting": // resumed when the rest ends
      case "draining":
      case "ended":
      case "closed":
        return;
    }
  }

  abandon(): void {
    if (this._state.at === "thread") this.leaveThread();
    // (The sink may have closed us while the thread's queue was taken.)
    if (this._state.at === "closed") return;
    if (this._fdOpen) readAvailable(this.fd, (chunk) => this.sink.output(chunk));
    this.closeStream();
    this.end();
  }

  close(): void {
    const state = this._state;
    if (state.at === "closed") return;
    this.timers.stopAll();
    if (state.at === "thread") this.releaseThread(state.id);
    this.moveTo(CLOSED);
    this.closeStream();
  }

  private moveTo(next: ReaderState): void {
    if (!READER_MOVES[this._state.at].includes(next.at))
      throw new InternalError(`PTY master reader: no move from ${this._state.at} to ${next.at}`);
    this._state = next;
  }

  // ---- between the event loop and the thread ----

  /**
   * A read on the event loop: once the master floods, it rests FLOOD_PACE_MS after each read
   * while someone types, and is handed to the thread (if there is one) otherwise.
   */
  private countBurst(n: number): void {
    const now = performance.now();
    const gap = now - this.lastReadAt;
    if (gap > FLOOD_GAP_MS && (n < FULL_READ_BYTES || gap > FLOOD_STALL_MS)) this.burstBytes = 0;
    this.lastReadAt = now;
    this.burstBytes += n;
    if (this.burstBytes < FLOOD_BYTES || this.paused || !this._fdOpen) return;
    const at = this._state.at;
    if (at !== "loop" && at !== "resting") return;
    if (typing(now)) this.rest();
    else if (this.thread !== null && at === "loop") this.enterThread(this.thread);
  }

  /**
   * Stops reading for FLOOD_PACE_MS. The rest is not a pause of the flood's: its next read
   * counts from the rest's end, so the master is still a flood when the rest ends, even when a
   * busy machine fires the timer later than FLOOD_GAP_MS.
   */
  private rest(): void {
    this.moveTo(RESTING);
    masterMoves.paced++;
    this.pauseStream();
    this.timers.start("pace");
  }

  private endRest(): void {
    this.lastReadAt = performance.now();
    if (this._state.at !== "resting") return;
    this.moveTo(LOOP);
    if (!this.paused && this._fdOpen) this.stream.resume();
  }

  private enterThread(thread: ReaderThread): void {
    let id: number;
    try {
      id = thread.native.open(this.fd, THREAD_QUEUE_BYTES);
    } catch {
      // epoll refused the fd (out of memory, say): this master stays on the event loop.
      this.thread = null;
      return;
    }
    // Reading stops at once (with `onread` nothing is buffered in Node), so the thread's first
    // read continues exactly where the stream's last one ended. (The thread may already be
    // reading: the stream does not read again before this callback has returned.)
    this.moveTo({ at: "thread", id, takeScheduled: false });
    this.pauseStream();
    masterMoves.toThread++;
    thread.ready.set(id, () => this.takeQueued());
    this.timers.start("quiet");
  }

  /** Every QUIET_MS on the thread: back to the event loop once quiet, or when someone types (`noteInput`). */
  private checkQuiet(): void {
    const state = this._state;
    if (state.at !== "thread") return;
    // What the thread queued while the event loop was held is output, not quiet: a timer can run
    // before the thread's wake-up in the same turn. Taking it moves `lastReadAt` on.
    if (!this.paused) this.takeAvailable(state);
    if (this._state !== state) return;
    const now = performance.now();
    if (this.paused || (now - this.lastReadAt < QUIET_MS && !typing(now))) {
      this.timers.start("quiet");
      return;
    }
    if (!this.leaveThread()) return;
    masterMoves.toLoop++;
    this.burstBytes = 0;
    if (this._fdOpen && !this.paused) this.stream.resume();
  }

  /**
   * Stops the thread reading the master, hands the sink what it had queued (it is the older
   * output) and moves back to the loop, unless the sink closed or abandoned us meanwhile
   * (then false).
   */
  private leaveThread(): boolean {
    const state = this._state;
    if (state.at !== "thread") return false;
    this.thread!.native.stop(state.id);
    while (this.takeOnce(PTY_READ_BYTES) > 0);
    if (this._state !== state) return false;
    this.releaseThread(state.id);
    this.moveTo(LOOP);
    return true;
  }

  /** Releases the master from the thread (dropping nothing: callers take what is queued first). */
  private releaseThread(id: number): void {
    this.timers.stop("quiet");
    this.thread!.ready.delete(id);
    this.thread!.native.release(id);
  }

  /** Hands what the thread queued to the sink, at most one buffer per turn of the event loop per master. */
  private takeQueued(): void {
    const state = this._state;
    if (state.at !== "thread") return;
    state.takeScheduled = false;
    if (this.paused) return;
    this.takeAvailable(state);
  }

  /** One buffer of what the thread queued, and another take scheduled if it was full. */
  private takeAvailable(state: ReaderState & { at: "thread" }): void {
    const n = this.takeOnce(PTY_READ_BYTES);
    if (n < 0) {
      if (this._state !== state) return;
      this.releaseThread(state.id);
      this.moveTo(LOOP);
      this.end();
      return;
    }
    // A full buffer: probably more behind it; the thread does not announce what it already had.
    if (n === PTY_READ_BYTES && this._state === state) this.scheduleTake(state);
  }

  /** One take into the shared buffer, passed to the sink: bytes (> 0), 0 if none now, -1 at the end. */
  private takeOnce(max: number): number {
    // The sink may have closed us during the previous chunk.
    const state = this._state;
    if (state.at !== "thread") return -1;
    const buffer = max < readBuffer.length ? readBuffer.subarray(0, max) : readBuffer;
    const n = this.thread!.native.take(state.id, buffer);
    if (n > 0) {
      this.lastReadAt = performance.now();
      this.sink.output(buffer.subarray(0, n));
    }
    return n;
  }

  /**
   * Takes again at the next check phase. (Not a {@link TimerSet} timer: the thread's wake-up also
   * takes, and each may start another take; a take outside the `thread` state does nothing.)
   */
  private scheduleTake(state: ReaderState & { at: "thread" }): void {
    if (state.takeScheduled) return;
    state.takeScheduled = true;
    setImmediate(() => this.takeQueued());
  }

  // ---- the stream ----

  private pauseStream(): void {
    // With `onread`, pausing stops the handle reading at once (nothing is buffered in Node).
    if (this._fdOpen) this.stream.pause();
    // A resume() still pending from the stream's start would read again on the next tick.
    process.nextTick(() => {
      const at = this._state.at;
      if ((this.paused || at === "resting" || at === "thread") && this._fdOpen) this.stream.pause();
    });
  }

  /** The stream ended, but the kernel may still hold the tail. */
  private drainAfterEnd(): void {
    const at = this._state.at;
    // On the thread, the thread reads to the end (a take then says -1).
    if (at === "thread" || at === "ended" || at === "closed") return;
    this.moveTo(DRAINING);
    // The master stays open until close(): the child may still be alive (see pty-process.ts).
    const sink = (chunk: Uint8Array): void => {
      if (this._state.at !== "closed") this.sink.output(chunk);
    };
    if (!this._fdOpen || readAvailable(this.fd, sink) === "eof") {
      this.end();
      return;
    }
    // EAGAIN: someone opened the slave again after it was closed. Keep reading until EOF;
    // the lifecycle's drain timeout ends this if the child has exited.
    if (this._state.at === "draining") this.timers.start("poll");
  }

  private closeStream(): void {
    if (!this._fdOpen) return;
    this._fdOpen = false;
    // Closes the fd. Any grandchild still on the slave gets a hangup.
    this.stream.destroy();
  }

  /** The output ended: tells the sink once (from the thread, what it queued comes first). */
  private end(): void {
    if (this._state.at === "thread") this.leaveThread();
    const at = this._state.at;
    if (at === "ended" || at === "closed") return;
    this.timers.stop("poll");
    this.moveTo(ENDED);
    this.sink.ended();
  }
}

/** Reads `fd` synchronously until it is empty ("again") or at its end ("eof"), at most PTY_DRAIN_MAX_BYTES. */
function readAvailable(fd: number, output: (chunk: Uint8Array) => void): "eof" | "again" {
  for (let total = 0; total < PTY_DRAIN_MAX_BYTES;) {
    let n: number;
    try {
      n = readSync(fd, readBuffer, 0, readBuffer.length, null);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EAGAIN" || code === "EWOULDBLOCK") return "again";
      // EIO: no slave left and nothing more to read. Any other error: the master is
      // unusable, which ends the output just the same.
      return "eof";
    }
    if (n === 0) return "eof";
    total += n;
    output(readBuffer.subarray(0, n));
  }
  return "again";
}
