import type { CoalescedOutput } from "../../src/core/output-coalescer.js";

/** A coalesced byte piece as an `output` event's fields would carry it: text, or base64 with `enc`. */
export interface DecodedPiece {
  stream: CoalescedOutput["stream"];
  offset: number;
  data: string;
  enc?: "base64";
  byteLength: number;
}

export function decodedPiece(p: CoalescedOutput): DecodedPiece {
  const base = { stream: p.stream, offset: p.offset, byteLength: p.bytes.length };
  return p.binary
    ? { ...base, data: Buffer.from(p.bytes).toString("base64"), enc: "base64" }
    : { ...base, data: new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(p.bytes) };
}
