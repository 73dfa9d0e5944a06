import Database from "better-sqlite3";
import type { FlushListener, LogWriteFailure } from "./store.js";
import { BatchBuffers } from "./batch-buffers.js";
import { CommitQueues } from "./commit-queues.js";
import type { Taken } from "./commit-queues.js";
import { outputDirOf } from "./output-files.mjs";
import { prepareWriter } from "./sqlite-commit.mjs";
import {
  LOG_FLUSH_MAX_BATCH,
  LOG_BATCH_MAX_BYTES,
  LOG_INPUT_LINGER_MS,
  LOG_REPLICA_LINGER_BYTES,
  LOG_REPLICA_LINGER_MS,
  LOG_WRITER_MIN_BYTES,
  LOG_WRITER_LINGER_MS,
  LOG_CHECKPOINT_BYTES,
  LOG_CHECKPOINT_IDLE_MS,
  LOG_FLUSH_WAIT_MS,
  LOG_WRITE_RETRY_MS,
} from "./commit-limits.js";
import { TimerSet } from "../system/timer-set.js";
import { InflightBatches } from "./inflight-batches.js";
import { WriterThread } from "./writer-thread.js";
import type { WriterMessage } from "./writer-thread.js";
import type { CommitOp, CommitResult } from "./sqlite-commit.mjs";
import { InternalError } from "../protocol/errors.js";

/**
 * Where batches are committed:
 * - `starting`: the writer thread has not run yet (the gateway's first writes): on this thread;
 * - `writer`: it runs: small writes here, the rest posted to it (`checkpointing`: a checkpoint it
 *   was asked for has not answered);
 * - `down`: it stopped (said once per outage): on this thread until it runs again;
 * - `closed`: close() was called; nothing more is taken.
 */
export type CommitState =
  { at: "starting" } | { at: "writer"; checkpointing: boolean } | { at: "down" } | { at: "closed" };

export interface GroupCommitOptions {
  /** Told when the writer thread itself failed (not a failed commit: those are retried, see below). */
  onError?: (error: Error) => void;
  /**
   * The clock (milliseconds) a session's rate of appends is measured by, which decides whether
   * it is streaming (see {@link CommitQueues}). Default `performance.now()`; tests hold it still.
   */
  rateClock?: () => number;
  /**
   * Told after each failed commit attempt. The batch is kept and retried every `retryMs`;
   * later batches wait behind it, so the log never gets a hole.
   */
  onWriteFailed?: (failure: LogWriteFailure) => void;
  /** Told when a commit succeeds after failed ones: the failure it ends. */
  onWriteRecovered?: (failure: LogWriteFailure) => void;
  /** Told when something not needed for durability failed (freeing a purged session's pages). */
  onWarning?: (message: string) => void;
  /** Told when the writer thread runs again after it stopped (see {@link WriterThread}). */
  onWriterRestarted?: () => void;
  /** Default {@link LOG_WRITE_RETRY_MS}. */
  retryMs?: number;
  /** Default {@link LOG_WRITER_RESTART_MS}. */
  writerRestartMs?: number;
}

/**
 * When and where the embedded log's writes are committed (group commit): what a tick queued,
 * at its end; small writes on this thread (~0.05 ms), big ones on the writer thread
 * (`sqlite-writer.mjs`), so a big commit never blocks the event loop. A session log publishes
 * only what is committed. A session's ops commit in push order; sessions in any order.
 * Batching, fairness, lock and checkpoints: docs/architecture.md "Group commit".
 */
export class GroupCommit {
  /** The connection small commits are made on (busy timeout 0: if the file is locked, the writer thread waits instead). */
  private readonly directDb: Database.Database;
  private readonly directWriter: ReturnType<typeof prepareWriter>;
  private readonly writer: WriterThread;
  private _state: CommitState = { at: "starting" };
  private readonly timers: TimerSet<
    "linger" | "replicaLinger" | "writerLinger" | "trailingCheckpoint" | "retryHere" | "followUp"
  >;
  /** About how many bytes the writers added to the WAL since the last checkpoint was asked for. */
  private walBytes = 0;
  /** What waits for a commit, per session. */
  private readonly queues: CommitQueues;
  private nextBatch = 1;
  /** Batches posted and not yet acknowledged, with what each makes durable. */
  private readonly inflight = new InflightBatches();
  /** A commit is scheduled for the end of this tick. */
  private scheduled = false;
  /** A check whether the linger is needed is queued for the end of this tick ({@link lingerAtEndOfTick}). */
  private lingerCheck = false;
  /** Where a batch's bytes cross to the writer thread. */
  private readonly buffers = new BatchBuffers();
  private readonly flushedListeners: FlushListener[] = [];
  /** Who waits for a purge to be committed (see {@link whenCommitted}). */
  private readonly deleteWaiters = new Map<CommitOp, () => void>();
  private readonly onError: (error: Error) => void;
  private _writeFailure: LogWriteFailure | undefined;
  /** With the writer thread not running: batches whose commit here failed, oldest first (retried in order). */
  private readonly heldHere: Taken[] = [];

  /**
   * Writes the log in `file`, whose schema exists already; `pageSize` is its page size (a commit
   * rewrites at least a page: counted towards the next checkpoint).
   */
  constructor(
    file: string,
    private readonly pageSize: number,
    private readonly options: GroupCommitOptions = {},
  ) {
    this.onError =
      options.onError ??
      ((error) =>
        queueMicrotask(() => {
          throw error;
        }));
    this.queues = new CommitQueues(options.rateClock);
    this.timers = new TimerSet({
      /** Input waits for company until this fires (see {@link LOG_INPUT_LINGER_MS}). */
      linger: { after: LOG_INPUT_LINGER_MS, fire: () => this.commitQueued() },
      /** A copy's replica rows wait for company until this fires (see {@link LOG_REPLICA_LINGER_MS}). */
      replicaLinger: { after: LOG_REPLICA_LINGER_MS, fire: () => this.commitQueued() },
      /** A batch for the writer thread waits for company until this fires (see {@link LOG_WRITER_MIN_BYTES}). */
      writerLinger: {
        after: LOG_WRITER_LINGER_MS,
        fire: () => {
          if (this._state.at === "closed" || this.inflight.size > 0 || this.queues.ops === 0) return;
          this.post(this.fairShare(), undefined);
        },
      },
      /** Asks for a checkpoint of what is left once writes have stopped for a while. */
      trailingCheckpoint: {
        after: LOG_CHECKPOINT_IDLE_MS,
        fire: () => {
          this.walBytes = Math.max(this.walBytes, LOG_CHECKPOINT_BYTES);
          this.checkpointSoon();
        },
      },
      /** While the writer thread is not running and a commit here failed: the next try. */
      retryHere: {
        after: options.retryMs ?? LOG_WRITE_RETRY_MS,
        fire: () => {
          this.commitHeldInOrder();
          this.commitQueued();
        },
      },
      /** While the writer thread is not running: the commit of what a batch committed here left queued. */
      followUp: { after: "immediate", fire: () => this.commitQueued(), ref: true },
    });
    const outputDir = outputDirOf(file);
    this.directDb = new Database(file);
    this.directWriter = prepareWriter(this.directDb, { busyTimeoutMs: 0, outputDir, keepFilesOpen: false });
    this.writer = new WriterThread({
      workerData: { file, outputDir, retryMs: options.retryMs ?? LOG_WRITE_RETRY_MS },
      ...(options.writerRestartMs !== undefined ? { restartMs: options.writerRestartMs } : {}),
      onMessage: (m) => this.onWriterMessage(m),
      onReady: () => this.onWriterReady(),
      onStopped: (reason, restartInMs) => this.onWriterStopped(reason, restartInMs),
    });
  }

  /**
   * Batches go to the writer thread while it runs and nothing committed here waits for a retry
   * (they must go first); otherwise they are committed on this thread: while the thread starts
   * (the gateway's first writes), and while it is down.
   */
  private get onWriter(): boolean {
    return this._state.at === "writer" && this.heldHere.length === 0;
  }

  /** Where batches are committed now (tests). */
  get state(): CommitState["at"] {
    return this._state.at;
  }

  /**
   * The writer thread stopped while the log was open. What it had not committed is lost (it held
   * the only copy); commits are made on this thread (a flood's commits then take the event loop's
   * time) until it runs again (see {@link WriterThread}). Said once per outage; no work is refused
   * for it: the thread can die at start when every file descriptor is taken, and slower commits
   * are better than refusing everything (test/log/writer-thread-close.test.ts).
   */
  private onWriterStopped(reason: string, restartInMs: number): void {
    const was = this._state.at;
    if (was === "closed") return;
    // The batches it held are gone: their sessions' later ops need not wait for them.
    const lost = this.inflight.dropAll();
    // (A checkpoint it was asked for will not answer: `down` has none.)
    this._state = { at: "down" };
    if (was !== "down" || lost > 0) {
      const message = `the event log's writer thread stopped (${reason}): it is started again in ${restartInMs / 1000} s (later while that fails), and the log commits on the gateway's main thread meanwhile, slower under floods${lost > 0 ? `; ${lost} events and records it had not committed are lost` : ""}`;
      this.onError(Object.assign(new Error(message), { code: "LOG_WRITER_STOPPED" }));
    }
    // What waited for the thread is committed here.
    this.commitQueued();
  }

  /** The writer thread runs (at start, or again after it stopped): batches go to it from now on. */
  private onWriterReady(): void {
    const was = this._state.at;
    if (was === "closed") return;
    this._state = { at: "writer", checkpointing: false };
    if (was === "down") this.options.onWriterRestarted?.();
    this.checkpointSoon();
  }

  /** Queues `op` for the next group commit; `key` is its session, `size` about its bytes. */
  push(key: string, size: number, op: CommitOp): void {
    if (this._state.at === "closed") throw new InternalError("event store is closed");
    this.queues.push(key, size, op);
    if (this.queues.ops >= LOG_FLUSH_MAX_BATCH) {
      if (this.inflight.size === 0) this.commitOrPostQueued();
      else this.post(this.fairShare(), undefined);
    } else if (op.kind === "entry" && op.replica === true && this.queues.bytesOf(key) < LOG_REPLICA_LINGER_BYTES) {
      // Goes with the next commit, or with the others after a while.
      this.timers.startIfIdle("replicaLinger");
    } else if (op.kind === "entry" && ((op.type === "input" && op.urgent !== true) || op.lingers === true)) {
      // Goes with the next commit, or alone after a short while.
      this.lingerAtEndOfTick();
    } else if (op.kind === "entry" && op.urgent === true && this.queues.ops === 1 && !this.scheduled) {
      // Someone waits for this very entry (held input: its holder writes it to the program only
      // then) and nothing else is queued to go with it: committed now, not at the tick's end.
      this.commitQueued();
    } else {
      // Commit once this tick's appends are queued (one batch for all of them).
      this.commitAtEndOfTick();
    }
  }

  /**
   * Someone waits for queued rows to be durable: what waits for company (replica rows, input) is
   * committed at the end of this tick instead of when its linger fires.
   */
  hurry(): void {
    if (this._state.at !== "closed" && this.queues.ops > 0) this.commitAtEndOfTick();
  }

  /**
   * Starts the linger once this tick's appends are queued, unless a commit at its end takes them
   * (a held key's input, then its echo): a linger started for them, cleared or not, still woke
   * the event loop once per key for nothing (Node's timer handle keeps its first deadline).
   */
  private lingerAtEndOfTick(): void {
    if (this.lingerCheck) return;
    this.lingerCheck = true;
    queueMicrotask(() => {
      this.lingerCheck = false;
      if (!this.scheduled && this.queues.ops > 0 && this._state.at !== "closed") this.timers.startIfIdle("linger");
    });
  }

  private commitAtEndOfTick(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.commitQueued();
    });
  }

  /** Commits what is queued now: see {@link commitOrPostQueued}, or {@link commitBesideInflight} while a batch is in flight. */
  private commitQueued(): void {
    if (this._state.at === "closed") return;
    if (this.inflight.size === 0) this.commitOrPostQueued();
    else this.commitBesideInflight();
  }

  /**
   * With a batch in flight (a flood's output, usually): commits the small writes of the other
   * sessions here, if the writer thread is not holding the file's write lock right now — it holds
   * it only while it commits, not while its batch or its answer is on the way. Sessions with ops
   * in flight wait for them (their order counts); across sessions it does not. When the lock is
   * taken, they wait for the batch's answer and go with the next.
   */
  private commitBesideInflight(): void {
    if (this._writeFailure !== undefined) return;
    const small = this.queues.takeSmall(this.inflight.sessions);
    if (small.ops.length === 0) return;
    const outcome = this.commitHere(small);
    if ("failed" in outcome) {
      if ((outcome.failed as { code?: string }).code === "SQLITE_BUSY") this.queues.putBack(small);
      else this.post(small, undefined);
      return;
    }
    this.publishCommitted(small, outcome);
  }

  /**
   * With nothing in flight: commits the small writes of sessions that are not streaming here,
   * and posts the rest (a fair share of each session's queue) to the writer thread.
   */
  private commitOrPostQueued(): void {
    if (this.queues.ops === 0) return;
    // While commits fail, everything goes through the writer thread, which retries in order.
    if (this._writeFailure === undefined) {
      const small = this.queues.takeSmall(this.inflight.sessions);
      if (small.ops.length > 0) this.commitHereOrPost(small);
    }
    if (this.queues.ops === 0) return;
    if (this.queues.bytes() < LOG_WRITER_MIN_BYTES && this._writeFailure === undefined) {
      this.timers.startIfIdle("writerLinger");
      return;
    }
    this.timers.stop("writerLinger");
    this.post(this.fairShare(), undefined);
  }

  /**
   * Commits `taken` on this thread and publishes it; when that fails (the file is locked by
   * someone else, the disk is full) it goes to the writer thread instead, first in line, which
   * waits for the lock or retries until the disk takes it.
   */
  private commitHereOrPost(taken: Taken): void {
    const outcome = this.commitHere(taken);
    if ("failed" in outcome) this.post(taken, undefined);
    else this.publishCommitted(taken, outcome);
  }

  /**
   * With the writer thread stopped: commits `taken` here after what failed before it (in order, as
   * the writer thread would), or keeps it and tries again later.
   */
  private commitHeldInOrder(taken?: Taken): void {
    if (taken) this.heldHere.push(taken);
    while (this.heldHere.length > 0) {
      const next = this.heldHere[0]!;
      const outcome = this.commitHere(next);
      if ("failed" in outcome) {
        const failure = this._writeFailure;
        this._writeFailure = {
          message: (outcome.failed as Error).message,
          code: (outcome.failed as { code?: string }).code,
          since: failure?.since ?? Date.now(),
          attempts: (failure?.attempts ?? 0) + 1,
        };
        this.options.onWriteFailed?.(this._writeFailure);
        this.timers.startIfIdle("retryHere");
        return;
      }
      // Out of the line before it is published: a listener that flushes must not commit it again.
      this.heldHere.shift();
      this.recovered();
      this.publishCommitted(next, outcome);
    }
  }

  /**
   * The one commit on this thread: `taken` in one transaction, or nothing of it (`failed`: the
   * file is locked, the disk is full). Its entries are published by {@link publishCommitted}.
   */
  private commitHere(taken: Taken): { result: CommitResult; ms: number } | { failed: unknown } {
    const started = performance.now();
    try {
      return { result: this.directWriter(taken.ops), ms: performance.now() - started };
    } catch (error) {
      return { failed: error };
    }
  }

  /** After a commit here: its warnings said, what it made durable published. */
  private publishCommitted(taken: Taken, done: { result: CommitResult; ms: number }): void {
    for (const warning of done.result.warnings) this.options.onWarning?.(warning);
    this.committed(taken, taken.ops.length, done.ms);
  }

  /** A batch for the writer thread: every session's oldest ops, a fair share of {@link LOG_BATCH_MAX_BYTES} each. */
  private fairShare(): Taken {
    return this.queues.take(LOG_BATCH_MAX_BYTES / this.queues.sessions);
  }

  /**
   * Hands `taken` to the writer thread as one batch (`signal`: a synchronous flush waits on it);
   * returns its number. While the thread does not run, it is committed here in order instead.
   */
  private post(taken: Taken, signal: Int32Array | undefined): number {
    const batch = this.nextBatch++;
    if (!this.onWriter) {
      this.commitHeldInOrder(taken);
      // What the fair share left goes next (the writer thread's answer would have sent it): a
      // big append waited forever for its last events while the thread was starting (CI).
      if (this.heldHere.length === 0 && this.queues.ops > 0) this.timers.startIfIdle("followUp");
      return batch;
    }
    // (Output bytes need not stay alive here until it answers.)
    this.inflight.add(batch, taken);
    const { ops, buffer } = this.buffers.pack(taken.ops);
    this.writer.post({ batch, ops, buffer, ...(signal ? { signal } : {}) }, buffer ? [buffer] : []);
    return batch;
  }

  /** After a commit (here or by the writer thread): counts it towards the next checkpoint, and publishes what it made durable. */
  private committed(
    taken: { durable: ReadonlyMap<string, number>; bytes: number; fileBytes: number; deletes: readonly CommitOp[] },
    writes: number,
    ms: number,
  ): void {
    for (const op of taken.deletes) {
      this.deleteWaiters.get(op)?.();
      this.deleteWaiters.delete(op);
    }
    // A commit rewrites at least the leaf page it touched (and a page of output marks now and then);
    // output kept in files is not in the WAL.
    this.walBytes += taken.bytes - taken.fileBytes + this.pageSize;
    // Published first: a held key's commit reaches its holder before the checkpoint's timer is set.
    for (const listener of this.flushedListeners) listener(taken.durable, { writes, ms });
    this.checkpointSoon();
  }

  /**
   * Asks the writer thread for a checkpoint every {@link LOG_CHECKPOINT_BYTES} of WAL, and for one
   * of what is left once no commit came for {@link LOG_CHECKPOINT_IDLE_MS} (a WAL copied in full is
   * reset by the next commit and cut back to its size limit).
   */
  private checkpointSoon(): void {
    const state = this._state;
    if (state.at !== "writer" || state.checkpointing || this.walBytes === 0) return;
    if (this.walBytes >= LOG_CHECKPOINT_BYTES) {
      this.timers.stop("trailingCheckpoint");
      state.checkpointing = true;
      this.walBytes = 0;
      this.writer.post({ checkpoint: true });
    } else {
      // Armed again from now: it fires once no commit came for LOG_CHECKPOINT_IDLE_MS.
      this.timers.start("trailingCheckpoint");
    }
  }

  private onCheckpointed(result: { log?: number; done?: number; busy?: boolean; ms?: number; error?: string }): void {
    if (this._state.at === "writer") this._state.checkpointing = false;
    if (result.error !== undefined)
      this.options.onWarning?.(`a WAL checkpoint failed (a later one tries again): ${result.error}`);
    // What was committed while it ran is due next (or once writes stop).
    this.checkpointSoon();
  }

  /**
   * Why commits fail, while they do (undefined when the last commit succeeded). What was
   * appended meanwhile is kept in memory and written once a commit succeeds.
   */
  get writeFailure(): LogWriteFailure | undefined {
    return this._writeFailure;
  }

  /** Events and records appended and not committed yet (queued here or posted to the writer). */
  get unwrittenOps(): number {
    let n = this.queues.ops + this.inflight.writes;
    for (const batch of this.heldHere) n += batch.ops.length;
    return n;
  }

  private onWriterMessage(message: WriterMessage): void {
    if ("checkpointed" in message) {
      this.onCheckpointed(message.checkpointed);
      return;
    }
    if ("warning" in message) {
      this.options.onWarning?.(message.warning);
      return;
    }
    if (message.error !== undefined) {
      // The writer keeps the batch and retries it: it stays in flight, nothing is marked durable.
      this._writeFailure = {
        message: message.error,
        code: message.code,
        since: this._writeFailure?.since ?? Date.now(),
        attempts: message.attempt ?? (this._writeFailure?.attempts ?? 0) + 1,
      };
      this.options.onWriteFailed?.(this._writeFailure);
      return;
    }
    if (message.buffer) this.buffers.recycle(message.buffer);
    this.recovered();
    // (Not in flight: acknowledged already by a synchronous flush.)
    if (this.inflight.has(message.batch)) this.complete(message.batch, message.ms ?? 0);
    // What accumulated while the writer was busy goes as the next batch.
    if (this._state.at !== "closed" && this.inflight.size === 0) this.commitOrPostQueued();
  }

  private recovered(): void {
    const failure = this._writeFailure;
    if (!failure) return;
    this._writeFailure = undefined;
    this.options.onWriteRecovered?.(failure);
  }

  /** Marks `batch` and every earlier one durable (the writer commits in order). */
  private complete(batch: number, ms: number): void {
    for (const done of this.inflight.completeUpTo(batch)) this.committed(done, done.writes, ms);
  }

  /**
   * Commits everything queued and waits for the writer thread (used at shutdown and by tests).
   * Returns the number of writes that were queued. Throws when they cannot be committed now
   * (they stay queued and the writer goes on retrying them).
   */
  flush(): number {
    if (this._state.at === "closed") return 0;
    const writes = this.queues.ops;
    if (writes === 0 && this.inflight.size === 0 && this.heldHere.length === 0) return 0;
    if (this.inflight.size === 0 && this._writeFailure === undefined && !this.queues.writerOnly()) {
      // The writer thread is idle: commit it all here (if that fails, the writer takes it below).
      this.commitHereOrPost(this.queues.take(Infinity));
      // (With the writer thread not running, a commit that failed here is held for a retry: below.)
      if (this.inflight.size === 0 && this.heldHere.length === 0) return writes;
    }
    if (!this.onWriter) {
      this.commitHeldInOrder(this.queues.ops > 0 ? this.queues.take(Infinity) : undefined);
      if (this.heldHere.length > 0)
        throw new InternalError(
          `the log cannot write ${this.unwrittenOps} queued events and records: ${this._writeFailure?.message}`,
        );
      return writes;
    }
    const signal = new Int32Array(new SharedArrayBuffer(4));
    const started = performance.now();
    const batch = this.post(this.queues.take(Infinity), signal);
    // The main thread may block here: this is the one place the log waits for the disk.
    if (Atomics.wait(signal, 0, 0, LOG_FLUSH_WAIT_MS) === "timed-out") {
      throw new InternalError(`the log's writer did not commit within ${LOG_FLUSH_WAIT_MS} ms`);
    }
    if (Atomics.load(signal, 0) === 2) {
      // The failure message is posted before the signal is set, but not read yet: this thread was blocked.
      throw new InternalError(
        `the log cannot write ${this.unwrittenOps} queued events and records: the disk refused them`,
      );
    }
    this.recovered();
    this.complete(batch, performance.now() - started);
    return writes;
  }

  onFlushed(listener: FlushListener): void {
    this.flushedListeners.push(listener);
  }

  /**
   * Resolves once `op`, a purge about to be pushed, is committed: while the disk refuses it, once it
   * takes it again (or when the log closes without it: then it is lost, and `onError` says so).
   */
  whenCommitted(op: CommitOp & { kind: "delete" }): Promise<void> {
    if (this._state.at === "closed") return Promise.resolve();
    return new Promise((resolve) => this.deleteWaiters.set(op, resolve));
  }

  /**
   * Commits what is queued and closes the writing connections. When the disk still refuses the
   * last writes, they are lost: `onError` says how many, and it closes anyway (a gateway that
   * cannot write must still be able to stop and free its data directory).
   */
  close(): void {
    if (this._state.at === "closed") return;
    try {
      this.flush();
    } catch (error) {
      this.onError(
        new InternalError(
          `${this.unwrittenOps} events and records were not written before the log closed, and are lost: ${this._writeFailure?.message ?? (error as Error).message}`,
          { cause: error },
        ),
      );
    }
    this._state = { at: "closed" };
    for (const resolve of this.deleteWaiters.values()) resolve();
    this.deleteWaiters.clear();
    this.timers.stopAll();
    this.writer.close();
    this.directWriter.close();
    this.directDb.close();
  }
}
