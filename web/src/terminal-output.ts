import type { Terminal } from "@xterm/xterm";
import type { SubscriptionScreen } from "../../src/client/index.js";
import type { SessionEvent } from "../../src/protocol/index.js";
import { decodeOutputData } from "../../src/core/utf8-chunker.js";
import { LagProbe } from "./lag-probe.js";

export interface TerminalOutputHandlers {
  /** Every event up to the head at subscription time has been delivered (the feed's `replayed`). */
  replayed(): boolean;
  /** A resize event, in its place among the output. */
  resize(cols: number, rows: number): void;
  /** Everything up to the head at subscription time is on the screen (called once). */
  restored(): void;
  /** Whether event `seq` is history: missed while the connection was down (see SessionFeed.isHistory). */
  isHistory(seq: number): boolean;
  /**
   * The page trails the output (more than PAGE_LAG_BYTES wait for xterm, or the LagProbe says
   * so): it should follow from a new screen. True when one will come: what waits is not drawn.
   */
  behind?(): boolean;
  /** Measures a round trip to the gateway, behind the output it sent (for the LagProbe; with `behind`). */
  ping?(): Promise<number>;
}

/**
 * Bytes handed to xterm and not yet parsed: past it output waits in the page's own queue, which a
 * new screen can drop (xterm's write buffer cannot be emptied). xterm.js's flow-control guide
 * uses watermarks of this order.
 */
export const XTERM_INFLIGHT_BYTES = 256 * 1024;
/**
 * `localStorage` key: "1" makes terminal pages show every byte of a flood, however late, instead
 * of skipping to the screen (`lag: "screen"`, docs/protocol.md); bench/screen-lag.ts compares both.
 */
export const EVERY_BYTE_KEY = "switchboard:terminal-every-byte";
/** Output waiting in the page's queue past which a PTY page asks for the screen instead (handlers.behind). */
export const PAGE_LAG_BYTES = 1024 * 1024;

/**
 * A terminal page's output, written into xterm.js in log order: a PTY's screen as the gateway
 * keeps it ({@link screen}) and the output after it, or a pipe's replayed output; live output
 * follows, the text of one frame's events in one write.
 */
/** SGR around a pipe session's stderr: red, then the default colour again. */
const STDERR_START = "\x1b[31m";
const STDERR_END = "\x1b[39m";

export class TerminalOutput {
  private readonly term: Terminal;
  private readonly handlers: TerminalOutputHandlers;
  private pendingText = "";
  /** Output before this byte is on the screen already (the gateway's screen showed it). */
  private shownUpTo = 0;
  private readonly encoder = new TextEncoder();
  private flushQueued = false;
  private writesInFlight = 0;
  private _restored = false;
  /** Text batched for the next write holds history (see {@link catchingUp}). */
  private pendingHistory = false;
  /** Writes of history not yet parsed by xterm. */
  private historyWrites = 0;
  /** Bytes (string length for text) handed to xterm and not yet parsed. */
  private inXterm = 0;
  /** Output waiting for xterm to take less than XTERM_INFLIGHT_BYTES, in order. */
  private queue: Array<{ data: string | Uint8Array; history: boolean }> = [];
  private queuedBytes = 0;
  /** The output byte after the last output event taken (where a new screen's skip starts). */
  private takenUpTo = 0;
  /** handlers.behind was called; the next screen clears it. */
  private askedForScreen = false;
  /** A new screen will replace what is queued: it waits for it instead of going to xterm. */
  private awaitingScreen = false;
  /** Tells when live output trails the gateway, though little of it waits here (see LagProbe). */
  private readonly probe: LagProbe | undefined;

  constructor(term: Terminal, handlers: TerminalOutputHandlers) {
    this.term = term;
    this.handlers = handlers;
    const ping = handlers.ping;
    if (handlers.behind !== undefined && ping !== undefined)
      this.probe = new LagProbe(
        () => ping(),
        () => this.fellBehind(),
      );
  }

  /** Restored: every event up to the head at subscription time is on the screen. */
  get restored(): boolean {
    return this._restored;
  }

  /**
   * True until the screen is restored: xterm answers the replay's queries (cursor position,
   * identity, colours) through onData as if typed, and the page must not send them (TerminalView).
   * The replay's last event and a live one beside it are written as they come ({@link accept}), so
   * a query in the instant a page opens goes unanswered.
   */
  get replaying(): boolean {
    return !this._restored;
  }

  /**
   * Output missed while the connection was down is being written (after a reconnect it comes
   * at once, as history): the queries in it were asked while nobody was there to answer, and a
   * late answer would reach whatever runs now as typed text.
   */
  get catchingUp(): boolean {
    return this.historyWrites > 0;
  }

  /**
   * Takes an output or resize event: held for the replay, or written. False for any other
   * event, which comes after what was held before it; the page handles it, then calls
   * {@link checkRestored} (the replay's last event may be of any type).
   */
  accept(event: SessionEvent): boolean {
    switch (event.type) {
      case "output":
        if (event.stream !== "stderr") {
          const end = event.offset + outputLength(event);
          // Live output only: a replay is as late as it is.
          if (this._restored && end > this.takenUpTo) this.probe?.taken(end - Math.max(event.offset, this.takenUpTo));
          this.takenUpTo = Math.max(this.takenUpTo, end);
        }
        if (event.stream === "stderr") {
          // A pipe session's stderr in red, apart from its stdout (the pen is set back after).
          const bytes =
            event.enc === "base64" ? decodeOutputData(event.data, "base64") : this.encoder.encode(event.data);
          this.flush();
          this.write(STDERR_START, this.handlers.isHistory(event.seq));
          this.write(bytes, this.handlers.isHistory(event.seq));
          this.write(STDERR_END, this.handlers.isHistory(event.seq));
        } else if (event.offset < this.shownUpTo) {
          // The first event after the screen may begin inside it: only the bytes after it are new.
          const bytes =
            event.enc === "base64" ? decodeOutputData(event.data, "base64") : this.encoder.encode(event.data);
          const fresh = bytes.subarray(Math.min(bytes.length, this.shownUpTo - event.offset));
          if (fresh.length > 0) {
            this.flush();
            this.write(fresh, this.handlers.isHistory(event.seq));
          }
        } else if (event.enc === "base64") {
          this.flush();
          this.write(decodeOutputData(event.data, "base64"), this.handlers.isHistory(event.seq));
        } else {
          this.pendingText += event.data;
          if (this.handlers.isHistory(event.seq)) this.pendingHistory = true;
          if (!this.flushQueued) {
            // Batch the events of one frame into one xterm write.
            this.flushQueued = true;
            queueMicrotask(() => this.flush());
          }
        }
        break;
      case "resize":
        this.flush();
        this.handlers.resize(event.cols, event.rows);
        break;
      default:
        return false;
    }
    this.checkRestored();
    return true;
  }

  /** The subscription is confirmed: an empty replay is through now. */
  ready(): void {
    this.checkRestored();
  }

  /**
   * The PTY's screen, before the output after it: drawn at its size, on a terminal cleared of what
   * it showed. Output still queued is dropped. Returns the bytes the screen skipped after the
   * output this page took (0 for the first screen).
   */
  screen(screen: SubscriptionScreen): number {
    const skipped = this.takenUpTo > 0 ? Math.max(0, screen.offset - this.takenUpTo) : 0;
    this.pendingText = "";
    this.pendingHistory = false;
    for (const dropped of this.queue) {
      this.writesInFlight--;
      if (dropped.history) this.historyWrites--;
    }
    this.queue = [];
    this.queuedBytes = 0;
    this.askedForScreen = false;
    this.awaitingScreen = false;
    this.handlers.resize(screen.ptyCols, screen.ptyRows);
    this.term.reset();
    this.shownUpTo = screen.offset;
    this.takenUpTo = screen.offset;
    this.write(screen.data);
    return skipped;
  }

  /** Retention dropped `count` events the page had not seen: a dim line says so, in their place. */
  retentionDropped(count: number): void {
    this.flush();
    this.write(`\r\n\x1b[2m[… ${count} earlier events were dropped by retention …]\x1b[0m\r\n`);
  }

  /** Writes the batched text now (the session's end comes after it). */
  flush(): void {
    this.flushQueued = false;
    if (this.pendingText === "") return;
    const text = this.pendingText;
    this.pendingText = "";
    const history = this.pendingHistory;
    this.pendingHistory = false;
    this.write(text, history);
  }

  /** Marks the screen restored once the replay is through and xterm has written all of it. */
  checkRestored(): void {
    if (this._restored || !this.handlers.replayed() || this.writesInFlight > 0 || this.pendingText !== "") return;
    this._restored = true;
    this.handlers.restored();
    this.term.scrollToBottom();
  }

  private write(data: string | Uint8Array, history = false): void {
    if (this.inXterm >= XTERM_INFLIGHT_BYTES || this.queue.length > 0 || this.awaitingScreen) {
      this.queue.push({ data, history });
      this.queuedBytes += data.length;
      this.writesInFlight++;
      if (history) this.historyWrites++;
      if (this.queuedBytes > PAGE_LAG_BYTES) this.fellBehind();
      return;
    }
    this.writesInFlight++;
    if (history) this.historyWrites++;
    this.toXterm(data, history);
  }

  /** Asks for a new screen (once until it comes); what waits for xterm then waits for the screen. */
  private fellBehind(): void {
    if (this.askedForScreen || this.handlers.behind === undefined) return;
    this.askedForScreen = true;
    this.awaitingScreen = this.handlers.behind();
  }

  /** Hands `data` to xterm (counted in writesInFlight already), then the queue as xterm takes it. */
  private toXterm(data: string | Uint8Array, history: boolean): void {
    this.inXterm += data.length;
    this.term.write(data, () => {
      this.inXterm -= data.length;
      this.writesInFlight--;
      if (history) this.historyWrites--;
      while (this.inXterm < XTERM_INFLIGHT_BYTES && this.queue.length > 0 && !this.awaitingScreen) {
        const next = this.queue.shift()!;
        this.queuedBytes -= next.data.length;
        this.toXterm(next.data, next.history);
      }
      this.checkRestored();
    });
  }
}

/** An output event's size in bytes (text is counted as UTF-8). */
function outputLength(event: Extract<SessionEvent, { type: "output" }>): number {
  if (event.enc === "base64")
    return Math.floor((event.data.length * 3) / 4) - (event.data.match(/=+$/)?.[0].length ?? 0);
  return utf8Length(event.data);
}

function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c < 0xdc00 ? (i++, 4) : 3;
  }
  return n;
}
