import { Worker } from "node:worker_threads";
import { LOG_FLUSH_WAIT_MS } from "./commit-limits.js";
import { InternalError } from "../protocol/errors.js";

/** How long after the writer thread stopped it is started again; doubled after each start that fails, up to the max. */
export const LOG_WRITER_RESTART_MS = 1000;
export const LOG_WRITER_RESTART_MAX_MS = 60_000;
/**
 * How long closing waits for a thread still starting to open its file and close it again (it
 * takes tens of ms; one that cannot load its modules never says, and is left to end with the process).
 */
export const LOG_WRITER_START_CLOSE_MS = 5_000;

/** What the writer thread posts back (see sqlite-writer.mjs), but `ready`, which this class takes. */
export type WriterMessage =
  | { checkpointed: { log?: number; done?: number; busy?: boolean; ms?: number; error?: string } }
  | { batch: number; ms?: number; error?: undefined; buffer?: ArrayBuffer }
  | { batch: number; error: string; code?: string; attempt?: number }
  | { warning: string };

export interface WriterThreadOptions {
  workerData: { file: string; outputDir: string; retryMs: number };
  /** Default {@link LOG_WRITER_RESTART_MS}; tests make it short. */
  restartMs?: number;
  onMessage(message: WriterMessage): void;
  /** The thread has opened the file and takes batches. */
  onReady(): void;
  /**
   * The thread stopped before `close()` (it could not open the file, could not load its modules
   * for lack of file descriptors, or died): what it held is gone. It is started again after
   * {@link LOG_WRITER_RESTART_MS}, and again, twice as late each time, while it keeps failing.
   */
  onStopped(reason: string, restartInMs: number): void;
}

/**
 * The log's writer thread (`sqlite-writer.mjs`), kept running: started again whenever it stops,
 * with a growing delay while it cannot start. Nothing may be posted to it until it is
 * {@link ready} (a thread that dies while it starts would take batches posted to it along).
 */
export class WriterThread {
  private worker: Worker | undefined;
  private _ready = false;
  private restartMs: number;
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  /** Set by the thread when its start is over (see sqlite-writer.mjs); one per thread started. */
  private started = new Int32Array(new SharedArrayBuffer(4));

  constructor(private readonly options: WriterThreadOptions) {
    this.restartMs = options.restartMs ?? LOG_WRITER_RESTART_MS;
    this.start();
  }

  /** The thread has opened the file and takes batches. */
  get ready(): boolean {
    return this._ready;
  }

  /** Posts to the thread; only while it is {@link ready}. */
  post(message: unknown, transfer?: ArrayBuffer[]): void {
    if (!this._ready || this.worker === undefined) throw new InternalError("the log's writer thread is not running");
    this.worker.postMessage(message, transfer);
  }

  /** Stops the thread as if it had died (tests). */
  kill(): Promise<number> {
    return this.worker?.terminate() ?? Promise.resolve(0);
  }

  /**
   * Closes the thread's connection and waits for it (up to {@link LOG_FLUSH_WAIT_MS}; a thread
   * still starting, up to {@link LOG_WRITER_START_CLOSE_MS}). Never `terminate()`: a SQLite error
   * thrown in a thread being terminated aborts the whole process (writer-thread-close.test.ts).
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.restartTimer);
    const worker = this.worker;
    if (worker === undefined) return;
    if (!this._ready) {
      // Queued until the thread listens, right after it has opened the file; a start that fails
      // wakes `started` instead.
      worker.postMessage({ close: true, signal: this.started });
      Atomics.wait(this.started, 0, 0, LOG_WRITER_START_CLOSE_MS);
      return;
    }
    this._ready = false;
    const signal = new Int32Array(new SharedArrayBuffer(4));
    worker.postMessage({ close: true, signal });
    Atomics.wait(signal, 0, 0, LOG_FLUSH_WAIT_MS);
  }

  private start(): void {
    let worker: Worker;
    try {
      this.started = new Int32Array(new SharedArrayBuffer(4));
      const workerData = { ...this.options.workerData, started: this.started };
      worker = new Worker(new URL("./sqlite-writer.mjs", import.meta.url), { workerData });
    } catch (error) {
      this.stopped(`it could not be started: ${(error as Error).message}`);
      return;
    }
    worker.unref();
    this.worker = worker;
    let reason = "it exited";
    worker.on("message", (message: WriterMessage | { ready: true }) => {
      if (worker !== this.worker) return;
      if ("ready" in message) {
        this._ready = true;
        this.restartMs = this.options.restartMs ?? LOG_WRITER_RESTART_MS;
        this.options.onReady();
      } else {
        this.options.onMessage(message);
      }
    });
    worker.on("error", (error) => (reason = error.message));
    worker.on("exit", () => {
      if (worker !== this.worker || this.closed) return;
      this.worker = undefined;
      this.stopped(reason);
    });
  }

  private stopped(reason: string): void {
    this._ready = false;
    if (this.closed) return;
    this.options.onStopped(reason, this.restartMs);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.closed) this.start();
    }, this.restartMs).unref();
    this.restartMs = Math.min(this.restartMs * 2, LOG_WRITER_RESTART_MAX_MS);
  }
}
