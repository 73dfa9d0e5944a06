import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { floodPlan } from "../../src/screen/flood-skip.js";
import { ScreenEmulator } from "../../src/screen/screen-emulator.js";
import { chunked } from "../helpers/chunks.js";

const COLS = 20;
const ROWS = 6;
const SCROLLBACK = 10;
/** What ScreenEmulator.writeFlood keeps after a cut at this size. */
const KEEP = 2 * ROWS + SCROLLBACK + 1;

/** Output that leaves state behind: moves, erases, regions, buffers, modes, titles, character sets. */
const opaque = fc.oneof(
  fc.constantFrom("\x1b[H", "\x1b[2J", "\x1b[K", "\x1b[3A", "\x1b[2B", "\x1b[5G", "\b", "\x1b7", "\x1b8", "\x1bM"),
  fc.constantFrom("\x1b[?1049h", "\x1b[?1049l", "\x1b[2;4r", "\x1b[r", "\x1b[?6h", "\x1b[?6l", "\x1b[?7l", "\x1b[?7h"),
  fc.constantFrom("\x1b[4h", "\x1b[4l", "\x1b[?45h", "\x1b(0", "\x1b(B", "\x0e", "\x0f", "\x1b[3S", "\x1b[2L"),
  fc.stringMatching(/^[a-z]{0,6}$/).map((t) => `\x1b]2;${t}\x07`),
);
/** Output a flood is made of: text (wide characters too), colours, tabs, bells. */
const inert = fc.oneof(
  { weight: 5, arbitrary: fc.stringMatching(/^[a-z0-9 ]{1,30}$/) },
  fc.constantFrom("漢字", "🙂", "é", "a\u0301", "\t", "\x07"),
  fc.integer({ min: 0, max: 15 }).map((n) => `\x1b[${n < 8 ? 30 + n : 90 + n - 8}m`),
  fc.constantFrom("\x1b[0m", "\x1b[m", "\x1b[1m", "\x1b[7m", "\x1b[48;5;200m", "\x1b[38;2;1;2;3m"),
);
const line = fc
  .tuple(fc.array(inert, { maxLength: 4 }), fc.constantFrom("\r\n", "\r\n", "\r\n", "\n", "\r"))
  .map(([pieces, end]) => pieces.join("") + end);
/** A flood of lines, now and then broken by output that is not inert. */
const flood = fc
  .array(fc.oneof({ weight: 30, arbitrary: line }, opaque), { maxLength: 160, size: "max" })
  .map((parts) => parts.join(""));
const before = fc
  .array(fc.oneof(inert, opaque, fc.constantFrom("\r\n", "\n")), { maxLength: 40 })
  .map((p) => p.join(""));

async function stateAfter(chunks: Buffer[], flooding: boolean): Promise<string[]> {
  const emulator = new ScreenEmulator(COLS, ROWS, { scrollback: SCROLLBACK });
  for (const chunk of chunks) {
    if (flooding) await emulator.writeFlood(chunk);
    else emulator.write(chunk);
  }
  await emulator.settled();
  const state = [emulator.checkpoint(SCROLLBACK), emulator.view({ format: "text" }).screen, emulator.title];
  emulator.dispose();
  return state;
}

describe("skipping the part of a flood that cannot show", () => {
  it("leaves the emulator in the state that parsing every byte gives", async () => {
    let skipped = 0;
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(before, flood, before, fc.array(fc.nat(), { maxLength: 4 }), async (a, b, c, cuts) => {
        const chunks = chunked(Buffer.from(a + b + c), cuts);
        runs++;
        if (chunks.some((chunk) => floodPlan(chunk, KEEP) !== undefined)) skipped++;
        expect(await stateAfter(chunks, true)).toEqual(await stateAfter(chunks, false));
      }),
      { numRuns: 300, interruptAfterTimeLimit: 20_000 },
    );
    // The property is about skipping: a third of the runs or more must have skipped something.
    expect(skipped).toBeGreaterThan(runs / 3);
  });

  it("keeps only the last lines of a plain flood, and the colour set before them", async () => {
    const lines = Array.from({ length: 5000 }, (_, i) => `${i + 1}\r\n`).join("");
    const bytes = Buffer.from(`\x1b[31m\x1b[0m\x1b[1m${lines}\x1b[32m${lines}`);
    const plan = floodPlan(bytes, KEEP)!;
    expect(plan.parse).toBe(0);
    const kept = bytes.subarray(plan.cut).toString();
    expect(kept.split("\n").length - 1).toBe(KEEP);
    expect(kept.startsWith(`${5000 - KEEP + 1}\r\n`)).toBe(true);
    expect(plan.pen).toBe("\x1b[m\x1b[1m\x1b[32m");
    // Colours never reset: the older ones are parsed, the last 256 carried.
    const colours = Buffer.from(Array.from({ length: 2000 }, (_, i) => `\x1b[3${i % 8}m${i}\r\n`).join(""));
    const coloured = floodPlan(colours, KEEP)!;
    expect(colours.subarray(coloured.parse).toString().startsWith("\x1b[31m1721\r\n")).toBe(true);
    expect(coloured.pen.split("\x1b")).toHaveLength(257);
    // A title (an OSC sequence) is not inert: the stretch after it starts at the next line.
    const titled = Buffer.from(`${lines}\x1b]2;done\x07$ ${lines}`);
    const second = floodPlan(titled.subarray(floodPlan(titled, KEEP)!.cut), KEEP)!;
    expect(titled.subarray(floodPlan(titled, KEEP)!.cut).subarray(second.parse).toString().startsWith("2\r\n")).toBe(
      true,
    );
    for (const bytes of [colours, titled]) {
      const chunks = chunked(bytes, [1000, 7777, 20_001]);
      expect(await stateAfter(chunks, true)).toEqual(await stateAfter(chunks, false));
    }
  });
});
