import type { Writable } from "node:stream";
import type { CatchUpStep } from "../ws/catch-up.js";
import type { FeedPacing } from "../ws/feed.js";

/**
 * Bytes one export may have written and not yet handed to the kernel before it waits for its
 * socket to drain. A local reader empties the socket as fast as it is written, so this bound
 * alone would let an export run through a whole log in one turn: the turns come from the
 * catch-up scheduler (see {@link pacedExport}).
 */
export const EXPORT_QUEUE_BYTES = 1024 * 1024;

/**
 * What one read of the log takes while an export (a recording, a transcript, a page of output)
 * is streamed: one slice, one step of the catch-up scheduler, so a long log is never held in
 * memory and no slice holds the event loop for long.
 */
export const EXPORT_READ_BYTES = 256 * 1024;

/** The next piece of an export: what to write (may be empty) and what producing it cost in bytes of log read. */
export interface ExportSlice {
  chunk: string | Uint8Array;
  readBytes: number;
}

/** Produces an export a slice at a time; `next` returns null once the export is complete. */
export interface ExportSource {
  next(): ExportSlice | null;
}

/**
 * Writes `source` to `res` (a response, or a compressing stream in front of one) one slice per step of the gateway's catch-up scheduler, charged to
 * the token's catch-up share like a connection's catch-up frames (docs/architecture.md,
 * guarantee 4): a download shares the event loop with other clients and never takes it, however
 * fast its reader. Resolves when the export is written or the client went away; rejects with
 * what the source threw.
 */
export function pacedExport(res: Writable, source: ExportSource, pacing: FeedPacing): Promise<void> {
  return new Promise((resolve, reject) => new PacedExport(res, source, pacing, resolve, reject).start());
}

type ExportState = "writing" | "waiting-drain" | "done";

class PacedExport implements CatchUpStep {
  private state: ExportState = "writing";

  constructor(
    private readonly res: Writable,
    private readonly source: ExportSource,
    private readonly pacing: FeedPacing,
    private readonly resolve: () => void,
    private readonly reject: (error: unknown) => void,
  ) {}

  start(): void {
    this.res.once("close", () => this.finish());
    this.pacing.scheduler.request(this);
  }

  step(): number {
    if (this.state !== "writing") return 0;
    if (this.res.destroyed || this.res.writableEnded) {
      this.finish();
      return 0;
    }
    if (this.pacing.share.full) {
      this.pacing.share.wait(this);
      return 0;
    }
    if (this.res.writableLength >= EXPORT_QUEUE_BYTES) {
      this.state = "waiting-drain";
      this.res.once("drain", () => {
        if (this.state !== "waiting-drain") return;
        this.state = "writing";
        this.pacing.scheduler.request(this);
      });
      return 0;
    }
    let slice: ExportSlice | null;
    try {
      slice = this.source.next();
    } catch (error) {
      this.finish(error);
      return 0;
    }
    if (slice === null) {
      this.finish();
      return 0;
    }
    this.write(slice.chunk);
    this.pacing.scheduler.request(this);
    return Math.max(1, slice.readBytes);
  }

  private write(chunk: string | Uint8Array): void {
    const bytes = typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk.byteLength;
    if (bytes === 0) return;
    this.pacing.share.add(bytes);
    // Called once the kernel took the bytes, or with an error when the socket is gone: either way they are no longer held.
    this.res.write(chunk, () => this.pacing.share.remove(bytes));
  }

  private finish(error?: unknown): void {
    if (this.state === "done") return;
    this.state = "done";
    this.pacing.scheduler.cancel(this);
    this.pacing.share.forget(this);
    if (error === undefined) this.resolve();
    else this.reject(error);
  }
}
