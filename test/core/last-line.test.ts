import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LAST_LINE_MAX_CHARS, LAST_LINE_TAIL_BYTES, LastLine, lastLine } from "../../src/core/last-line.js";

describe("lastLine", () => {
  it("gives the last line with visible text, without escapes, as a terminal shows it", () => {
    expect(lastLine("booting\n\x1b[32mlistening on :8080\x1b[0m\r\n")).toBe("listening on :8080");
    expect(lastLine("a\nb\n\n   \n")).toBe("b");
    // A progress bar rewrites its line after each carriage return; an erase after one shows nothing.
    expect(lastLine("10%\r50%\r100%")).toBe("100%");
    expect(lastLine("done\n$ ls\r\x1b[K")).toBe("$ ls");
    expect(lastLine("\x1b]0;title\x07prompt$ ")).toBe("prompt$");
    expect(lastLine("col1\tcol2")).toBe("col1 col2");
    expect(lastLine("")).toBeNull();
    expect(lastLine("\x1b[2J\x1b[H")).toBeNull();
    const long = "x".repeat(500) + "END";
    expect(lastLine(long)).toBe(`…${long.slice(-LAST_LINE_MAX_CHARS + 1)}`);
  });
});

describe("LastLine", () => {
  it("finds the line in output pushed in pieces cut anywhere, UTF-8 sequences included", () => {
    fc.assert(
      fc.property(
        fc.array(fc.stringMatching(/^[a-zé€😀 \n\r]{0,40}$/u), { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (pieces, cuts) => {
          const text = pieces.join("");
          const bytes = new TextEncoder().encode(text);
          fc.pre(bytes.length <= LAST_LINE_TAIL_BYTES);
          const tail = new LastLine();
          let at = 0;
          for (const cut of [...cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b), bytes.length]) {
            tail.push(bytes.subarray(at, Math.max(at, cut)));
            at = Math.max(at, cut);
          }
          expect(tail.value()).toBe(lastLine(text));
        },
      ),
    );
  });

  it("keeps only the newest bytes however much is pushed", () => {
    const tail = new LastLine();
    for (let i = 0; i < 1000; i++) tail.push(`line ${i}\n`);
    tail.push(new Uint8Array(5000).fill(0x41));
    expect(tail.value()).toBe(`…${"A".repeat(LAST_LINE_MAX_CHARS - 1)}`);
    tail.push("\nlast one\n");
    expect(tail.value()).toBe("last one");
    expect((tail as unknown as { tail(): Uint8Array }).tail().length).toBe(LAST_LINE_TAIL_BYTES);
  });

  it("keeps exactly the newest bytes of any run of pushes, its ring wrapping anywhere", () => {
    fc.assert(
      fc.property(
        // Sizes past the ring's, each chunk's bytes counting on from its first (quick to shrink).
        fc.array(fc.tuple(fc.nat({ max: LAST_LINE_TAIL_BYTES + 300 }), fc.nat({ max: 255 })), { maxLength: 30 }),
        (sizes) => {
          const chunks = sizes.map(([size, first]) => Uint8Array.from({ length: size }, (_, i) => (first + i) & 0xff));
          const tail = new LastLine();
          for (const chunk of chunks) tail.push(chunk);
          const all = Buffer.concat(chunks);
          const newest = all.subarray(Math.max(0, all.length - LAST_LINE_TAIL_BYTES));
          expect(Buffer.from((tail as unknown as { tail(): Uint8Array }).tail())).toEqual(newest);
          expect(tail.value()).toBe(lastLine(new TextDecoder().decode(newest)));
        },
      ),
    );
  });
});
