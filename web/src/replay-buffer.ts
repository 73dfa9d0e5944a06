/**
 * A terminal page replays the session's output from its start. xterm.js takes about a second
 * per million lines here, so a session that printed 20 MB of short lines took 15 s to come
 * back — for a screen that shows its last rows and keeps {@link TERMINAL_SCROLLBACK_LINES}
 * of scrollback. Past {@link REPLAY_FULL_BYTES} the replay is cut to its last
 * {@link REPLAY_TAIL_BYTES}, and to its last {@link TERMINAL_SCROLLBACK_LINES} lines; what the
 * dropped front did to the terminal's modes (alternate screen, cursor, mouse, keys) is replayed
 * as the modes' final settings first, so a full-screen program comes back as it was drawing.
 */

/** Replays up to this size are written whole, exactly as the session printed them. */
export const REPLAY_FULL_BYTES = 4 * 1024 * 1024;
/** What is kept of a larger replay: at most its last bytes (from a line start)… */
export const REPLAY_TAIL_BYTES = 1024 * 1024;
/**
 * …and at most its last lines: the lines xterm keeps above the screen (a terminal page's
 * scrollback), all a replay needs. A restored 10,000-line log fits (bench/web.ts).
 */
export const TERMINAL_SCROLLBACK_LINES = 10_000;

export type ReplayItem =
  | { kind: "text"; text: string }
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "resize"; cols: number; rows: number };

/**
 * DEC private modes (`CSI ? n h` / `CSI ? n l`) a program's output leaves set and a cut replay
 * must restore: screens, cursor, keys, mouse and paste reporting, wrapping and origin.
 */
const KEPT_MODES = new Set([1, 6, 7, 9, 25, 47, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1015, 1047, 1049, 2004]);
// eslint-disable-next-line no-control-regex -- escape sequences are what is read here
const PRIVATE_MODE = /\x1b\[\?([\d;]+)([hl])|\x1b([=>c])/g;
/** An escape sequence cut at the end of a chunk is at most this long (kept for the next chunk). */
const MAX_SEQUENCE_CHARS = 32;
// eslint-disable-next-line no-control-regex -- as above
const COMPLETE_MODE = /^\x1b(\[\?[\d;]*[hl]|[=>c])/;

/** The settings of {@link KEPT_MODES} (and the keypad mode) that a stream of output leaves. */
export class TerminalModes {
  private readonly modes = new Map<number, boolean>();
  private keypad: boolean | undefined;
  private carry = "";

  /** Reads `text` (consecutive chunks: a sequence split between two is found). */
  scan(text: string): void {
    const input = this.carry + text;
    for (const m of input.matchAll(PRIVATE_MODE)) {
      if (m[3] === "c") {
        // RIS: a full reset puts every mode back to its default.
        this.modes.clear();
        this.keypad = undefined;
      } else if (m[3] !== undefined) {
        this.keypad = m[3] === "=";
      } else {
        for (const n of m[1]!.split(";").map(Number)) if (KEPT_MODES.has(n)) this.modes.set(n, m[2] === "h");
      }
    }
    const lastEsc = input.lastIndexOf("\x1b");
    const tail = lastEsc >= 0 ? input.slice(lastEsc) : "";
    // An unfinished sequence at the end is read again with the next chunk.
    this.carry = tail.length < MAX_SEQUENCE_CHARS && !COMPLETE_MODE.test(tail) ? tail : "";
  }

  /** The escape sequences that set the terminal to these modes. */
  prefix(): string {
    let out = "";
    for (const [n, on] of this.modes) out += `\x1b[?${n}${on ? "h" : "l"}`;
    if (this.keypad !== undefined) out += this.keypad ? "\x1b=" : "\x1b>";
    return out;
  }

  get alternateScreen(): boolean {
    return this.modes.get(1049) === true || this.modes.get(1047) === true || this.modes.get(47) === true;
  }
}

const LATIN1 = new TextDecoder("latin1");

function sizeOf(item: ReplayItem): number {
  return item.kind === "text" ? item.text.length : item.kind === "bytes" ? item.bytes.length : 0;
}

/**
 * The replayed part of a terminal page's events, in order, until the replay is through; then
 * {@link drain} gives what to write: all of it, or — past {@link REPLAY_FULL_BYTES} — the
 * last size, the modes, a note and the tail. Holds at most about the full size (plus one event).
 */
export class ReplayBuffer {
  private items: ReplayItem[] = [];
  private size = 0;
  private droppedBytes = 0;
  private lastDroppedSize: { cols: number; rows: number } | undefined;
  private readonly modes = new TerminalModes();

  constructor(
    private readonly fullBytes = REPLAY_FULL_BYTES,
    private readonly tailBytes = REPLAY_TAIL_BYTES,
    private readonly tailLines = TERMINAL_SCROLLBACK_LINES,
  ) {}

  push(item: ReplayItem): void {
    this.items.push(item);
    this.size += sizeOf(item);
    // Once over the full size, only the tail is kept: drop from the front as it grows.
    if (this.size > this.fullBytes || this.droppedBytes > 0) {
      while (this.items.length > 1 && this.size - sizeOf(this.items[0]!) >= this.tailBytes) this.drop();
    }
  }

  /** What to write into the terminal, in order; the buffer is empty afterwards. */
  drain(): ReplayItem[] {
    const items = this.items;
    this.items = [];
    this.size = 0;
    const kept = this.lastLines(items);
    if (this.droppedBytes === 0) return kept;
    // The first kept piece may start inside a line or an escape sequence: start at its next
    // line, or — a full-screen program may print no newline for megabytes — at its next escape
    // sequence. What is skipped is read for modes (it may finish a sequence the cut split).
    const first = kept.find((i) => i.kind !== "resize");
    if (first?.kind === "text") {
      const nl = first.text.indexOf("\n");
      const cut = nl >= 0 ? nl + 1 : Math.max(0, first.text.indexOf("\x1b"));
      this.modes.scan(first.text.slice(0, cut));
      this.droppedBytes += cut;
      first.text = first.text.slice(cut);
    }
    const head: ReplayItem[] = [];
    if (this.lastDroppedSize) head.push({ kind: "resize", ...this.lastDroppedSize });
    const note = this.modes.alternateScreen
      ? "" // a full-screen program redraws; a line would only be in its way
      : `\x1b[2m[… ${formatBytes(this.droppedBytes)} of earlier output not shown; "switchboard logs" prints all of it …]\x1b[0m\r\n`;
    head.push({ kind: "text", text: `\x1b[0m${this.modes.prefix()}${note}` });
    return [...head, ...kept];
  }

  /**
   * The items from where the last `tailLines` lines start (more would scroll out of the page's
   * scrollback unseen); what comes before is dropped as the front was. The cut item is split.
   */
  private lastLines(items: ReplayItem[]): ReplayItem[] {
    let lines = 0;
    for (let i = items.length - 1; i >= 0; i--) {
      const item = items[i]!;
      if (item.kind !== "text") continue;
      let at = item.text.length;
      while ((at = item.text.lastIndexOf("\n", at - 1)) >= 0) {
        if (++lines > this.tailLines) {
          for (const before of items.slice(0, i)) this.dropped(before);
          this.dropped({ kind: "text", text: item.text.slice(0, at) });
          return [{ kind: "text", text: item.text.slice(at) }, ...items.slice(i + 1)];
        }
        if (at === 0) break;
      }
    }
    return items;
  }

  private drop(): void {
    const item = this.items.shift()!;
    this.size -= sizeOf(item);
    this.dropped(item);
  }

  /** Accounts for an item that will not be written: its size, its modes, its terminal size. */
  private dropped(item: ReplayItem): void {
    this.droppedBytes += sizeOf(item);
    if (item.kind === "text") this.modes.scan(item.text);
    else if (item.kind === "bytes") this.modes.scan(LATIN1.decode(item.bytes));
    else this.lastDroppedSize = { cols: item.cols, rows: item.rows };
  }
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  return n >= 1024 ? `${Math.round(n / 1024)} KiB` : `${n} bytes`;
}
