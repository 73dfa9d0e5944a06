import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ScreenEmulator } from "../../src/screen/screen-emulator.js";
import { SCREEN_STRING_MAX_BYTES, StringCap } from "../../src/screen/string-cap.js";

const enc = (text: string) => Buffer.from(text, "utf8");

/** What the cap passes on for `bytes` pushed in pieces cut at `cuts`, and how many pieces it made. */
function capped(bytes: Uint8Array, cuts: number[]): { bytes: Buffer; pieces: number } {
  const cap = new StringCap();
  const out: Uint8Array[] = [];
  let at = 0;
  for (const cut of [...cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b), bytes.length]) {
    out.push(...cap.push(bytes.subarray(at, Math.max(at, cut))));
    at = Math.max(at, cut);
  }
  return { bytes: Buffer.concat(out), pieces: out.length };
}

/** Openers of control strings: `[intro, rest]`, the payload counted from after the intro. */
const OPENERS: Array<[string, string]> = [
  ["\x1b]", "2;"],
  ["\x1b]", "0;"],
  ["\x1b]", "8;;"],
  ["\x1bP", "$q"],
  ["\x1bP", "q"],
  ["\x1b_", ""],
  ["\x1b\n]", "2;"],
  ["\u009d", "2;"],
  ["\u0090", "$q"],
];
/** Text and sequences that are no control string: what surrounds them. */
const PLAIN = ["text ", "é漢", "\r\n", "\x1b[31m", "\x1b[0m", "\x1b7", "\x07", "\u0085", "\x1b(0q\x1b(B", "\x1b[?25l"];

/**
 * Output of text, sequences and control strings, as `[what the PTY prints, what xterm should
 * get]`: a string over the cap is cut after SCREEN_STRING_MAX_BYTES of payload, a CAN put in,
 * and its rest left out with its BEL (its other ends act on their own: an ST then does nothing).
 */
const output = (long: number) =>
  fc
    .array(
      fc.oneof(
        fc.constantFrom(...PLAIN).map((text) => [text, text] as const),
        fc
          .tuple(
            fc.constantFrom(...OPENERS),
            fc.oneof(fc.constantFrom("title", "ü", "a\x05b", "€"), fc.constant("x".repeat(long))),
            fc.constantFrom("\x07", "\x1b\\", "\u009c", "\x18", "\x1b[m", "\u0085"),
          )
          .map(([[intro, rest], body, end]) => {
            const osc = intro.endsWith("]") || intro === "\u009d";
            // BEL ends only an OSC: the others get an ST, so that each string ends where it is made.
            const ending = end === "\x07" && !osc ? "\x1b\\" : end;
            const payload = rest + body;
            const printed = intro + payload + ending;
            if (payload.length <= SCREEN_STRING_MAX_BYTES) return [printed, printed] as const;
            const kept = ending === "\x07" ? "" : ending;
            return [printed, `${intro}${payload.slice(0, SCREEN_STRING_MAX_BYTES)}\x18${kept}`] as const;
          }),
      ),
      { maxLength: 20 },
    )
    .map((parts) => [enc(parts.map((p) => p[0]).join("")), enc(parts.map((p) => p[1]).join(""))] as const);

/** A headless screen fed `bytes` without the cap: what xterm itself makes of them. */
async function screenOf(bytes: Uint8Array): Promise<{ text: string; title: string; checkpoint: string }> {
  const emulator = new ScreenEmulator(40, 6);
  (emulator as unknown as { cap: { push: (b: Uint8Array) => Uint8Array[] } }).cap = { push: (b) => [b] };
  emulator.write(bytes);
  await emulator.settled();
  const seen = {
    text: emulator.view({ format: "text" }).screen,
    title: emulator.title,
    checkpoint: emulator.checkpoint(),
  };
  emulator.dispose();
  return seen;
}

describe("StringCap", () => {
  it("property: passes output whose control strings are within the cap through whole, in one piece per push", () => {
    fc.assert(
      fc.property(output(SCREEN_STRING_MAX_BYTES / 2), fc.array(fc.nat(), { maxLength: 6 }), ([bytes], cuts) => {
        const out = capped(bytes, cuts);
        expect(out.bytes.equals(bytes)).toBe(true);
        expect(out.pieces).toBeLessThanOrEqual(cuts.length + 1);
      }),
    );
  });

  it("property: cuts a string over the cap at the cap and aborts it with a CAN, however the output is cut", () => {
    fc.assert(
      fc.property(
        output(SCREEN_STRING_MAX_BYTES + 100),
        fc.array(fc.nat(), { maxLength: 6 }),
        ([bytes, expected], cuts) => {
          expect(capped(bytes, cuts).bytes.toString("latin1")).toBe(expected.toString("latin1"));
        },
      ),
    );
  });

  it("property: the screen, title and whole state are the ones xterm makes of the output without the long strings", async () => {
    await fc.assert(
      fc.asyncProperty(output(SCREEN_STRING_MAX_BYTES + 100), async ([bytes, expected]) => {
        const emulator = new ScreenEmulator(40, 6);
        emulator.write(bytes);
        await emulator.settled();
        const want = await screenOf(expected);
        expect({
          text: emulator.view({ format: "text" }).screen,
          title: emulator.title,
          checkpoint: emulator.checkpoint(),
        }).toEqual(want);
        emulator.dispose();
      }),
      { numRuns: 40 },
    );
  });

  it("drops a title over the cap with its terminator, keeps one within it, and prints the text after each", async () => {
    const emulator = new ScreenEmulator(40, 5);
    emulator.write(enc("\x1b]2;kept title\x1b\\before"));
    emulator.write(enc(`\x1b]2;${"t".repeat(SCREEN_STRING_MAX_BYTES + 1)}\x07 after`));
    emulator.write(enc(`\x1bPq${"#0!100~".repeat(10_000)}\x1b\\ end`));
    await emulator.settled();
    expect(emulator.title).toBe("kept title");
    expect(emulator.view({ format: "text" }).screen).toBe("before after end");
    expect(emulator.atBoundary).toBe(true);
    emulator.dispose();
  });

  it("is not at a boundary while it drops the rest of a long string", async () => {
    const emulator = new ScreenEmulator(40, 5);
    emulator.write(enc(`\x1b]2;${"t".repeat(SCREEN_STRING_MAX_BYTES + 1)}`));
    await emulator.settled();
    expect(emulator.atBoundary).toBe(false);
    emulator.write(enc("still the title\x07shown"));
    await emulator.settled();
    expect(emulator.atBoundary).toBe(true);
    expect(emulator.view({ format: "text" }).screen).toBe("shown");
    emulator.dispose();
  });

  it("keeps the screen thread's heap bounded under 30 MB of OSC titles (regression: it grew by 350 MB)", async () => {
    const emulator = new ScreenEmulator(80, 24);
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const before = process.memoryUsage().heapUsed;
    let peak = 0;
    const megabyte = enc("t".repeat(1024 * 1024));
    // One title of 30 MB, then ten of 1 MB: in 1 MB writes, as the feed hands them over.
    emulator.write(enc("\x1b]2;"));
    for (let i = 0; i < 30; i++) {
      emulator.write(megabyte);
      await emulator.settled();
      peak = Math.max(peak, process.memoryUsage().heapUsed - before);
    }
    emulator.write(enc("\x07"));
    for (let i = 0; i < 10; i++) {
      emulator.write(Buffer.concat([enc("\x1b]0;"), megabyte, enc("\x07")]));
      await emulator.settled();
      peak = Math.max(peak, process.memoryUsage().heapUsed - before);
    }
    emulator.write(enc("shown"));
    await emulator.settled();
    expect(peak).toBeLessThan(64 * 1024 * 1024);
    expect(emulator.view({ format: "text" }).screen).toBe("shown");
    expect(emulator.title).toBe("");
    emulator.dispose();
  }, 60_000);
});
