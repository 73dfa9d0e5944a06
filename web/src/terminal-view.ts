import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";
import { isConnectionError, isSwitchboardError } from "../../src/client/index.js";
import type { SessionEvent, SessionInfo } from "../../src/protocol/index.js";
import { decodeOutputData } from "../../src/core/utf8-chunker.js";
import type { AppContext, View } from "./context.js";
import { ControlBar } from "./control-bar.js";
import type { Control } from "./control-bar.js";
import { h } from "./dom.js";
import { EndBanner } from "./end-banner.js";
import { errorText, followErrorText, sessionTitle } from "./format.js";
import { SessionFeed } from "./session-feed.js";
import { ReplayBuffer } from "./replay-buffer.js";
import { SessionHeader } from "./session-header.js";
import {
  END_OF_INPUT,
  INPUT_CHUNK_CHARS,
  KEEP_FOCUS,
  escapeThenTab,
  inputChunks,
  isCopyKey,
  renderKeyBar,
  renderLineInput,
} from "./terminal-input.js";
import type { Keys } from "./terminal-input.js";
import { renderTextButton } from "./text-sheet.js";
import { TERMINAL_THEME } from "./theme.js";

/** Lines xterm keeps above the screen: a restored 10,000-line log fits (bench/web.ts). */
export const TERMINAL_SCROLLBACK_LINES = 10_000;
/** A window resize is fitted (and sent to the PTY) after it has been quiet this long. */
export const FIT_DEBOUNCE_MS = 80;
/** The smallest size sent to a PTY: below this, programs draw nonsense. */
export const MIN_COLS = 20;
export const MIN_ROWS = 5;

/**
 * One terminal (or stream) session in xterm.js, fed by the multiplexed WebSocket from seq 0:
 * the replay restores the screen (resize events included, so it reflows as it did live),
 * then output streams on. The SDK resumes after a drop from the last seq it delivered, so
 * nothing is lost or written twice.
 *
 * Typing needs the control lease: the view takes it when nobody holds it, shows a read-only
 * bar with "Take control" (a force takeover) when someone else does, and never steers for a
 * viewer. In control, the PTY follows this window's size; otherwise xterm follows the PTY's.
 */
export class TerminalView implements View {
  readonly element: HTMLElement;
  private readonly ctx: AppContext;
  private session: SessionInfo;
  private readonly term: Terminal;
  private readonly fitAddon = new FitAddon();
  private readonly header: SessionHeader;
  private readonly feed: SessionFeed;
  private readonly host: HTMLElement;
  private readonly controlBar: ControlBar;
  private readonly endBanner = new EndBanner();
  private readonly lineInput: HTMLFormElement | null;
  /** "^C" in the header; none for a stream session, which has no process to interrupt. */
  private readonly interruptButton: HTMLButtonElement | null;
  private readonly disposers: (() => void)[] = [];
  private control: Control;
  private pendingText = "";
  /** Output and resizes of the replay, written once it is through (see ReplayBuffer); null after. */
  private replay: ReplayBuffer | null = new ReplayBuffer();
  private flushQueued = false;
  private writesInFlight = 0;
  private restored = false;
  private ended: Extract<SessionEvent, { type: "exit" | "lost" }> | null = null;
  private fitTimer: ReturnType<typeof setTimeout> | undefined;
  private disposed = false;
  private acquiring = false;
  /**
   * Taking control by itself (see {@link maybeAutoAcquire}) was cut off by a dropped connection:
   * it is tried again once the connection is back. The SDK takes back only leases it was granted.
   */
  private acquireOnReconnect = false;
  /**
   * Keys typed while an acquire is pending (including the one that started it), sent in order
   * once control is ours and dropped if it is not. Nothing overtakes them: the log's control
   * event can name this page before the acquire's ack arrives, and a key sent then would go
   * out ahead of them. Bounded in time: the acquire is answered or times out (the SDK's
   * REQUEST_TIMEOUT_MS).
   */
  private typedAhead: Keys[] = [];

  constructor(ctx: AppContext, session: SessionInfo) {
    this.ctx = ctx;
    this.session = session;
    this.control = session.controller === null ? { kind: "free" } : { kind: "other", name: session.controller };
    const pty = session.pty;
    this.term = new Terminal({
      allowProposedApi: false,
      convertEol: !pty,
      cursorBlink: pty,
      disableStdin: !ctx.canSteer || !pty,
      fontFamily: '"JetBrains Mono", "Fira Code", "DejaVu Sans Mono", ui-monospace, Menlo, Consolas, monospace',
      fontSize: 13,
      lineHeight: 1.15,
      scrollback: TERMINAL_SCROLLBACK_LINES,
      theme: TERMINAL_THEME,
      ...(pty && session.cols !== null && session.rows !== null ? { cols: session.cols, rows: session.rows } : {}),
    });
    this.term.loadAddon(this.fitAddon);
    this.interruptButton = ctx.canSteer && session.kind !== "stream" ? this.renderInterrupt() : null;
    this.header = new SessionHeader(ctx, session, {
      actions: [
        renderTextButton(() => sessionTitle(this.session), this.term),
        ...(this.interruptButton ? [this.interruptButton] : []),
      ],
      onUpdate: (fresh) => {
        this.session = { ...fresh };
        this.showInterrupt();
      },
    });
    this.host = h("div", { class: "term-host" });
    this.controlBar = new ControlBar(ctx.me.name, {
      acquire: (force) => void this.acquire(force),
      release: () => void this.release(),
    });
    const type = (data: Keys): void => this.type(data);
    this.lineInput = pty || session.kind !== "terminal" || !ctx.canSteer ? null : renderLineInput(type);
    this.element = h(
      "section",
      { class: `view terminal-view${pty ? " pty" : " pipe"}`, "data-session": session.id },
      this.header.element,
      this.controlBar.element,
      h("div", { class: "term-wrap" }, this.host),
      this.endBanner.element,
      pty && ctx.canSteer ? renderKeyBar({ type, focusTerminal: () => this.term.focus() }) : null,
      this.lineInput,
    );

    // Keys xterm leaves to the browser (false):
    // - Escape, then Tab (or Shift+Tab), moves the focus out of the terminal, as in CodeMirror:
    //   a terminal takes every other key, Tab included, and would otherwise be a keyboard trap.
    //   The Escape still reaches the program; the Tab right after it is the browser's.
    // - Ctrl+C (or Ctrl+Insert) with text selected copies it, as in VS Code's terminal, instead
    //   of interrupting the program: the browser's copy event gets the selection. Without a
    //   selection Ctrl+C is ^C as ever.
    const leaving = escapeThenTab();
    this.term.attachCustomKeyEventHandler((event) => {
      if (leaving(event)) return false;
      return !(isCopyKey(event) && this.term.hasSelection());
    });
    this.term.onData((data) => this.type(data));
    this.term.onBinary((data) => this.type(data));
    this.disposers.push(
      ctx.client.on("state", ({ state }) => {
        if (state !== "open" || !this.acquireOnReconnect) return;
        this.acquireOnReconnect = false;
        // Whoever the page last saw in control: the events since the drop are still to come. Someone
        // who took control meanwhile keeps it (no force).
        if (this.ctx.canSteer && this.running && this.control.kind !== "mine") void this.acquire(false, "automatic");
      }),
      ctx.client.on("control-lost", (lost) => {
        if (lost.session !== this.session.id) return;
        // The log's control event names the new holder; this only covers its absence.
        if (this.control.kind === "mine")
          this.setControl({ kind: "other", name: lost.holder ?? this.session.controller ?? "someone else" });
        // Taken over from another of this user's pages: that page is where they type now.
        if (lost.holder === ctx.me.name) ctx.toast("You took control in another tab or window", "info");
        // Someone else took it (CONTROL_LOST, CONTROL_HELD): the gateway's message names them.
        else ctx.toast(`You lost control: ${lost.message}`, "error");
      }),
    );

    this.feed = new SessionFeed(ctx, session.id, {
      onEvent: (event) => this.onEvent(event),
      onReset: (info) => {
        this.flushText();
        this.write(
          `\r\n\x1b[2m[… ${info.first - info.lastSeq - 1} earlier events were dropped by retention …]\x1b[0m\r\n`,
        );
      },
      onError: (error) => this.endBanner.showError(followErrorText(error)),
      onReady: () => {
        if (this.feed.replayed) this.playReplay();
        this.checkRestored();
        this.maybeAutoAcquire();
      },
    });
    this.renderControl();
  }

  /** Called once the element is in the document: xterm measures its cells on open. */
  mounted(): void {
    this.term.open(this.host);
    const observer = new ResizeObserver(() => this.scheduleFit());
    observer.observe(this.host);
    this.disposers.push(() => observer.disconnect());
    this.applySize();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.fitTimer !== undefined) clearTimeout(this.fitTimer);
    for (const dispose of this.disposers) dispose();
    this.feed.dispose();
    if (this.control.kind === "mine" && this.ended === null) {
      this.ctx.client.control(this.session.id, "release").catch((error: unknown) => {
        // Leaving the page: the lease also lapses on disconnect or after its TTL.
        console.debug("release on leave failed", error);
      });
    }
    this.header.dispose();
    this.term.dispose();
  }

  debug(): unknown {
    return {
      kind: "terminal",
      session: this.session.id,
      restored: this.restored,
      control: this.ctx.canSteer ? this.control.kind : "viewer",
      cols: this.term.cols,
      rows: this.term.rows,
      lastSeq: this.feed.lastSeq,
      ended: this.ended?.type ?? null,
      screen: this.term.buffer.active.type,
      text: this.screenText(),
    };
  }

  /* ------------------------------------------------------------------ events */

  private onEvent(event: SessionEvent): void {
    if (this.replay !== null) {
      if (!this.feed.replayed && this.holdForReplay(event)) return;
      // The replay's last event, or one after it: what was held goes first.
      if (this.feed.replayed) this.playReplay();
    }
    switch (event.type) {
      case "output":
        if (event.enc === "base64") {
          this.flushText();
          this.write(decodeOutputData(event.data, "base64"));
        } else {
          this.pendingText += event.data;
          if (!this.flushQueued) {
            // Batch the events of one frame into one xterm write.
            this.flushQueued = true;
            queueMicrotask(() => this.flushText());
          }
        }
        break;
      case "resize":
        this.flushText();
        this.session = { ...this.session, cols: event.cols, rows: event.rows };
        if (this.session.pty) this.term.resize(event.cols, event.rows);
        break;
      case "control":
        if (event.holder === null) this.setControl({ kind: "free" });
        else if (event.holder.connId !== undefined && event.holder.connId === this.ctx.client.hello?.connId)
          this.setControl({ kind: "mine" });
        else this.setControl({ kind: "other", name: event.holder.name });
        break;
      case "exit":
      case "lost":
        this.flushText();
        this.ended = event;
        this.session = {
          ...this.session,
          state: event.type === "exit" ? "exited" : "lost",
          ...(event.type === "exit" ? { exitCode: event.exitCode, signal: event.signal } : {}),
          endedAt: event.ts,
        };
        this.term.options.disableStdin = true;
        this.term.options.cursorBlink = false;
        this.endBanner.showEnd(event, this.session.createdAt);
        // The lease ended with the session (the SDK says nothing of a lease whose session ended).
        this.control = { kind: "free" };
        this.renderControl();
        break;
      default:
        break;
    }
    this.checkRestored();
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
        this.flushText();
        this.write(item.bytes);
      } else {
        this.flushText();
        this.session = { ...this.session, cols: item.cols, rows: item.rows };
        if (this.session.pty) this.term.resize(item.cols, item.rows);
      }
    }
    this.flushText();
  }

  private flushText(): void {
    this.flushQueued = false;
    if (this.pendingText === "") return;
    const text = this.pendingText;
    this.pendingText = "";
    this.write(text);
  }

  private write(data: string | Uint8Array): void {
    this.writesInFlight++;
    this.term.write(data, () => {
      this.writesInFlight--;
      this.checkRestored();
    });
  }

  /** Restored: every event up to the head at subscription time is on the screen. */
  private checkRestored(): void {
    if (this.restored || !this.feed.replayed || this.writesInFlight > 0 || this.pendingText !== "") return;
    this.restored = true;
    this.element.dataset["restored"] = "true";
    this.term.scrollToBottom();
  }

  /* ------------------------------------------------------------------ control */

  private get running(): boolean {
    return this.ended === null && this.session.state === "running";
  }

  private maybeAutoAcquire(): void {
    if (this.ctx.canSteer && this.running && this.control.kind === "free" && this.session.kind === "terminal")
      void this.acquire(false, "automatic");
  }

  /**
   * Asks for the control lease. `by`: the user asked (Take control, or typing, whose keys wait for
   * it), or the page by itself, which is not news the user needs when the connection is down.
   */
  private async acquire(force: boolean, by: "user" | "automatic" = "user"): Promise<void> {
    if (this.acquiring) return;
    this.acquiring = true;
    try {
      await this.ctx.client.control(this.session.id, "acquire", { force });
      this.setControl({ kind: "mine" });
      this.focusInput();
      for (const data of this.typedAhead.splice(0)) this.send(data);
    } catch (error) {
      const dropped = this.typedAhead.splice(0).length > 0;
      const holder = (error as { details?: { holder?: unknown } }).details?.holder;
      if ((error as { code?: unknown }).code === "CONTROL_HELD") {
        this.setControl({ kind: "other", name: typeof holder === "string" ? holder : "someone else" });
        if (dropped) this.controlBar.nudge();
      } else if (by === "automatic" && !dropped && isConnectionError(error)) {
        // The connection dropped under the request, or was down until it timed out: the
        // connection pill says so, and whatever the gateway granted went with the connection.
        this.acquireOnReconnect = true;
      } else if (by === "automatic" && isSwitchboardError(error, "SESSION_NOT_RUNNING", "SESSION_NOT_FOUND")) {
        // It ended (or went) while the connection was away: its end event and banner say so.
      } else this.ctx.toast(`Could not take control: ${errorText(error)}`, "error");
    } finally {
      this.acquiring = false;
    }
  }

  /** Where typing goes: a pipe session's line box (its xterm takes no keys), else the terminal. */
  private focusInput(): void {
    (this.lineInput?.querySelector("input") ?? this.term).focus();
  }

  private async release(): Promise<void> {
    try {
      await this.ctx.client.control(this.session.id, "release");
      this.setControl({ kind: "free" });
    } catch (error) {
      this.ctx.toast(`Could not release control: ${errorText(error)}`, "error");
    }
  }

  private setControl(control: Control): void {
    const was = this.control.kind;
    this.control = control;
    this.renderControl();
    if (was !== control.kind) this.applySize();
  }

  private renderControl(): void {
    const state = this.controlBar.render({
      canSteer: this.ctx.canSteer,
      running: this.running,
      kind: this.session.kind,
      control: this.control,
    });
    this.element.dataset["control"] = state;
    if (this.lineInput) this.lineInput.hidden = state !== "mine" && state !== "free";
    this.showInterrupt();
  }

  /** "^C" only while the session runs: like the header's "Stop", it follows the store too. */
  private showInterrupt(): void {
    if (this.interruptButton) this.interruptButton.hidden = !this.running;
  }

  /* ------------------------------------------------------------------ input */

  private type(data: Keys): void {
    if (!this.ctx.canSteer || !this.running) return;
    if (this.acquiring) this.typedAhead.push(data);
    else if (this.control.kind === "mine") this.send(data);
    else if (this.control.kind === "free") {
      this.typedAhead.push(data);
      void this.acquire(false);
    } else this.controlBar.nudge();
  }

  private send(data: Keys): void {
    const failed = (error: unknown): void => {
      if ((error as { code?: unknown }).code === "SESSION_NOT_RUNNING") return; // the exit event says it
      this.ctx.toast(`Input not sent: ${errorText(error)}`, "error");
    };
    if (data === END_OF_INPUT) {
      this.ctx.client.input(this.session.id, "", { eof: true }).catch(failed);
      return;
    }
    for (const piece of inputChunks(data, INPUT_CHUNK_CHARS))
      this.ctx.client.input(this.session.id, piece).catch(failed);
  }

  private renderInterrupt(): HTMLButtonElement {
    return h(
      "button",
      {
        class: "btn btn-small",
        type: "button",
        title: "Interrupt (Ctrl-C)",
        // Like the key bar's keys: typing goes on in the terminal after ^C.
        ...KEEP_FOCUS,
        onclick: () => {
          if (this.session.pty) this.type("\x03");
          else
            this.ctx.client
              .signal(this.session.id, "INT")
              .catch((error: unknown) => this.ctx.toast(`Signal not sent: ${errorText(error)}`, "error"));
        },
      },
      "^C",
    );
  }

  /* ------------------------------------------------------------------ size */

  private scheduleFit(): void {
    if (this.fitTimer !== undefined) clearTimeout(this.fitTimer);
    this.fitTimer = setTimeout(() => {
      this.fitTimer = undefined;
      this.applySize();
    }, FIT_DEBOUNCE_MS);
  }

  /**
   * In control of a PTY (or for pipes, which have no size): fit xterm to the window and tell
   * the PTY. Watching a PTY: show it at its own size; the frame scrolls if the window is smaller.
   */
  private applySize(): void {
    if (this.disposed || !this.term.element) return;
    const pty = this.session.pty;
    if (pty && (this.control.kind !== "mine" || !this.running)) {
      const { cols, rows } = this.session;
      if (cols !== null && rows !== null && (cols !== this.term.cols || rows !== this.term.rows))
        this.term.resize(cols, rows);
      this.element.classList.remove("fitted");
      return;
    }
    this.element.classList.add("fitted");
    const proposed = this.fitAddon.proposeDimensions();
    if (!proposed || !Number.isFinite(proposed.cols) || !Number.isFinite(proposed.rows)) return;
    const cols = Math.max(MIN_COLS, proposed.cols);
    const rows = Math.max(MIN_ROWS, proposed.rows);
    if (cols !== this.term.cols || rows !== this.term.rows) this.term.resize(cols, rows);
    if (pty && (cols !== this.session.cols || rows !== this.session.rows)) {
      const before = { cols: this.session.cols, rows: this.session.rows };
      this.session = { ...this.session, cols, rows };
      this.ctx.client.resize(this.session.id, { cols, rows }).catch((error: unknown) => {
        if ((error as { code?: unknown }).code === "SESSION_NOT_RUNNING") return;
        // Not applied, or not known to be: the size is sent again by the next fit (once this page
        // is in control again after a dropped connection), not taken as the PTY's.
        if (this.session.cols === cols && this.session.rows === rows) this.session = { ...this.session, ...before };
        // A dropped connection: the connection pill says so already (a gateway restart showed a
        // resize error besides).
        if (isConnectionError(error)) return;
        this.ctx.toast(`Resize not sent: ${errorText(error)}`, "error");
      });
    }
  }

  /** The whole buffer as text, wrapped lines joined (tests and the benchmark read it). */
  private screenText(): string {
    const buffer = this.term.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < buffer.length; i++) {
      const line = buffer.getLine(i);
      if (!line) continue;
      const text = line.translateToString(true);
      if (line.isWrapped && lines.length > 0) lines[lines.length - 1] += text;
      else lines.push(text);
    }
    while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
    return lines.join("\n");
  }
}

/** Ctrl+C or Ctrl+Insert (no other modifier): the keys that copy a selection outside macOS. */
