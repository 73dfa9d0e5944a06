import type { Worker } from "node:worker_threads";
import { startModuleWorker } from "../../system/module-worker.js";
import { InternalError } from "../../protocol/errors.js";
import type { SearchReply, SearchRequest } from "./search-messages.js";

/** How long after the search thread stopped it is started again; doubled while it keeps stopping, up to the max. */
export const SEARCH_RESTART_MS = 1000;
export const SEARCH_RESTART_MAX_MS = 60_000;
/**
 * Most milliseconds `close()` waits for the thread to finish the deletions queued and close its
 * file. What is left then is finished by the next start, which forgets every session the log no
 * longer holds.
 */
export const SEARCH_CLOSE_WAIT_MS = 30_000;
/**
 * The indexing thread's nice value (Linux): under CPU contention it gets about a tenth of what the
 * threads carrying output get, so appends are not slowed by indexing them (bench/search.ts, the
 * append ratio); it catches up when they idle. The query thread keeps the normal priority.
 */
export const SEARCH_THREAD_NICE = 10;
/** Names a built search-worker.js for a gateway that runs from source (src/*.ts) to load. */
export const SEARCH_WORKER_ENV = "SWITCHBOARD_SEARCH_WORKER";

/** What a thread does: `index` writes the file (one thread), `query` reads it. */
export type SearchThreadRole = "index" | "query";

/** What the thread is started with. */
export interface SearchThreadData {
  file: string;
  role: SearchThreadRole;
  /** Set to 1 by the thread once it has closed its file, or has stopped. */
  done: Int32Array;
}

type Asked = Extract<SearchRequest, { req: number }>;
type Answer = Extract<SearchReply, { req: number }>;

export interface SearchThreadOptions {
  /** The index's file. */
  file: string;
  role: SearchThreadRole;
  /** A thread was started: nothing posted to the one before reaches it (the caller posts `open` again). */
  onStarted(): void;
  /** Replies other than answers to {@link ask}. */
  onReply(reply: Exclude<SearchReply, Answer>): void;
  /** The thread stopped before `close()`; it is started again in `restartInMs`. */
  onStopped(reason: string, restartInMs: number): void;
  /** Default {@link SEARCH_RESTART_MS}; tests make it short. */
  restartMs?: number;
}

/**
 * A worker thread of the search index (search-worker.ts): the one that writes `search.db`, to
 * which the event loop posts batches of the log, or the one that answers queries from it. The
 * event loop never touches the file. Kept running: started again whenever it stops,
 * later each time while it keeps stopping; a question asked of a thread that stopped is asked
 * again of the next one (once).
 */
export class SearchThread {
  private worker: Worker | undefined;
  private done = new Int32Array(new SharedArrayBuffer(4));
  private nextReq = 1;
  private readonly pending = new Map<number, { request: Asked; posted: number; settle: (r: Answer | Error) => void }>();
  private restartMs: number;
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(private readonly options: SearchThreadOptions) {
    this.restartMs = options.restartMs ?? SEARCH_RESTART_MS;
  }

  /** Whether a thread runs: what is posted now reaches it. */
  get running(): boolean {
    return this.worker !== undefined;
  }

  start(): void {
    if (this.closed || this.worker !== undefined) return;
    let worker: Worker;
    try {
      this.done = new Int32Array(new SharedArrayBuffer(4));
      worker = spawn({ file: this.options.file, role: this.options.role, done: this.done });
    } catch (error) {
      this.stopped(`it could not be started: ${(error as Error).message}`);
      return;
    }
    worker.unref();
    this.worker = worker;
    let reason = "it exited";
    worker.on("message", (r: SearchReply) => {
      if (worker !== this.worker) return;
      // It runs: the next stop waits the shortest again.
      this.restartMs = this.options.restartMs ?? SEARCH_RESTART_MS;
      if (!("req" in r)) return this.options.onReply(r);
      const p = this.pending.get(r.req);
      this.pending.delete(r.req);
      p?.settle(r);
    });
    worker.on("error", (error) => (reason = error.message));
    worker.on("exit", (code) => {
      if (worker !== this.worker || this.closed) return;
      this.worker = undefined;
      this.stopped(`${reason} (exit code ${code})`);
    });
    this.options.onStarted();
    for (const [req, p] of this.pending) {
      if (p.posted >= 2) {
        this.pending.delete(req);
        p.settle(new InternalError("the search thread stopped twice while answering this"));
      } else {
        p.posted++;
        worker.postMessage(p.request);
      }
    }
  }

  /** Posts to the thread, if one runs (what a stopped one missed is the caller's to post again from `onStarted`). */
  post(request: Exclude<SearchRequest, Asked>, transfer?: ArrayBuffer[]): void {
    this.worker?.postMessage(request, transfer);
  }

  /** Asks the thread (now, or the next one to start) and resolves with its answer. */
  ask<T extends Answer["t"]>(build: (req: number) => Asked): Promise<Extract<Answer, { t: T }>> {
    if (this.closed) return Promise.reject(new InternalError("the search index is closed"));
    const request = build(this.nextReq++);
    return new Promise((resolve, reject) => {
      this.pending.set(request.req, {
        request,
        posted: this.worker === undefined ? 0 : 1,
        settle: (r) => (r instanceof Error ? reject(r) : resolve(r as Extract<Answer, { t: T }>)),
      });
      this.worker?.postMessage(request);
    });
  }

  /** Stops the thread as if it had died (tests); it is started again as after a crash. */
  kill(): Promise<number> {
    return this.worker?.terminate() ?? Promise.resolve(0);
  }

  /**
   * Has the thread finish its deletions and close its file, and waits for it (up to
   * {@link SEARCH_CLOSE_WAIT_MS}). Never `terminate()` while it may be inside SQLite: a SQLite
   * error thrown in a thread being terminated aborts the process (see the log's writer-thread.ts).
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.restartTimer);
    for (const p of this.pending.values()) p.settle(new InternalError("the search index closed"));
    this.pending.clear();
    const worker = this.worker;
    this.worker = undefined;
    if (worker === undefined) return;
    worker.postMessage({ t: "close" } satisfies SearchRequest);
    Atomics.wait(this.done, 0, 0, SEARCH_CLOSE_WAIT_MS);
  }

  private stopped(reason: string): void {
    if (this.closed) return;
    this.options.onStopped(reason, this.restartMs);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.start();
    }, this.restartMs).unref();
    this.restartMs = Math.min(this.restartMs * 2, SEARCH_RESTART_MAX_MS);
  }
}

function spawn(workerData: SearchThreadData): Worker {
  return startModuleWorker(import.meta.url, "search-worker", SEARCH_WORKER_ENV, { workerData });
}
