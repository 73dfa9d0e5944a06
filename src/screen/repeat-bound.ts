import type { Terminal } from "@xterm/headless";
import type { PrintingCore } from "./mark-cap.js";

/**
 * Code points one REP (`CSI Ps b`) prints at most: its count (clamped by src/screen/count-clamp.ts
 * to what fills the screen and scrollback) times the code points of the cell it repeats. xterm.js
 * allocates them all at once (a cell of 1.3 million code points repeated 82,080 times threw
 * `RangeError: Invalid typed array length`); 4 Mi keeps a REP of a cell with every mark it may
 * hold (SCREEN_CELL_CODE_POINTS_MAX) filling a 200×50 screen and its scrollback.
 */
export const SCREEN_REPEAT_CODE_POINTS_MAX = 4 * 1024 * 1024;

/**
 * Code points a REP hands to xterm's print step at a time: what it allocates at once (64 KiB),
 * whatever the count, and ~1–4 ms of printing: between chunks the REP waits its turn once the
 * parse slice ran out (src/screen/parse-budget.ts). A chunk ends at a whole repetition.
 */
export const SCREEN_REPEAT_CHUNK_CODE_POINTS = 16 * 1024;

/** What of xterm's core {@link boundRepeat} uses, beyond the print step. */
interface RepeatingCore {
  _inputHandler: PrintingCore["_inputHandler"];
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
    const printAll = async (): Promise<boolean> => {
      for (let done = 0; done < repeats; done += perChunk) {
        if (done > 0) await pause();
        input.print(chunk, 0, Math.min(perChunk, repeats - done) * codes.length);
      }
      return true;
    };
    if (repeats <= perChunk) input.print(chunk, 0, repeats * codes.length);
    // xterm's parser takes a promise from any handler (its typings say boolean only).
    return (repeats <= perChunk || (printAll() as unknown as boolean));
  });
}
