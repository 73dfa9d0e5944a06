import type { Worker } from "node:worker_threads";
import { startModuleWorker } from "../system/module-worker.js";
import type { CheckpointViews } from "./checkpoint-store.js";
import type { ScreenView, ViewOptions } from "./screen-emulator.js";
import { InternalError } from "../protocol/errors.js";

/**
 * The screen thread's nice value (Linux): under CPU contention it gets about a tenth of what the
 * threads carrying output get, so a flood is not slowed by parsing it; it catches up when they idle.
 */
export const SCREEN_THREAD_NICE = 10;

/**
 * The screen thread's heap limit (V8's old generation): a session whose screen needs more ends
 * the thread, not the gateway, and only its own screen stays unavailable (ScreenService). xterm's
 * cell arrays are outside it; a 200×50 emulator with full scrollback keeps 0.5 MiB in it of plain
 * text, 2.5 MiB with a mark on every cell: 256 live ones of ordinary output fit.
 */
export const SCREEN_THREAD_HEAP_MB = 256;

/** A resize within a feed: output before it is parsed at the old size. */
export interface FeedResize {
  cols: number;
  rows: number;
}

/** What the gateway asks of the screen thread; `id` names one emulator (a session's, per opening). */
export type ThreadRequest =
  /** `tag` (> 0) names the emulator in {@link ThreadData.parsing}. */
  | { t: "open"; id: string; tag: number; cols: number; rows: number; state?: string | undefined }
  /** `bytes` cut by `pieces`: a number is that many bytes of output, in order, among resizes. */
  | { t: "feed"; id: string; bytes: Uint8Array; pieces: Array<number | FeedResize> }
  | { t: "view"; req: number; id: string; view: ViewOptions }
  | { t: "checkpoint"; req: number; id: string }
  | { t: "drop"; id: string }
  | { t: "memory"; req: number };

export type ThreadReply =
  | { t: "fed"; id: string; bytes: number }
  /** The emulator's output threw in xterm (`reason`): it is gone and takes no more output. */
  | { t: "broken"; id: string; reason: string }
  | { t: "view"; req: number; view?: ScreenView; error?: string }
  | {
      t: "checkpoint";
      req: number;
      state?: string | undefined;
      views?: CheckpointViews | undefined;
      cols?: number;
      rows?: number;
      error?: string;
    }
  | { t: "memory"; req: number; heapUsed: number; emulators: number };

export interface ThreadCheckpoint {
  /** Absent when the parser stood inside an escape sequence: try again later. */
  state: string | undefined;
  /** The screen at the PTY's size when it was taken, with `state`. */
  views: CheckpointViews | undefined;
  cols: number;
  rows: number;
}

/** What the thread is started with. */
export interface ThreadData {
  /** The tag of the emulator that parsed last, shared: the one to blame when the thread stops. */
  parsing: Int32Array;
}

/**
 * Why the thread stopped: `parsing` is the tag of the emulator at work when it stopped (the one
 * whose output is blamed, whatever the cause: its input is not replayed into the next thread).
 */
export interface ThreadLoss {
  reason: string;
  outOfMemory: boolean;
  parsing: number | undefined;
}

export interface ScreenThreadOptions {
  /** The emulator `id` has parsed `bytes` more of what was fed to it. */
  onFed: (id: string, bytes: number) => void;
  /** The thread stopped (crashed, or out of heap): every emulator in it is gone; the next use starts a new one. */
  onLost: (loss: ThreadLoss) => void;
  /** The emulator `id`'s output threw while it was parsed (`reason`): that emulator is gone, the thread goes on. */
  onBroken: (id: string, reason: string) => void;
  /** The heap limit, SCREEN_THREAD_HEAP_MB when absent (tests lower it). */
  heapMb?: number | undefined;
}

/**
 * The worker thread that keeps the screens (xterm parsing costs ~20–50 ns a byte, too much for
 * the thread that carries output): requests are posted in order and answered in order, output
 * transferred, never copied twice. Loads the built worker, or the TypeScript one through tsx when
 * this module itself runs from source (tests, benches).
 */
export class ScreenThread {
  private worker: Worker | undefined;
  private _losses = 0;
  private nextReq = 1;
  private readonly pending = new Map<number, { resolve: (r: ThreadReply) => void; reject: (e: Error) => void }>();
  private closed = false;

  constructor(private readonly options: ScreenThreadOptions) {}

  /** How many times the thread stopped: a request that failed while this moved failed with it, not for itself. */
  get losses(): number {
    return this._losses;
  }

  /** Starts the thread now (a gateway does at start), so the first request does not wait for it. */
  async start(): Promise<void> {
    await this.memory();
  }

  post(request: Exclude<ThreadRequest, { req: number }>): void {
    const worker = this.started();
    if (request.t === "feed") worker.postMessage(request, [request.bytes.buffer as ArrayBuffer]);
    else worker.postMessage(request);
  }

  async view(id: string, view: ViewOptions): Promise<ScreenView> {
    const r = await this.ask<{ t: "view" }>((req) => ({ t: "view", req, id, view }));
    if (r.view === undefined) throw new InternalError(r.error ?? "the screen thread returned no view");
    return r.view;
  }

  async checkpoint(id: string): Promise<ThreadCheckpoint> {
    const r = await this.ask<{ t: "checkpoint" }>((req) => ({ t: "checkpoint", req, id }));
    if (r.cols === undefined || r.rows === undefined) throw new InternalError(r.error ?? "no checkpoint");
    return { state: r.state, views: r.views, cols: r.cols, rows: r.rows };
  }

  /** The thread's heap and emulator count (for the memory figures in docs/benchmarks.md). */
  async memory(): Promise<{ heapUsed: number; emulators: number }> {
    const r = await this.ask<{ t: "memory" }>((req) => ({ t: "memory", req }));
    return { heapUsed: r.heapUsed, emulators: r.emulators };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    void this.worker?.terminate();
    this.worker = undefined;
    this.failPending("the screen service closed");
  }

  private ask<T extends { t: string }>(build: (req: number) => ThreadRequest): Promise<Extract<ThreadReply, T>> {
    const worker = this.started();
    const req = this.nextReq++;
    return new Promise((resolve, reject) => {
      this.pending.set(req, { resolve: resolve as (r: ThreadReply) => void, reject });
      worker.postMessage(build(req));
    });
  }

  private started(): Worker {
    if (this.closed) throw new InternalError("the screen service is closed");
    if (this.worker !== undefined) return this.worker;
    const parsing = new Int32Array(new SharedArrayBuffer(4));
    const worker = spawn({ parsing }, this.options.heapMb ?? SCREEN_THREAD_HEAP_MB);
    worker.unref();
    let outOfMemory = false;
    worker.on("message", (r: ThreadReply) => {
      if (r.t === "fed") return this.options.onFed(r.id, r.bytes);
      if (r.t === "broken") return this.options.onBroken(r.id, r.reason);
      const p = this.pending.get(r.req);
      this.pending.delete(r.req);
      p?.resolve(r);
    });
    const lost = (reason: string) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this._losses++;
      this.failPending(`the screen thread stopped (${reason}); ask again`);
      const blamed = parsing[0]! > 0 ? parsing[0] : undefined;
      if (!this.closed) this.options.onLost({ reason, outOfMemory, parsing: blamed });
    };
    worker.on("error", (error) => {
      outOfMemory = (error as { code?: string }).code === "ERR_WORKER_OUT_OF_MEMORY";
      lost(error.message);
    });
    worker.on("exit", (code) => lost(`exit code ${code}`));
    this.worker = worker;
    return worker;
  }

  private failPending(message: string): void {
    for (const p of this.pending.values()) p.reject(new InternalError(message));
    this.pending.clear();
  }
}

/** Names a built screen-worker.js for a gateway that runs from source (src/*.ts) to load. */
export const SCREEN_WORKER_ENV = "SWITCHBOARD_SCREEN_WORKER";

function spawn(workerData: ThreadData, heapMb: number): Worker {
  return startModuleWorker(import.meta.url, "screen-worker", SCREEN_WORKER_ENV, {
    workerData,
    resourceLimits: { maxOldGenerationSizeMb: heapMb },
  });
}
