import type { Terminal } from "@xterm/xterm";
import type { SubscriptionScreen } from "../../src/client/index.js";
import type { SessionEvent } from "../../src/protocol/index.js";
import { decodeOutputData } from "../../src/core/utf8-chunker.js";

export interface TerminalOutputHandlers {
  /** Every event up to the head at subscription time has been delivered (the feed's `replayed`). */
  replayed(): boolean;
  /** A resize event, in its place among the output. */
  resize(cols: number, rows: number): void;
  /** Everything up to the head at subscription time is on the screen (called once). */
  restored(): void;
  /** Whether event `seq` is history: missed while the connection was down (see SessionFeed.isHistory). */
  isHistory(seq: number): boolean;
}

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

  constructor(term: Terminal, handlers: TerminalOutputHandlers) {
    this.term = term;
    this.handlers = handlers;
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

  /** The PTY's screen, before the output after it: drawn at its size, on a terminal cleared of what it showed. */
  screen(screen: SubscriptionScreen): void {
    this.flush();
    this.handlers.resize(screen.ptyCols, screen.ptyRows);
    this.term.reset();
    this.shownUpTo = screen.offset;
    this.write(screen.data);
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
    this.writesInFlight++;
    if (history) this.historyWrites++;
    this.term.write(data, () => {
      this.writesInFlight--;
      if (history) this.historyWrites--;
      this.checkRestored();
    });
  }
}
