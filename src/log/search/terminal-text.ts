/**
 * Terminal output as searchable text: escape sequences and control characters out. Output is stored in chunks, so a sequence may be cut at a chunk's end: the part that
 * could still become a sequence is handed back as `rest`, to go in front of the next chunk
 * (test/search/search.test.ts, "strips ANSI sequences, even cut between chunks").
 */

/** An unfinished sequence longer than this is dropped rather than held for the next chunk. */
export const TERMINAL_REST_MAX_CHARS = 4096;

/**
 * Complete sequences: CSI (`ESC [` … final byte; SGR, which only colours, is removed, the rest
 * such as cursor moves becomes a space, since programs move the cursor where a space was),
 * OSC (ended by BEL or ST), DCS / SOS / PM / APC (ended by ST), and two-byte escapes.
 */
const SEQUENCE =
  // eslint-disable-next-line no-control-regex -- control characters are what it finds
  /\x1b\[[0-?]*[ -/]*m|(\x1b\[[0-?]*[ -/]*[@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[PX^_][^\x1b]*\x1b\\|\x1b[ -/]*[0-~]/g;
/** A sequence begun at the very end and not finished yet. */
// eslint-disable-next-line no-control-regex -- control characters are what it finds
const UNFINISHED = /\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*|[PX^_][^\x1b]*|[ -/]*)$/;
/** Control characters other than newline and tab (a carriage return too: it parts words like a space), and C1 controls. */
// eslint-disable-next-line no-control-regex -- control characters are what it finds
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f-\x9f]+/g;
/** Whether a chunk holds anything to remove (most output is plain text: one scan, nothing replaced). */
// eslint-disable-next-line no-control-regex -- control characters are what it finds
const ANY_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

/** `chunk`'s visible text, and what at its end may still be an escape sequence. */
export function terminalText(chunk: string): { text: string; rest: string } {
  if (!ANY_CONTROL.test(chunk)) return { text: chunk, rest: "" };
  let body = chunk;
  let rest = "";
  const open = chunk.includes("\x1b") ? UNFINISHED.exec(chunk) : null;
  if (open) {
    body = chunk.slice(0, open.index);
    rest = open[0].length <= TERMINAL_REST_MAX_CHARS ? open[0] : "";
  }
  const text = body
    .replace(SEQUENCE, (_all: string, moved: string | undefined) => (moved === undefined ? "" : " "))
    .replace(CONTROLS, " ");
  return { text, rest };
}
