import { incompleteTail } from "../../core/sequence-tail.js";
import { outputOf } from "../../log/output-entry.js";
import type { StoredEntry } from "../../log/store.js";
import type { LogEntry } from "../../log/types.js";
import { isPublicError } from "../../protocol/errors.js";
import type { TerminalScreenFrame } from "../../protocol/index.js";
import type { Session } from "../../sessions/session.js";
import type { GatewayCore } from "../context.js";

/** Output bytes read back from a screen's offset to find a sequence it cuts (see {@link incompleteTail}). */
const SCREEN_TAIL_BYTES = 4096;
const OUTPUT: ReadonlySet<string> = new Set(["output"]);

/** A session's screen for a viewer, and where in the log the output after it starts. */
export interface ViewerScreen {
  frame: TerminalScreenFrame;
  /** The last event whose output the screen shows whole: events after it carry the rest (the first may begin before `frame.offset`). */
  seq: number;
}

/**
 * The screen `?since=screen` (and `/v1/ws` subscribe `screen`) sends first: at the viewer's
 * size (at the PTY's: the whole terminal, scrollback included), and the byte output goes on
 * from. That is the screen's offset, or where an escape sequence or character it cuts begins:
 * the parser holds such a part unshown, so the viewer gets it whole in what follows.
 * WRONG_SESSION_KIND for a session without a PTY, as GET .../screen answers.
 */
export async function viewerScreen(
  core: GatewayCore,
  session: Session,
  size: { cols: number | undefined; rows: number | undefined },
): Promise<ViewerScreen> {
  // A held session restored at start and not taken over yet is taken over first (adoption-queue.ts).
  session.demand();
  const log = session.log;
  // The screen reflects at least what is published now (its parser catches up to the head).
  const before = { seq: log.head, bytes: log.outputBytes };
  // What the screen thread has not parsed yet is read a page per catch-up turn (as GET .../screen).
  const view = await core.screens.screen(session, { format: "ansi", ...size, whole: true }, (bytes) =>
    core.catchUp.scheduler.turn(bytes),
  );
  let offset = view.offset;
  try {
    const from = Math.max(0, offset - SCREEN_TAIL_BYTES);
    const tail = Buffer.concat(log.readOutput(from, offset - from).map((slice) => slice.bytes));
    offset -= incompleteTail(tail.subarray(0, offset - from));
  } catch (error) {
    // Retention dropped the bytes before the screen's offset: nothing to look back at.
    if (!isPublicError(error) || error.code !== "HISTORY_TRIMMED") throw error;
  }
  const frame: TerminalScreenFrame = {
    type: "screen",
    data: view.screen,
    offset,
    cols: view.cols,
    rows: view.rows,
    pty_cols: session.record.cols ?? view.cols,
    pty_rows: session.record.rows ?? view.rows,
    alternate: view.alternate,
  };
  const hint = offset >= before.bytes ? lastOutputUpTo(session, before.seq) : undefined;
  return { frame, seq: lastWholeOutput(session, offset, hint) };
}

/**
 * The seq of the last output event at or before `seq` (undefined when there is none). Not `seq`
 * itself: events after the screen's output, an `exit` above all, must still reach the viewer
 * (a `/v1/ws` subscription that jumped to the screen of an ended session never got its exit).
 */
function lastOutputUpTo(session: Session, seq: number): number | undefined {
  const log = session.log;
  for (let back = 16; ; back *= 8) {
    const from = Math.max(log.first - 1, seq - back);
    let last: number | undefined;
    for (let since = from; since < seq;) {
      const page = log.read(since, { types: OUTPUT, maxBytes: 256 * 1024 });
      for (const entry of page.entries) if (entry.seq <= seq) last = entry.seq;
      if (page.next <= since || page.next >= seq) break;
      since = page.next;
    }
    if (last !== undefined || from === log.first - 1) return last;
  }
}

/**
 * The seq of the last event whose output ends at or before byte `offset` (reading forward from
 * `hint`, a seq whose output all ends by then; from further back when none is known).
 */
function lastWholeOutput(session: Session, offset: number, hint: number | undefined): number {
  const log = session.log;
  let start = hint;
  // Back from the head in growing steps until the first output event read starts at or before `offset`.
  for (let back = 64; start === undefined; back *= 8) {
    const from = Math.max(log.first - 1, log.head - back);
    const first = log.read(from, { types: OUTPUT, limit: 1 }).entries[0];
    if (from === log.first - 1 || first === undefined || outputOf(first as StoredEntry).offset <= offset) start = from;
  }
  let last = start;
  for (let since = start; since < log.head;) {
    const page = log.read(since, { types: OUTPUT, maxBytes: 256 * 1024 });
    for (const entry of page.entries) {
      const out = outputOf(entry as StoredEntry);
      if (out.offset + out.bytes.length > offset) return last;
      last = entry.seq;
    }
    if (page.next <= since) break;
    since = page.next;
  }
  return last;
}

/** The output byte after `entries`' last output (`end` when they hold none). */
export function outputEnd(entries: readonly LogEntry[], end: number): number {
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = entries[i]!;
    if (entry.type !== "output") continue;
    const out = outputOf(entry as StoredEntry);
    return out.offset + out.bytes.length;
  }
  return end;
}

/** The output byte the first output event after seq `cursor` starts at (the end of the output when none follows). */
export function outputAfter(session: Session, cursor: number): number {
  const log = session.log;
  if (cursor >= log.head) return log.outputBytes;
  const next = log.read(Math.max(cursor, log.first - 1), { types: OUTPUT, limit: 1 }).entries[0];
  return next === undefined ? log.outputBytes : outputOf(next as StoredEntry).offset;
}
