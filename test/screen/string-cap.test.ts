import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ScreenEmulator } from "../../src/screen/screen-emulator.js";
import { SCREEN_STRING_MAX_BYTES, StringCap } from "../../src/screen/string-cap.js";

const enc = (text: string) => Buffer.from(text, "utf8");

/** What the cap passes on for `bytes` pushed in pieces cut at `cuts`. */
function capped(bytes: Uint8Array, cuts: number[]): Buffer {
  const cap = new StringCap();
  const out: Uint8Array[] = [];
  let at = 0;
  for (const cut of [...cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b), bytes.length]) {
    out.push(...cap.push(bytes.subarray(at, Math.max(at, cut))));
    at = Math.max(at, cut);
  }
  return Buffer.concat(out);
}

/** Terminal output made of text, CSI sequences and control strings of every kind, some of them long. */
const output = (long: number) =>
  fc
    .array(
      fc.oneof(
        fc.constantFrom("text ", "é漢", "\r\n", "\x1b[31m", "\x1b[0m", "\x1b7", "\x07", "\x18", "\x1b", "\xc2"),
        fc
          .tuple(
            fc.constantFrom("\x1b]2;", "\x1b]8;;", "\x1bP", "\x1b_", "\u009d0;", "\u0090q"),
            fc.oneof(fc.constantFrom("title", "ü", "a\x1bb", "\u0080"), fc.constant("x".repeat(long))),
            fc.constantFrom("\x07", "\x1b\\", "\u009c", "\x18", "\x1b[m", ""),
          )
          .map((parts) => parts.join("")),
      ),
      { maxLength: 30 },
    )
    .map((parts) => enc(parts.join("")));

describe("StringCap", () => {
  it("property: passes output whose control strings are within the cap unchanged, however it is cut", () => {
    fc.assert(
      fc.property(output(SCREEN_STRING_MAX_BYTES / 2), fc.array(fc.nat(), { maxLength: 6 }), (text, cuts) => {
        // An ST at the end: a string still open at the end is held until it ends.
        const bytes = Buffer.concat([text, enc("\x1b\\")]);
        expect(capped(bytes, cuts).equals(bytes)).toBe(true);
      }),
    );
  });

  it("property: drops the same long strings however the output is cut, and passes on what is not in them", () => {
    fc.assert(
      fc.property(output(SCREEN_STRING_MAX_BYTES + 1), fc.array(fc.nat(), { maxLength: 6 }), (bytes, cuts) => {
        const whole = capped(bytes, []);
        expect(capped(bytes, cuts).equals(whole)).toBe(true);
        expect(whole.includes("x".repeat(SCREEN_STRING_MAX_BYTES + 1))).toBe(false);
      }),
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
