/**
 * Hostile output against the screen emulator (real xterm.js, @xterm/headless): combining marks,
 * wide characters at the right margin without wraparound, REP, scroll regions, huge SGR parameter
 * lists, OSC strings, insert mode, the alternate screen. Holds, whatever the output and wherever
 * it is cut: it parses to its end (or xterm throws, which the screen thread quarantines) in
 * bounded time; no cell's string holds more than SCREEN_CELL_CODE_POINTS_MAX code points, so the
 * emulator's cell strings stay under cells × that bound.
 *
 * CI runs a fixed seed for a few seconds. `npm run fuzz` runs longer: FUZZ_RUNS (cases),
 * FUZZ_SECONDS (time limit) and FUZZ_SEED (default random) tune it.
 */
import type { Terminal } from "@xterm/headless";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SCREEN_CELL_CODE_POINTS_MAX, SCREEN_CELL_MARKS_MAX } from "../../src/screen/mark-cap.js";
import { ScreenEmulator } from "../../src/screen/screen-emulator.js";
import { chunked } from "../helpers/chunks.js";

const LONG = process.env["FUZZ_RUNS"] !== undefined || process.env["FUZZ_SECONDS"] !== undefined;
const RUNS = Number(process.env["FUZZ_RUNS"] ?? 400);
const TIME_LIMIT_MS = Number(process.env["FUZZ_SECONDS"] ?? 4) * 1000;
const SEED = process.env["FUZZ_SEED"] !== undefined ? Number(process.env["FUZZ_SEED"]) : LONG ? Date.now() : 4;
/** One case's parse, however hostile: REPs of full cells are the slowest (~0.3 s at 80 columns). */
const CASE_MAX_MS = 3_000;

const MARKS = ["\u0301", "\u0308", "\u0327", "\u20d7", "\u05b4", "\u0e31"];
const WIDE = ["漢", "😀", "ｗ", "\u{20000}"];

const marks = fc
  .array(fc.constantFrom(...MARKS), { minLength: 1, maxLength: 3 * SCREEN_CELL_MARKS_MAX, size: "max" })
  .map((m) => m.join(""));
const count = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.constantFrom(999, 65_535, 999_999_999, 2 ** 31));
const params = (max: number) => fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: max }).map((p) => p.join(";"));

/** One piece of hostile output. */
const piece = fc.oneof(
  marks,
  fc.tuple(fc.constantFrom(...WIDE), fc.option(marks)).map(([w, m]) => w + (m ?? "")),
  fc.tuple(fc.constantFrom("e", "a", "─", ...WIDE), marks).map(([b, m]) => b + m),
  count.map((n) => `\x1b[${n}b`),
  fc.constantFrom("\x1b[?7l", "\x1b[?7h", "\x1b[4h", "\x1b[4l", "\x1b[?1049h", "\x1b[?1049l", "\x1b[?6h", "\x1b[?6l"),
  fc.constantFrom("\r\n", "\n", "\r", "\b", "\t", "\x1b[m", "\x1b#8", "\x1bM", "\x1bD", "\x1b7", "\x1b8"),
  // At the right margin without wraparound, wide characters and their marks, again and again: the
  // wide ones that do not fit are dropped and their marks join one cell.
  fc
    .tuple(fc.constantFrom("", "\x1b[1D", "\x1b[2D"), fc.constantFrom(...WIDE), marks, fc.integer({ min: 1, max: 4 }))
    .map(([back, wide, m, n]) => `\x1b[?7l\x1b[999C${back}${(wide + m).repeat(n)}`),
  // To the right margin (or past it), then a wide character: the case that stacked marks on one cell.
  fc.tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 8 })).map(([c, r]) => `\x1b[${r};${c}H`),
  fc.constantFrom("\x1b[999C", "\x1b[999;999H", "\x1b[H", "\x1b[999;999H\x1b[1J"),
  fc.tuple(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 10 })).map(([t, b]) => `\x1b[${t};${b}r`),
  fc
    .tuple(count, fc.constantFrom("L", "M", "S", "T", "@", "P", "X", "I", "Z", "J", "K"))
    .map(([n, f]) => `\x1b[${n}${f}`),
  params(400).map((p) => `\x1b[${p}m`),
  fc.constantFrom("38:2:1:2:3", "48;5;300", "58:2::9:9:9", "4:3").map((p) => `\x1b[${p};${p}m`),
  fc
    .tuple(fc.constantFrom("0", "2", "8;;", "52;c;", "133;A"), fc.string({ maxLength: 200 }))
    .map(([k, t]) => `\x1b]${k}${t}\x07`),
  fc.integer({ min: 1, max: 40_000 }).map((n) => `\x1b]2;${"t".repeat(n)}\x1b\\`),
  fc.stringMatching(/^[a-z ]{1,8}$/),
);

const scenario = fc.record({
  cols: fc.integer({ min: 2, max: 12 }),
  rows: fc.integer({ min: 1, max: 8 }),
  parts: fc.array(piece, { minLength: 1, maxLength: 24 }),
  cuts: fc.array(fc.nat(), { maxLength: 6 }),
});

/** The most code points any cell of either buffer holds, and all the cells' code points. */
function cellStrings(emulator: ScreenEmulator): { most: number; total: number; cells: number } {
  const term = (emulator as unknown as { term: Terminal }).term;
  const cell = term.buffer.active.getNullCell();
  let most = 0;
  let total = 0;
  let cells = 0;
  for (const buffer of [term.buffer.normal, term.buffer.alternate]) {
    for (let y = 0; y < buffer.length; y++) {
      const line = buffer.getLine(y)!;
      for (let x = 0; x < line.length; x++) {
        let n = 0;
        for (const _ of line.getCell(x, cell)!.getChars()) n++;
        most = Math.max(most, n);
        total += n;
        cells++;
      }
    }
  }
  return { most, total, cells };
}

describe("the screen emulator under hostile output", () => {
  it(
    `property: each cell within ${SCREEN_CELL_CODE_POINTS_MAX} code points and each parse bounded in time, cut anywhere`,
    async () => {
      let cases = 0;
      /** What xterm threw, and how often: ED 1 at the bottom-right of a screen with no scrollback yet is one. */
      const throws = new Map<string, number>();
      await fc.assert(
        fc.asyncProperty(scenario, async ({ cols, rows, parts, cuts }) => {
          cases++;
          const emulator = new ScreenEmulator(cols, rows, { scrollback: 20 });
          // xterm parses on timers: what it throws is uncaught, and the write never settles.
          let thrown: unknown;
          let onThrow = (): void => undefined;
          const listener = (error: unknown) => {
            thrown = error;
            onThrow();
          };
          process.prependListener("uncaughtException", listener);
          try {
            const started = performance.now();
            for (const chunk of chunked(Buffer.from(parts.join("")), cuts)) emulator.write(chunk);
            await Promise.race([emulator.settled(), new Promise<void>((resolve) => (onThrow = resolve))]);
            process.removeListener("uncaughtException", listener);
            expect(performance.now() - started).toBeLessThan(CASE_MAX_MS);
            if (thrown !== undefined) {
              // The screen thread quarantines such a session (hostile-screen-gateway.test.ts); its
              // cells are still bounded.
              throws.set(String(thrown), (throws.get(String(thrown)) ?? 0) + 1);
            }
            const { most, total, cells } = cellStrings(emulator);
            expect(most).toBeLessThanOrEqual(SCREEN_CELL_CODE_POINTS_MAX);
            expect(total).toBeLessThanOrEqual(cells * SCREEN_CELL_CODE_POINTS_MAX);
            // The views and a checkpoint are drawn from those cells without throwing.
            expect(emulator.view({ format: "text" }).screen.length).toBeLessThanOrEqual(
              rows * (cols + 1) * 2 * SCREEN_CELL_CODE_POINTS_MAX,
            );
            if (thrown === undefined) emulator.checkpoint();
          } finally {
            process.removeListener("uncaughtException", listener);
            emulator.dispose();
          }
        }),
        { numRuns: LONG ? RUNS : 400, interruptAfterTimeLimit: TIME_LIMIT_MS, seed: SEED },
      );
      console.log(`hostile-screen: ${cases} cases (seed ${SEED}), xterm threw: ${JSON.stringify([...throws])}`);
      expect(cases).toBeGreaterThan(20);
    },
    TIME_LIMIT_MS + 30_000,
  );
});
