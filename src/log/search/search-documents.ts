import type { SEARCH_HIT_KINDS, SessionEvent } from "../../protocol/index.js";
import { terminalText } from "./terminal-text.js";

/** Longest a document's text grows before it is cut at a space and the next one begins. */
export const SEARCH_DOC_MAX_CHARS = 4096;
/**
 * Longest word held back at the end of what a tick read, to join what comes next (output and
 * an agent's message arrive in pieces cut anywhere): a longer run of non-spaces is indexed as it is.
 */
export const SEARCH_CARRY_MAX_CHARS = 256;
/** Most characters taken from one tool call's content (its text is gathered from nested JSON). */
const TOOL_TEXT_MAX_CHARS = 8192;

/** What a document holds: terminal output, an agent's message, a prompt, a tool call, an error. */
export type SearchDocKind = (typeof SEARCH_HIT_KINDS)[number];

/** One indexed piece of a session's log: its text, and the seq a hit on it opens at. */
export interface SearchDoc {
  seq: number;
  kind: SearchDocKind;
  text: string;
}

/**
 * One log entry as the search thread gets it (search-messages.ts): an output entry's bytes, or
 * any other event's JSON.
 */
export type SearchEntry = { seq: number; output: Uint8Array } | { seq: number; json: string };

/** Text begun but not indexed yet: it starts at `seq`. */
interface Pending {
  seq: number;
  text: string;
}

/**
 * What indexing a session carries from one tick to the next (kept with its cursor, so a restart
 * goes on where the last commit left): the tail of its output and of the agent message being
 * written, an escape sequence cut at a chunk's end, and the run whose message came in deltas.
 */
export interface SessionTextState {
  output?: Pending;
  /** The start of an escape sequence that the next output chunk may finish. */
  escape?: string;
  message?: Pending & { run: string; id: string | undefined };
  /** The last run that sent `chat.delta`s: its `chat.final` repeats them and is not indexed again. */
  deltaRun?: string;
}

/**
 * Turns one session's entries (in seq order, after those of `state`) into documents, updating
 * `state`. `settle`: the tick ends here, so pending text is indexed up to its last space (the
 * word after it waits for the next piece, at most {@link SEARCH_CARRY_MAX_CHARS}); a session's
 * end (`exit`, `lost`) indexes everything.
 */
export function documentsOf(state: SessionTextState, entries: readonly SearchEntry[], settle: boolean): SearchDoc[] {
  const docs: SearchDoc[] = [];
  let ended = false;
  for (const entry of entries) {
    if ("output" in entry) {
      const bytes = entry.output;
      const { text, rest } = terminalText(
        (state.escape ?? "") + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"),
      );
      if (rest === "") delete state.escape;
      else state.escape = rest;
      state.output = grow(state.output, entry.seq, text, "output", docs);
      continue;
    }
    const event = JSON.parse(entry.json) as SessionEvent;
    if (event.type === "chat.delta") {
      const message = state.message;
      if (message && (message.run !== event.runId || message.id !== event.messageId)) {
        flushAll(message, "message", docs);
        delete state.message;
      }
      state.deltaRun = event.runId;
      const grown = grow(state.message, event.seq, event.text, "message", docs);
      state.message = { ...grown, run: event.runId, id: event.messageId };
      continue;
    }
    // Any other event of the run ends the message being written.
    if (state.message && "runId" in event && event.type !== "chat.thought") {
      flushAll(state.message, "message", docs);
      delete state.message;
    }
    const doc = standaloneDoc(event, state);
    if (doc) docs.push(doc);
    if (event.type === "exit" || event.type === "lost") ended = true;
  }
  if (ended) {
    if (state.output) flushAll(state.output, "output", docs);
    if (state.message) flushAll(state.message, "message", docs);
    delete state.output;
    delete state.message;
    delete state.escape;
  } else if (settle) {
    if (state.output) {
      const rest = flushToWord(state.output, "output", docs);
      if (rest) state.output = rest;
      else delete state.output;
    }
    if (state.message) {
      const rest = flushToWord(state.message, "message", docs);
      if (rest) state.message = { ...state.message, ...rest };
      else delete state.message;
    }
  }
  return docs;
}

/** Adds `text` (from entry `seq`) to `pending`, cutting documents off while it is too long. */
function grow(
  pending: Pending | undefined,
  seq: number,
  text: string,
  kind: SearchDocKind,
  docs: SearchDoc[],
): Pending {
  // Pending text that ends a line is a document of its own: a hit then opens at the entry that
  // printed the line, not at an older one that shared its document.
  if (pending && pending.text.endsWith("\n")) {
    flushAll(pending, kind, docs);
    pending = undefined;
  }
  let current: Pending =
    pending && pending.text !== "" ? { seq: pending.seq, text: pending.text + text } : { seq, text };
  while (current.text.length > SEARCH_DOC_MAX_CHARS) {
    const cut = cutAt(current.text, SEARCH_DOC_MAX_CHARS);
    pushDoc(docs, current.seq, kind, current.text.slice(0, cut));
    // What follows the cut began in this entry, or in the pending text before it: this entry's seq
    // is where a reader finds it (or the next page of it).
    current = { seq, text: current.text.slice(cut) };
  }
  return current;
}

/** Where to cut `text` to at most `max` characters: after its last whitespace there, else at `max`. */
function cutAt(text: string, max: number): number {
  const space = Math.max(text.lastIndexOf(" ", max - 1), text.lastIndexOf("\n", max - 1));
  return space > max - SEARCH_CARRY_MAX_CHARS ? space + 1 : max;
}

/** Indexes `pending` up to its last whitespace; returns the word after it (undefined: none). */
function flushToWord(pending: Pending, kind: SearchDocKind, docs: SearchDoc[]): Pending | undefined {
  const text = pending.text;
  const space = Math.max(text.lastIndexOf(" "), text.lastIndexOf("\n"));
  const tail = text.length - space - 1;
  if (tail === 0 || tail > SEARCH_CARRY_MAX_CHARS) {
    pushDoc(docs, pending.seq, kind, text);
    return undefined;
  }
  if (space >= 0) pushDoc(docs, pending.seq, kind, text.slice(0, space + 1));
  return { seq: pending.seq, text: text.slice(space + 1) };
}

function flushAll(pending: Pending, kind: SearchDocKind, docs: SearchDoc[]): void {
  pushDoc(docs, pending.seq, kind, pending.text);
}

function pushDoc(docs: SearchDoc[], seq: number, kind: SearchDocKind, text: string): void {
  // Output is stripped of control characters already (terminal-text.ts).
  if (/[\p{L}\p{N}]/u.test(text)) docs.push({ seq, kind, text: kind === "output" ? text.trim() : clean(text) });
}

/** Control characters out (a snippet marks its matches with two of them, see search-query.ts). */
function clean(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what it finds
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f]+/g, " ").trim();
}

/** The document of an event indexed on its own: a prompt, a finished tool call, an error. */
function standaloneDoc(event: SessionEvent, state: SessionTextState): SearchDoc | undefined {
  const doc = (kind: SearchDocKind, text: string): SearchDoc | undefined =>
    /[\p{L}\p{N}]/u.test(text) ? { seq: event.seq, kind, text: clean(text.slice(0, TOOL_TEXT_MAX_CHARS)) } : undefined;
  switch (event.type) {
    case "run.queued":
      return doc("prompt", event.text);
    case "chat.final":
      // Its text is the deltas' when the agent sent them (indexed as they came).
      return state.deltaRun === event.runId ? undefined : doc("message", event.text);
    case "chat.error":
      return doc("error", event.message);
    case "tool":
      // A tool call is reported at each status; it is indexed once it is done, with what it showed.
      if (event.status !== "completed" && event.status !== "failed") return undefined;
      return doc("tool", [event.title ?? "", ...stringsOf(event.content, TOOL_TEXT_MAX_CHARS)].join("\n"));
    default:
      return undefined;
  }
}

/** The strings in a JSON value (ACP tool content: text blocks, diffs), up to about `max` characters. */
function stringsOf(value: unknown, max: number): string[] {
  const found: string[] = [];
  let left = max;
  const visit = (v: unknown, depth: number): void => {
    if (left <= 0 || depth > 8) return;
    if (typeof v === "string") {
      found.push(v.slice(0, left));
      left -= v.length;
    } else if (Array.isArray(v)) for (const item of v) visit(item, depth + 1);
    else if (typeof v === "object" && v !== null) {
      for (const [key, item] of Object.entries(v)) if (key !== "type" && key !== "data") visit(item, depth + 1);
    }
  };
  visit(value, 0);
  return found;
}
