/**
 * Where a session's log goes on its way to a socket: the one interface between a reader of the
 * log (SessionFeed, src/server/ws/feed.ts; Viewer, src/server/ws/viewer.ts) and a transport (`/v1/ws`,
 * `/ws/session`, SSE, a plugin's subscription), which only encodes and writes.
 */
import type { LogEntry } from "../../log/types.js";
import type { ViewerScreen } from "./screen-frame.js";

export interface Sink {
  /** Bytes handed to the transport and not yet written out (gateway queue + socket buffer). */
  readonly queuedBytes: number;
  /**
   * False once the socket is closing: nothing more is read for it (a write to a closing socket
   * is dropped, not queued, so the byte budget alone would never stop a reader). Absent: always open.
   */
  readonly open?: boolean;
  /** Entries in seq order; `live` is false for replay and catch-up batches. */
  deliver(entries: readonly LogEntry[], live: boolean): void;
  /** Retention dropped what the reader still needed after seq `from`; it goes on from `first`. */
  trimmed(first: number, head: number, from: number): void;
  /** The session was removed: the viewer is closed, the transport says so. Absent: not watched. */
  removed?(): void;
  /** `lag: "screen"`: the screen the viewer jumps to (`skipped`: output bytes it saves). */
  screen?(screen: ViewerScreen, skipped: number): void;
}

/** A sink of a viewer that starts at an output byte (`/ws/session`): its replay is raw output, then live events. */
export interface OutputSink extends Sink {
  /** Output bytes `from` to `from + size`, one replay frame. */
  replay(from: number, chunks: readonly Uint8Array[], size: number): void;
  /** Retention dropped output bytes `from` to `to` that the replay needed; it goes on from `to`. */
  trimmedOutput(from: number, to: number): void;
  /** The replay reached the end of the output (`first`: the first time). False: nothing live follows. */
  joined(first: boolean): boolean;
}
