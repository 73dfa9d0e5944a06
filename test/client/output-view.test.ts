import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Utf8Chunker } from "../../src/core/utf8-chunker.js";
import { OutputView, utf8Length } from "../../src/client/index.js";
import type { SessionEvent } from "../../src/client/index.js";

/** Output events for `bytes` cut at `cuts`, as the gateway's chunker would store them. */
function eventsFor(bytes: Uint8Array, cuts: number[]): SessionEvent[] {
  const chunker = new Utf8Chunker();
  const events: SessionEvent[] = [];
  let offset = 0;
  let seq = 1;
  const push = (pieces: ReturnType<Utf8Chunker["push"]>) => {
    for (const p of pieces) {
      events.push({
        seq: seq++,
        ts: 0,
        type: "output",
        stream: "stdout",
        offset,
        data: p.data,
        ...(p.enc ? { enc: p.enc } : {}),
      });
      offset += p.byteLength;
    }
  };
  let at = 0;
  for (const cut of [...cuts, bytes.length].sort((a, b) => a - b)) {
    push(chunker.push(bytes.subarray(at, Math.max(at, cut))));
    at = Math.max(at, cut);
  }
  push(chunker.end());
  return events;
}

describe("OutputView", () => {
  it("keeps the chunks, ignores duplicates and renders the text", () => {
    const view = new OutputView();
    const a: SessionEvent = { seq: 1, ts: 0, type: "output", stream: "stdout", offset: 0, data: "héllo " };
    const b: SessionEvent = { seq: 2, ts: 0, type: "output", stream: "stdout", offset: 7, data: "world" };
    expect(view.push(a)).toBe(true);
    expect(view.push(a)).toBe(false);
    expect(view.push({ seq: 3, ts: 0, type: "exit", exitCode: 0, signal: null })).toBe(false);
    expect(view.push(b)).toBe(true);
    expect(view.chunks).toHaveLength(2);
    expect(view.text()).toBe("héllo world");
    expect(view.end).toBe(12);
    expect(view.gaps).toBe(0);
  });

  it("gives back exactly the bytes of any output, however it was chunked (base64 included)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(300), { maxLength: 8 }), (bytes, cuts) => {
        const view = new OutputView();
        for (const e of eventsFor(bytes, cuts)) view.push(e);
        expect(Buffer.from(view.bytes())).toEqual(Buffer.from(bytes));
        expect(view.byteLength).toBe(bytes.length);
      }),
      { numRuns: 200 },
    );
  });

  it("renders text split across chunks, even a character cut between base64 chunks", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "grapheme", maxLength: 60 }),
        fc.array(fc.nat(200), { maxLength: 6 }),
        (text, cuts) => {
          const fromChunker = new OutputView();
          for (const e of eventsFor(new TextEncoder().encode(text), cuts)) fromChunker.push(e);
          expect(fromChunker.text()).toBe(text);
          // Every piece as base64, cut anywhere (inside characters too).
          const bytes = new TextEncoder().encode(text);
          const bounds = [0, ...cuts.map((c) => Math.min(c, bytes.length)).sort((a, b) => a - b), bytes.length];
          const raw = new OutputView();
          for (let i = 1; i < bounds.length; i++) {
            const piece = bytes.subarray(bounds[i - 1]!, bounds[i]!);
            if (piece.length === 0) continue;
            raw.push({
              seq: i,
              ts: 0,
              type: "output",
              stream: "pty",
              offset: bounds[i - 1]!,
              data: Buffer.from(piece).toString("base64"),
              enc: "base64",
            });
          }
          expect(raw.text()).toBe(text);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("stays within maxBytes by dropping the oldest chunks", () => {
    const view = new OutputView({ maxBytes: 10 });
    for (let i = 0; i < 5; i++)
      view.push({ seq: i + 1, ts: 0, type: "output", stream: "stdout", offset: i * 4, data: `${i}abc` });
    expect(view.byteLength).toBeLessThanOrEqual(10);
    expect(view.text()).toBe("3abc4abc");
    expect(view.droppedBytes).toBe(12);
    expect(view.start).toBe(12);
  });

  it("counts UTF-8 bytes like TextEncoder", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "binary", maxLength: 100 }),
        (s) => utf8Length(s) === new TextEncoder().encode(s).length,
      ),
    );
  });
});
