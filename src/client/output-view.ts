import { decodeOutputData } from "../core/utf8-chunker.js";
import type { EventOf, OutputStream, SessionEvent } from "../protocol/index.js";

/** Output bytes an {@link OutputView} keeps by default; older chunks are dropped first. */
export const OUTPUT_VIEW_MAX_BYTES = 16 * 1024 * 1024;

/**
 * The raw bytes one `output` event stands for. Output that is not UTF-8 travels as base64
 * (`enc: "base64"`), so `event.data` is the text only when `enc` is absent: print these bytes.
 * @example
 * client.subscribe(id, { types: ["output"] }, (event) => {
 *   if (event.type === "output") process.stdout.write(outputBytes(event));
 * });
 */
export function outputBytes(event: EventOf<"output">): Uint8Array {
  return decodeOutputData(event.data, event.enc);
}

/** One output chunk as the log stored it: text, or base64 for bytes that are not UTF-8. */
export interface OutputViewChunk {
  /** Byte offset of the first byte in the session's output. */
  readonly offset: number;
  readonly stream: OutputStream;
  readonly data: string;
  readonly enc?: "base64";
  /** Raw bytes this chunk stands for. */
  readonly byteLength: number;
}

export interface OutputViewOptions {
  /** Default {@link OUTPUT_VIEW_MAX_BYTES}. */
  maxBytes?: number;
}

/**
 * A session's output kept as its chunks (never one growing string), rendered on demand. A chunk
 * at an offset already held is ignored, so replays and live delivery can both feed it. Bounded:
 * past `maxBytes` the oldest chunks go.
 * @example
 * client.subscribe(id, { types: ["output"] }, (event) => view.push(event));
 * terminal.write(view.text());
 */
export class OutputView {
  private readonly maxBytes: number;
  private list: OutputViewChunk[] = [];
  private retained = 0;
  private _end = 0;
  private _dropped = 0;
  private _gaps = 0;

  constructor(options: OutputViewOptions = {}) {
    this.maxBytes = options.maxBytes ?? OUTPUT_VIEW_MAX_BYTES;
  }

  /** Adds an `output` event (any other event is ignored). Returns whether it was new. */
  push(event: SessionEvent): boolean {
    if (event.type !== "output") return false;
    if (this.list.length > 0 && event.offset < this._end) return false;
    if (this.list.length > 0 && event.offset > this._end) this._gaps++;
    const byteLength = event.enc === "base64" ? base64Length(event.data) : utf8Length(event.data);
    const chunk: OutputViewChunk =
      event.enc === "base64"
        ? { offset: event.offset, stream: event.stream, data: event.data, enc: "base64", byteLength }
        : { offset: event.offset, stream: event.stream, data: event.data, byteLength };
    this.list.push(chunk);
    this.retained += byteLength;
    this._end = event.offset + byteLength;
    this.trim();
    return true;
  }

  /** The chunks held, oldest first. */
  get chunks(): readonly OutputViewChunk[] {
    return this.list;
  }

  /** Bytes held. */
  get byteLength(): number {
    return this.retained;
  }

  /** Offset of the first byte held. */
  get start(): number {
    return this.list[0]?.offset ?? this._end;
  }

  /** Offset after the last byte held: where the output continues. */
  get end(): number {
    return this._end;
  }

  /** Bytes dropped from the front to stay within `maxBytes`. */
  get droppedBytes(): number {
    return this._dropped;
  }

  /** How many times a chunk did not start where the previous one ended (retention dropped output). */
  get gaps(): number {
    return this._gaps;
  }

  /** The output as text; base64 chunks are decoded (per stream, so a character split across chunks survives). */
  text(options: { stream?: OutputStream } = {}): string {
    const decoders = new Map<OutputStream, TextDecoder>();
    let out = "";
    for (const chunk of this.list) {
      if (options.stream !== undefined && chunk.stream !== options.stream) continue;
      let decoder = decoders.get(chunk.stream);
      if (chunk.enc === "base64") {
        if (!decoder) {
          decoder = new TextDecoder("utf-8");
          decoders.set(chunk.stream, decoder);
        }
        out += decoder.decode(decodeOutputData(chunk.data, "base64"), { stream: true });
      } else {
        if (decoder) out += decoder.decode();
        decoders.delete(chunk.stream);
        out += chunk.data;
      }
    }
    for (const decoder of decoders.values()) out += decoder.decode();
    return out;
  }

  /** The raw bytes held. */
  bytes(options: { stream?: OutputStream } = {}): Uint8Array {
    const parts = this.list.filter((c) => options.stream === undefined || c.stream === options.stream);
    const out = new Uint8Array(parts.reduce((n, c) => n + c.byteLength, 0));
    let at = 0;
    for (const c of parts) {
      out.set(decodeOutputData(c.data, c.enc), at);
      at += c.byteLength;
    }
    return out;
  }

  clear(): void {
    this._dropped += this.retained;
    this.list = [];
    this.retained = 0;
  }

  private trim(): void {
    if (this.retained <= this.maxBytes) return;
    let drop = 0;
    while (drop < this.list.length - 1 && this.retained > this.maxBytes) {
      const c = this.list[drop]!;
      this.retained -= c.byteLength;
      this._dropped += c.byteLength;
      drop++;
    }
    this.list.splice(0, drop);
  }
}

/** UTF-8 length of a string without encoding it. */
export function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function base64Length(data: string): number {
  let pad = 0;
  if (data.endsWith("==")) pad = 2;
  else if (data.endsWith("=")) pad = 1;
  return Math.floor((data.length * 3) / 4) - pad;
}
