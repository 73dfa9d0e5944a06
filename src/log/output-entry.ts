import type { OutputStream, SessionEvent } from "../protocol/index.js";
import type { BufferPool } from "../core/buffer-pool.js";
import { jsonFrame } from "./json-text.js";
import type { FramePiece } from "./json-text.js";
import type { StoredEntry } from "./store.js";
import type { LogEntry } from "./types.js";
import { InternalError } from "../protocol/errors.js";

/** Bytes counted for an output entry besides its data (its fields in JSON), for budgets and retention. */
export const OUTPUT_ENTRY_OVERHEAD = 96;

/**
 * An `output` event as the log keeps it: the raw bytes, stored and read back as they are.
 * Output is by far the biggest part of a terminal's log, and most of it is never read as
 * JSON (a viewer on /ws/session gets bytes-derived frames, a replay gets bytes); so the JSON
 * form — decoding, escaping, base64 — is built only when a consumer asks for `json`, once.
 * When the cores are few, every microsecond the event loop spends per 64 KiB of PTY output
 * slows the producer by as much (bench/delivery.ts), which is what this saves.
 */
export class OutputEntry implements StoredEntry {
  readonly type = "output" as const;
  readonly outEnd: number;
  readonly size: number;
  private cachedJson: string | undefined;
  private readonly _bytes: Uint8Array;
  /** The pool the bytes' buffer goes back to once the last hold is released (none: the GC frees it). */
  private pool: BufferPool | undefined;
  private holds = 1;
  private released = false;

  constructor(
    readonly seq: number,
    readonly ts: number,
    readonly stream: OutputStream,
    /** Byte offset of the first byte in the session's output. */
    readonly outStart: number,
    /** The bytes; not to be modified. */
    bytes: Uint8Array,
    /** Not valid UTF-8 on its own: `data` is base64 in the JSON form. */
    readonly binary: boolean,
    /**
     * The bytes are a view of a buffer from this pool that nothing else holds: it goes back
     * there when the entry's last hold is released (see {@link hold}).
     */
    pool?: BufferPool,
  ) {
    this._bytes = bytes;
    this.outEnd = outStart + bytes.length;
    this.size = bytes.length + OUTPUT_ENTRY_OVERHEAD;
    this.pool = pool;
  }

  /** The bytes; not to be modified, nor kept past the entry's holds (see {@link hold}). */
  get bytes(): Uint8Array {
    // A pooled buffer given back is detached: reading it would silently give nothing.
    if (this.released) throw new InternalError(`output entry ${this.seq} was read after its bytes were released`);
    return this._bytes;
  }

  /**
   * The bytes with `room` more bytes in front of them, for a frame header: a frame of this entry
   * without a copy. Only for an entry whose buffer came from a pool (the room in front is its
   * own, see PIECE_HEADROOM); undefined otherwise. Like {@link bytes}, kept only under a hold.
   */
  withRoomInFront(room: number): Uint8Array | undefined {
    if (this.pool === undefined || this._bytes.byteOffset < room) return undefined;
    return new Uint8Array(this._bytes.buffer, this._bytes.byteOffset - room, room + this._bytes.length);
  }

  /** The event's `offset`: the same as {@link outStart}. */
  get offset(): number {
    return this.outStart;
  }

  /**
   * Keeps the bytes readable past the current turn of the event loop: whoever keeps an entry
   * to read it later (an outbox holding live events while its socket is busy) holds it and
   * releases it when done. The log holds every entry while its hot ring does (and releases it
   * only once it is durable and published). A pooled entry's buffer goes back to its pool
   * when the last hold is released; other entries are left to the GC and need no holds.
   */
  hold(): void {
    if (this.pool !== undefined) this.holds++;
  }

  /** Ends a {@link hold} (or the log's own). */
  release(): void {
    if (this.pool === undefined || --this.holds > 0) return;
    const pool = this.pool;
    this.pool = undefined;
    this.released = true;
    pool.give(this._bytes.buffer);
  }

  /** `data` as the event carries it: the text, or base64. */
  get data(): string {
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.length).toString(
      this.binary ? "base64" : "utf8",
    );
  }

  /** The event as JSON (`data` last, `enc` before it when present); built on first use. */
  get json(): string {
    this.cachedJson ??= `${this.jsonHead()}${JSON.stringify(this.data)}}`;
    return this.cachedJson;
  }

  /**
   * {@link json} as UTF-8, between `before` and `after`: the bytes of a frame that carries the
   * event, built from the bytes without decoding them to text and encoding the text again
   * ({@link jsonFrame}). Not kept: the live frame is built once for every connection that
   * gets it, and a copy here would double what the log's hot entries hold.
   */
  jsonUtf8(before: string, after: string): Buffer {
    return jsonFrame(this.jsonPieces(before, after));
  }

  /** {@link jsonUtf8} as pieces for {@link jsonFrame}, so that a batch of events is written in one go. */
  jsonPieces(before: string, after: string): FramePiece[] {
    const head = `${before}${this.jsonHead()}`;
    return this.binary ? [`${head}"${this.data}"}${after}`] : [head, { text: this.bytes }, `}${after}`];
  }

  private jsonHead(): string {
    return `{"seq":${this.seq},"ts":${this.ts},"type":"output","stream":"${this.stream}","offset":${this.outStart}${this.binary ? ',"enc":"base64"' : ""},"data":`;
  }

  event(): SessionEvent {
    return this.binary
      ? {
          seq: this.seq,
          ts: this.ts,
          type: "output",
          stream: this.stream,
          offset: this.outStart,
          enc: "base64",
          data: this.data,
        }
      : { seq: this.seq, ts: this.ts, type: "output", stream: this.stream, offset: this.outStart, data: this.data };
  }

  /** What the store keeps besides the bytes. */
  meta(): string {
    return `{"ts":${this.ts},"stream":"${this.stream}"${this.binary ? ',"binary":true' : ""}}`;
  }

  static fromStored(seq: number, meta: string, outStart: number, bytes: Uint8Array): OutputEntry {
    const m = JSON.parse(meta) as { ts: number; stream: OutputStream; binary?: boolean };
    return new OutputEntry(seq, m.ts, m.stream, outStart, bytes, m.binary === true);
  }
}

/** An output entry's stream, offset and bytes, whether it is an {@link OutputEntry} or JSON from an older log. */
export function outputOf(entry: StoredEntry): {
  stream: OutputStream;
  offset: number;
  bytes: Uint8Array;
  binary: boolean;
} {
  if (entry instanceof OutputEntry) return entry;
  const e = JSON.parse(entry.json) as { stream: OutputStream; offset: number; data: string; enc?: "base64" };
  return {
    stream: e.stream,
    offset: e.offset,
    bytes: Buffer.from(e.data, e.enc === "base64" ? "base64" : "utf8"),
    binary: e.enc === "base64",
  };
}

/** {@link OutputEntry.hold} for any entry: only output entries have bytes that may be given back. */
export function holdEntry(entry: LogEntry): void {
  if (entry instanceof OutputEntry) entry.hold();
}

/** Ends a {@link holdEntry}. */
export function releaseEntry(entry: LogEntry): void {
  if (entry instanceof OutputEntry) entry.release();
}

/** The event an entry stands for. */
export function eventOf(entry: LogEntry): SessionEvent {
  return entry instanceof OutputEntry ? entry.event() : (JSON.parse(entry.json) as SessionEvent);
}
