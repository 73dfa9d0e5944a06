import fc from "fast-check";
import headless from "@xterm/headless";
import type { IBuffer, Terminal as HeadlessTerminal } from "@xterm/headless";
import { describe, expect, it } from "vitest";
import { ScreenEmulator } from "../../src/screen/screen-emulator.js";
import { sgrOf } from "../../src/screen/screen-view.js";

const { Terminal } = headless;
const COLS = 30;
const ROWS = 8;

/** Pieces of terminal output: text (wide characters too), colours, cursor moves and saves, erases, scroll regions, alternate screen. */
const piece = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[a-z ]{1,12}$/) },
  fc.constantFrom("\r\n", "\n", "\r", "\b", "\t"),
  fc.constantFrom("漢字", "日本語", "🙂", "é", "a\u0301"),
  fc.integer({ min: 0, max: 15 }).map((n) => `\x1b[${n < 8 ? 30 + n : 90 + n - 8}m`),
  fc.integer({ min: 0, max: 255 }).map((n) => `\x1b[48;5;${n}m`),
  fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255)).map(([r, g, b]) => `\x1b[38;2;${r};${g};${b}m`),
  fc.constantFrom("\x1b[0m", "\x1b[1m", "\x1b[3m", "\x1b[4m", "\x1b[7m", "\x1b[9m", "\x1b[2m"),
  fc
    .tuple(fc.integer({ min: 1, max: ROWS + 2 }), fc.integer({ min: 1, max: COLS + 2 }))
    .map(([r, c]) => `\x1b[${r};${c}H`),
  fc.constantFrom(
    "\x1b[A",
    "\x1b[2B",
    "\x1b[3C",
    "\x1b[D",
    "\x1b[K",
    "\x1b[1K",
    "\x1b[J",
    "\x1b[2J",
    "\x1b[L",
    "\x1b[M",
  ),
  fc.constantFrom("\x1b[?1049h", "\x1b[?1049l", "\x1b[?47h", "\x1b[?47l"),
  fc
    .tuple(fc.integer({ min: 1, max: ROWS }), fc.integer({ min: 1, max: ROWS }))
    .map(([a, b]) => `\x1b[${Math.min(a, b)};${Math.max(a, b)}r`),
  fc.constantFrom(
    "\x1b7",
    "\x1b8",
    "\x1bM",
    "\x1bD",
    "\x1b[S",
    "\x1b[T",
    "\x1b[?25l",
    "\x1b[?25h",
    "\x1b[4h",
    "\x1b[4l",
  ),
  fc.stringMatching(/^[a-z]{0,8}$/).map((t) => `\x1b]2;${t}\x07`),
);

/** The output as bytes, cut at arbitrary points (inside UTF-8 characters and escape sequences too). */
const output = fc
  .tuple(fc.array(piece, { maxLength: 120 }), fc.array(fc.nat(), { maxLength: 8 }))
  .map(([pieces, cuts]) => {
    const bytes = Buffer.from(pieces.join(""));
    const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
    const chunks: Buffer[] = [];
    let from = 0;
    for (const c of [...at, bytes.length]) {
      chunks.push(bytes.subarray(from, c));
      from = c;
    }
    return chunks;
  });

function write(term: HeadlessTerminal, data: Uint8Array | string): Promise<void> {
  return new Promise((resolve) => term.write(data, resolve));
}

/** Every cell (characters and style) of a buffer's lines, the cursor, and which buffer shows. */
function cellsOf(buffer: IBuffer): string[] {
  const cell = buffer.getNullCell();
  const lines: string[] = [];
  for (let y = 0; y < buffer.length; y++) {
    const line = buffer.getLine(y)!;
    let text = "";
    for (let x = 0; x < line.length; x++) {
      line.getCell(x, cell);
      text += `${cell.getChars() || " "}${cell.getWidth()}[${cell.getChars() === "" ? "" : sgrOf(cell)}]`;
    }
    lines.push(text);
  }
  return lines;
}

function stateOf(term: HeadlessTerminal, title: string) {
  const active = term.buffer.active;
  return {
    type: active.type,
    cursor: [active.cursorX, active.cursorY],
    normal: cellsOf(term.buffer.normal),
    alternate: active.type === "alternate" ? cellsOf(term.buffer.alternate) : [],
    title,
  };
}

async function fedWhole(chunks: Uint8Array[]) {
  const term = new Terminal({ cols: COLS, rows: ROWS, scrollback: 1000, allowProposedApi: true });
  let title = "";
  term.onTitleChange((t) => (title = t));
  await write(term, Buffer.concat(chunks));
  const state = stateOf(term, title);
  term.dispose();
  return state;
}

async function replayed(checkpoint: string) {
  const term = new Terminal({ cols: COLS, rows: ROWS, scrollback: 1000, allowProposedApi: true });
  let title = "";
  term.onTitleChange((t) => (title = t));
  await write(term, checkpoint);
  const state = stateOf(term, title);
  term.dispose();
  return state;
}

describe("ScreenEmulator", () => {
  it("a snapshot replayed into a fresh xterm gives the buffer of an xterm fed the whole output", async () => {
    await fc.assert(
      fc.asyncProperty(output, async (chunks) => {
        const emulator = new ScreenEmulator(COLS, ROWS);
        for (const chunk of chunks) emulator.write(chunk);
        await emulator.settled();
        const snapshot = await replayed(emulator.checkpoint());
        emulator.dispose();
        expect(snapshot).toEqual(await fedWhole(chunks));
      }),
      { numRuns: 150 },
    );
  });

  it("an emulator restored from a checkpoint and fed the rest equals one fed the whole output", async () => {
    await fc.assert(
      fc.asyncProperty(output, fc.nat(), async (chunks, at) => {
        // Checkpoints are taken where the parser is between sequences: the first such chunk end from `at` on.
        let cut = chunks.length === 0 ? 0 : at % chunks.length;
        const before = new ScreenEmulator(COLS, ROWS);
        for (const chunk of chunks.slice(0, cut)) before.write(chunk);
        await before.settled();
        while (!before.atBoundary) {
          before.write(chunks[cut++]!);
          await before.settled();
        }
        const restored = await ScreenEmulator.restore(before.checkpoint(), COLS, ROWS);
        before.dispose();
        for (const chunk of chunks.slice(cut)) restored.write(chunk);
        await restored.settled();
        const state = await replayed(restored.checkpoint());
        restored.dispose();
        expect(state).toEqual(await fedWhole(chunks));
      }),
      { numRuns: 150 },
    );
  });
});
