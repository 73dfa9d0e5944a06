import type { Terminal } from "@xterm/headless";
import type { PrintingCore } from "./mark-cap.js";

/**
 * Code points one REP (`CSI Ps b`) prints at most: its count (clamped by src/screen/count-clamp.ts
 * to what fills the screen and scrollback) times the code points of the cell it repeats. xterm.js
 * allocates them all at once (a cell of 1.3 million code points repeated 82,080 times threw
 * `RangeError: Invalid typed array length`). 1 Mi keeps a REP of a cell of up to 12 code points
 * filling an 80×24 screen and its scrollback (82,080 cells), and stops one of a cell with every
 * mark it may hold (SCREEN_CELL_CODE_POINTS_MAX) at 61,680 cells: about 0.2 s of parsing.
 */
export const SCREEN_REPEAT_CODE_POINTS_MAX = 1024 * 1024;

/**
 * Code points a REP hands to xterm's print step at a time: what it allocates at once (64 KiB),
 * whatever the count, and ~1–4 ms of printing: between chunks the REP waits its turn once the
 * parse slice ran out (src/screen/parse-budget.ts). A chunk ends at a whole repetition.
 */
export const SCREEN_REPEAT_CHUNK_CODE_POINTS = 16 * 1024;

/** What of xterm's core {@link boundRepeat} uses, beyond the print step. */
interface RepeatingCore {
  _inputHandler: PrintingCore["_inputHandler"] & { _coreService: { decPrivateModes: { wraparound: boolean } } };
}

type InputHandler = RepeatingCore["_inputHandler"];

/**
 * What printing repetitions without wraparound depends on and changes, the modes and pen aside
 * (a REP changes neither): the cursor, the join state, and the cursor's row (the only row it
 * prints on: nothing wraps or scrolls). A chunk of repetitions that leaves this as it found it is
 * a fixed point: every later one leaves it too (a wide character dropped at the last column and
 * its marks joining a full cell, again and again), so only the repetitions past the whole chunks
 * are printed. test/screen/repeat-bound.test.ts compares with xterm's REP.
 */
interface PrintState {
  x: number;
  y: number;
  ybase: number;
  join: number;
  cells: Uint32Array | undefined;
  chars: string;
}

function stateOf(input: InputHandler): PrintState {
  const buffer = input._activeBuffer;
  const line = buffer.lines.get(buffer.ybase + buffer.y);
  let chars = "";
  for (let x = 0; x < (line?.length ?? 0); x++) chars += `${line!.getString(x)}\u0000`;
  const join = input._parser.precedingJoinState;
  return { x: buffer.x, y: buffer.y, ybase: buffer.ybase, join, cells: line?._data.slice(), chars };
}

function sameState(a: PrintState, b: PrintState): boolean {
  if (a.x !== b.x || a.y !== b.y || a.ybase !== b.ybase || a.join !== b.join || a.chars !== b.chars) return false;
  if (a.cells === undefined || b.cells === undefined || a.cells.length !== b.cells.length) return false;
  return a.cells.every((v, i) => v === b.cells![i]);
}

/** The width a character's Unicode properties hold (xterm's UnicodeService.extractWidth). */
function widthOf(properties: number): number {
  return (properties >> 1) & 0x3;
}

/**
 * REP as xterm.js runs it (the preceding character's cell printed again, count times, through the
 * print step, so the mark cap applies), in chunks of SCREEN_REPEAT_CHUNK_CODE_POINTS and at most
 * SCREEN_REPEAT_CODE_POINTS_MAX code points in all; between chunks it awaits `pause()` when that
 * gives a promise. Registered before the parse budget's handler, which then runs first (xterm
 * calls the last registered first).
 */
export function boundRepeat(term: Terminal, pause: () => Promise<void> | undefined): void {
  const input = (term as unknown as { _core: RepeatingCore })._core._inputHandler;
  term.parser.registerCsiHandler({ final: "b" }, (params) => {
    const joinState = input._parser.precedingJoinState;
    // No preceding printable character: REP does nothing (as xterm).
    if (joinState === 0) return true;
    const first = params[0];
    const count = typeof first === "number" && first > 0 ? first : 1;
    const buffer = input._activeBuffer;
    const line = buffer.lines.get(buffer.ybase + buffer.y);
    const text = line?.getString(buffer.x - widthOf(joinState)) ?? "";
    const codes = Array.from(text, (char) => char.codePointAt(0)!);
    if (codes.length === 0) return true;
    const repeats = Math.min(count, Math.floor(SCREEN_REPEAT_CODE_POINTS_MAX / codes.length));
    const perChunk = Math.max(1, Math.floor(SCREEN_REPEAT_CHUNK_CODE_POINTS / codes.length));
    const chunk = new Uint32Array(Math.min(repeats, perChunk) * codes.length);
    for (let at = 0; at < chunk.length; at += codes.length) chunk.set(codes, at);
    if (repeats <= perChunk) {
      input.print(chunk, 0, repeats * codes.length);
      return true;
    }
    const skipFixedPoints = !input._coreService.decPrivateModes.wraparound;
    const printAll = async (): Promise<boolean> => {
      const whole = Math.floor(repeats / perChunk);
      let before = skipFixedPoints ? stateOf(input) : undefined;
      for (let n = 0; n < whole; n++) {
        if (n > 0) await pause();
        input.print(chunk, 0, chunk.length);
        if (before === undefined) continue;
        // A whole chunk that left the state as it found it: so would every other one.
        const after = stateOf(input);
        if (sameState(before, after)) break;
        before = after;
      }
      const left = repeats % perChunk;
      if (left > 0) {
        await pause();
        input.print(chunk, 0, left * codes.length);
      }
      return true;
    };
    // xterm's parser takes a promise from any handler (its typings say boolean only).
    return printAll() as unknown as boolean;
  });
}
