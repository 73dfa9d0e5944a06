import type { Terminal } from "@xterm/xterm";
import type { SessionEvent } from "../../src/protocol/index.js";
import { decodeOutputData } from "../../src/core/utf8-chunker.js";
import { ReplayBuffer } from "./replay-buffer.js";

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
 * A terminal page's output, written into xterm.js in log order: the replay's output and resizes
 * are held until it is through and then written at once (see ReplayBuffer), so the screen
 * comes back as it was; live output follows, the text of one frame's events in one write.
 */
export class TerminalOutput {
  private readonly term: Terminal;
  private readonly handlers: TerminalOutputHandlers;
  private pendingText = "";
  /** Output and resizes of the replay, written once it is through (see ReplayBuffer); null after. */
  private replay: ReplayBuffer | null = new ReplayBuffer();
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
    if (this.replay !== null) {
      if (!this.handlers.replayed() && this.holdForReplay(event)) return true;
      // The replay's last event, or one after it: what was held goes first.
      if (this.handlers.replayed()) this.playReplay();
    }
    switch (event.type) {
      case "output":
        if (event.enc === "base64") {
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

  /** The subscription is confirmed: a replay already through (an empty one too) is written now. */
  ready(): void {
    if (this.handlers.replayed()) this.playReplay();
    this.checkRestored();
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

  /** Keeps replayed output and resizes for {@link playReplay}; false for events handled at once. */
  private holdForReplay(event: SessionEvent): boolean {
    const replay = this.replay!;
    if (event.type === "output") {
      replay.push(
        event.enc === "base64"
          ? { kind: "bytes", bytes: decodeOutputData(event.data, "base64") }
          : { kind: "text", text: event.data },
      );
      return true;
    }
    if (event.type === "resize") {
      replay.push({ kind: "resize", cols: event.cols, rows: event.rows });
      return true;
    }
    return false;
  }

  /** Writes the held replay (whole, or its tail after a long history), then follows live. */
  private playReplay(): void {
    const replay = this.replay;
    if (replay === null) return;
    this.replay = null;
    for (const item of replay.drain()) {
      if (item.kind === "text") {
        this.pendingText += item.text;
      } else if (item.kind === "bytes") {
        this.flush();
        this.write(item.bytes);
      } else {
        this.flush();
        this.handlers.resize(item.cols, item.rows);
      }
    }
    this.flush();
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
