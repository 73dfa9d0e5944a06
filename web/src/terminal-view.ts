import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";
import { isConnectionError, isSwitchboardError } from "../../src/client/index.js";
import { skippedText } from "../../src/protocol/index.js";
import type { SessionEvent, SessionInfo } from "../../src/protocol/index.js";
import { isTerminalReport } from "../../src/core/terminal-reports.js";
import type { AppContext, View } from "./context.js";
import { fill, h } from "./dom.js";
import { CursorFollow } from "./cursor-follow.js";
import { EndBanner } from "./end-banner.js";
import { errorText, followErrorText, sessionTitle } from "./format.js";
import { SessionFeed } from "./session-feed.js";
import { SessionHeader } from "./session-header.js";
import { TerminalControl } from "./terminal-control.js";
import { KEEP_FOCUS, escapeThenTab, isCopyKey, renderKeyBar, renderLineInput } from "./terminal-input.js";
import type { Keys } from "./terminal-input.js";
import { EVERY_BYTE_KEY, TerminalOutput } from "./terminal-output.js";
import { TerminalTools } from "./terminal-tools.js";
import { RESTORE_TYPEAHEAD_CHARS, RestoreStatus } from "./restore-status.js";
import { renderTextButton } from "./text-sheet.js";
import { onThemeChange, terminalTheme } from "./theme.js";
import { renderScreenReaderToggle, screenReaderWanted } from "./screen-reader-toggle.js";

/** A window resize is fitted (and sent to the PTY) after it has been quiet this long. */
export const FIT_DEBOUNCE_MS = 80;
/** Lines of scrollback a terminal page keeps (a PTY's screen from the gateway brings up to 1,000). */
export const TERMINAL_SCROLLBACK_LINES = 10_000;
function everyByte(): boolean {
  return localStorage.getItem(EVERY_BYTE_KEY) === "1";
}

/** The smallest size sent to a PTY: below this, programs draw nonsense. */
export const MIN_COLS = 20;
export const MIN_ROWS = 5;

/**
 * One terminal (or stream) session in xterm.js, fed by the multiplexed WebSocket from seq 0: the
 * replay restores the screen (resize events included), then output streams on (TerminalOutput);
 * the SDK resumes after a drop from the last seq delivered, so nothing is lost or doubled.
 * Typing needs the control lease (TerminalControl); in control the PTY follows this window's
 * size, otherwise xterm follows the PTY's.
 */
export class TerminalView implements View {
  readonly element: HTMLElement;
  private readonly ctx: AppContext;
  private session: SessionInfo;
  private readonly term: Terminal;
  private readonly fitAddon = new FitAddon();
  private readonly header: SessionHeader;
  private readonly tools: TerminalTools;
  private feed: SessionFeed;
  private readonly output: TerminalOutput;
  private readonly host: HTMLElement;
  private readonly control: TerminalControl;
  private readonly endBanner = new EndBanner();
  /** "Restoring…" until the screen is back, and the keys typed meanwhile. */
  private readonly restoring: RestoreStatus;
  private readonly lineInput: HTMLFormElement | null;
  /** "^C" in the header; none for a stream session, which has no process to interrupt. */
  private readonly interruptButton: HTMLButtonElement | null;
  private readonly disposers: (() => void)[] = [];
  /** "showing 120x40 at 80x24" in the header: the PTY's size is not this window's. */
  private readonly sizeNote = h("span", { class: "size-note", hidden: true });
  /** Resizes the PTY to this window (a page that may steer, while the sizes differ). */
  private readonly fitButton: HTMLButtonElement;
  /** "skipped 12.3 MB — full output kept in the log": the page fell behind a flood and was sent the screen. */
  private readonly skipMark = h("div", { class: "skip-mark", role: "status", hidden: true, "data-test": "skip-mark" });
  /** Output bytes the gateway's screens skipped since this page opened. */
  private skippedBytes = 0;
  private ended: Extract<SessionEvent, { type: "exit" | "lost" }> | null = null;
  private fitTimer: ReturnType<typeof setTimeout> | undefined;
  private disposed = false;

  /** `find`: words of a search hit that opened the page (route.ts): found once the screen is restored. */
  constructor(ctx: AppContext, session: SessionInfo, find?: string) {
    this.ctx = ctx;
    this.session = session;
    const pty = session.pty;
    this.term = new Terminal({
      allowProposedApi: false,
      convertEol: !pty,
      // No blinking for a user who asked the system for less motion (styles.css does the same).
      cursorBlink: pty && !matchMedia("(prefers-reduced-motion: reduce)").matches,
      disableStdin: !ctx.canSteer || !pty,
      fontFamily: '"JetBrains Mono", "Fira Code", "DejaVu Sans Mono", ui-monospace, Menlo, Consolas, monospace',
      fontSize: 13,
      lineHeight: 1.15,
      scrollback: TERMINAL_SCROLLBACK_LINES,
      // Off unless asked for (see renderScreenReaderToggle): it keeps an accessible copy of the rows.
      screenReaderMode: screenReaderWanted(),
      theme: terminalTheme(),
      ...(pty && session.cols !== null && session.rows !== null ? { cols: session.cols, rows: session.rows } : {}),
    });
    this.term.loadAddon(this.fitAddon);
    this.interruptButton = ctx.canSteer && session.kind !== "stream" ? this.renderInterrupt() : null;
    this.tools = new TerminalTools(ctx, {
      term: this.term,
      session: () => this.session,
      frame: () => this.host.parentElement ?? this.host,
      // In control, the PTY stops (or starts again) following the window.
      fitToggled: () => {
        if (this.control.kind === "mine") this.applySize();
      },
    });
    this.fitButton = h(
      "button",
      {
        class: "btn btn-small",
        type: "button",
        hidden: true,
        title: "Resize the terminal to fit this window",
        onclick: () => this.fitPty(),
      },
      "Fit",
    );
    this.header = new SessionHeader(ctx, session, {
      actions: [
        this.sizeNote,
        this.fitButton,
        renderScreenReaderToggle(this.term),
        renderTextButton(() => sessionTitle(this.session), this.term),
        this.tools.element,
        ...(this.interruptButton ? [this.interruptButton] : []),
      ],
      onUpdate: (fresh) => {
        this.session = { ...fresh };
        this.showInterrupt();
      },
      // Undefined until the control exists (the header draws first); an ended session has none.
      control: () => (this.running ? (this.control as TerminalControl | undefined)?.holder : undefined),
    });
    this.host = h("div", { class: "term-host" });
    this.restoring = new RestoreStatus(session.outputBytes);
    this.control = new TerminalControl(ctx, {
      session: () => this.session,
      running: () => this.running,
      changed: (was) => {
        this.renderControl();
        this.header.refresh();
        // Also when control comes back to this page after a reconnect without ever having left
        // it (the lease's grace period): a resize the drop cut off is sent again now.
        if (was !== this.control.kind || this.control.kind === "mine") this.applySize();
      },
      // Unless the user moved the focus elsewhere while the request was on its way (Tab from
      // Take control to another button): the answer does not take it back (ui-terminal.test.ts,
      // "lets a screen reader read the terminal").
      acquired: () => {
        const focused = document.activeElement;
        if (focused === null || focused === document.body || this.control.element.contains(focused)) this.focusInput();
      },
    });
    const type = (data: Keys): void => this.control.type(data);
    this.lineInput = pty || session.kind !== "terminal" || !ctx.canSteer ? null : renderLineInput(type);
    this.element = h(
      "section",
      { class: `view terminal-view${pty ? " pty" : " pipe"}`, "data-session": session.id },
      this.header.element,
      this.control.element,
      this.skipMark,
      h("div", { class: "term-wrap" }, this.host, this.restoring.element),
      this.endBanner.element,
      pty && ctx.canSteer
        ? renderKeyBar({
            type,
            focusTerminal: () => this.term.focus(),
            applicationCursor: () => this.term.modes.applicationCursorKeysMode,
          })
        : null,
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
    // What xterm produces while it writes the replayed history is its answers to the queries in
    // it (a shell showed `R$ 2RR84;0;0c` and ran it on Enter): nobody typed it, and nobody
    // asked now. Keys pressed meanwhile wait for the screen (RestoreStatus), then go in order.
    // Live output's queries are answered as ever (a program running now waits for the answer).
    //
    // Answers to live queries go only from a page in control: from a watching page (or one that
    // released control) they answered the program a second time, and took the lease back as if
    // typed (isTerminalReport).
    const typed = (data: string): void => {
      const report = isTerminalReport(data);
      if (this.output.replaying) {
        if (report) return;
        const overflowed = this.restoring.overflowed;
        if (!this.restoring.hold(data) && !overflowed)
          ctx.toast(
            `The screen is still being restored: keys typed past the first ${RESTORE_TYPEAHEAD_CHARS} characters are not sent`,
            "info",
          );
        return;
      }
      if (report && (this.control.kind !== "mine" || this.output.catchingUp)) return;
      type(data);
    };
    this.term.onData(typed);
    this.term.onBinary(typed);

    this.output = new TerminalOutput(this.term, {
      replayed: () => this.feed.replayed,
      isHistory: (seq) => this.feed.isHistory(seq),
      resize: (cols, rows) => this.resized(cols, rows),
      restored: () => {
        this.element.dataset["restored"] = "true";
        const keys = this.restoring.finish();
        if (keys !== "") type(keys);
        if (find !== undefined) this.tools.findText(find);
      },
      // A pipe has no screen to skip to: its page shows every byte.
      ...(everyByte() || !session.pty ? {} : { behind: () => this.catchUp(), ping: () => ctx.client.ping() }),
    });
    this.feed = this.follow(session.pty);
    this.renderControl();
    this.header.refresh();
  }

  /**
   * The page trails the output (TerminalOutput): follows again from the gateway's screen, as on
   * opening, instead of writing the rest into xterm. False when no screen will come.
   */
  private catchUp(): boolean {
    if (this.disposed || this.ended !== null) return false;
    this.feed.dispose();
    this.feed = this.follow(true);
    return true;
  }

  private follow(screen: boolean): SessionFeed {
    const ctx = this.ctx;
    return new SessionFeed(
      ctx,
      this.session.id,
      {
        onEvent: (event) => {
          if (event.type === "output" && !this.restoring.done) this.restoring.reach(event.offset + event.data.length);
          this.onEvent(event);
        },
        onReset: (info) => this.output.retentionDropped(info.first - info.lastSeq - 1),
        onError: (error) => this.endBanner.showError(followErrorText(error)),
        onReady: () => {
          // Control first: keys typed while restoring wait for it, not for "read-only".
          this.control.maybeAutoAcquire();
          this.output.ready();
        },
        onScreen: (screen) => {
          this.restoring.reach(screen.offset);
          const skipped = this.output.screen(screen);
          if (skipped > 0) this.showSkipped(skipped);
        },
      },
      screen,
      0,
      !everyByte(),
    );
  }

  private showSkipped(bytes: number): void {
    this.skippedBytes += bytes;
    this.skipMark.hidden = false;
    fill(
      this.skipMark,
      h("span", {}, skippedText(this.skippedBytes)),
      h(
        "button",
        { class: "btn btn-small", type: "button", onclick: () => void this.tools.download("raw") },
        "Download output",
      ),
    );
  }

  /** Called once the element is in the document: xterm measures its cells on open. */
  mounted(): void {
    this.term.open(this.host);
    const observer = new ResizeObserver(() => this.scheduleFit());
    observer.observe(this.host);
    this.disposers.push(() => observer.disconnect());
    this.tools.mounted();
    this.disposers.push(() => this.tools.dispose());
    // The frame scrolls when the PTY is bigger than the window: it opens at the cursor.
    const cursor = new CursorFollow(this.term, this.host.parentElement ?? this.host);
    this.disposers.push(() => cursor.dispose());
    this.disposers.push(onThemeChange((theme) => (this.term.options.theme = theme)));
    this.applySize();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.fitTimer !== undefined) clearTimeout(this.fitTimer);
    for (const dispose of this.disposers) dispose();
    this.feed.dispose();
    this.control.dispose();
    this.header.dispose();
    this.term.dispose();
  }

  debug(): unknown {
    return {
      kind: "terminal",
      session: this.session.id,
      restored: this.output.restored,
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
    if (this.output.accept(event)) return;
    switch (event.type) {
      case "control":
        this.control.controlEvent(event);
        break;
      case "exit":
      case "lost":
        this.output.flush();
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
        this.control.ended();
        this.renderControl();
        break;
      default:
        break;
    }
    this.output.checkRestored();
  }

  /** A resize from the log, in its place among the output: xterm shows a PTY at its size. */
  private resized(cols: number, rows: number): void {
    this.session = { ...this.session, cols, rows };
    if (this.session.pty) this.term.resize(cols, rows);
    this.noteSize();
  }

  /* ------------------------------------------------------------------ control */

  private get running(): boolean {
    return this.ended === null && this.session.state === "running";
  }

  /** Where typing goes: a pipe session's line box (its xterm takes no keys), else the terminal. */
  private focusInput(): void {
    (this.lineInput?.querySelector("input") ?? this.term).focus();
  }

  private renderControl(): void {
    const state = this.control.render();
    this.element.dataset["control"] = state;
    if (this.term.element) this.noteSize();
    if (this.lineInput) this.lineInput.hidden = state !== "mine" && state !== "free";
    this.showInterrupt();
  }

  /** "^C" only while the session runs: like the header's "Stop", it follows the store too. */
  private showInterrupt(): void {
    if (this.interruptButton) this.interruptButton.hidden = !this.running;
  }

  private renderInterrupt(): HTMLButtonElement {
    return h(
      "button",
      {
        class: "btn btn-small",
        type: "button",
        title: "Interrupt (Ctrl-C)",
        "aria-label": "Interrupt (Ctrl-C)",
        // Like the key bar's keys: typing goes on in the terminal after ^C.
        ...KEEP_FOCUS,
        onclick: () => {
          if (this.session.pty) this.control.type("\x03");
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

  /** The size that fits this window, if it can be measured. */
  private windowSize(): { cols: number; rows: number } | undefined {
    // Measured as fitted: watching, the terminal is laid out at the PTY's size instead.
    const fitted = this.element.classList.contains("fitted");
    this.element.classList.add("fitted");
    const proposed = this.fitAddon.proposeDimensions();
    if (!fitted) this.element.classList.remove("fitted");
    if (!proposed || !Number.isFinite(proposed.cols) || !Number.isFinite(proposed.rows)) return undefined;
    return { cols: Math.max(MIN_COLS, proposed.cols), rows: Math.max(MIN_ROWS, proposed.rows) };
  }

  /** Says in the header when a watched PTY's size is not this window's, and offers to fit it. */
  private noteSize(): void {
    const { cols, rows, pty } = this.session;
    const fits = this.windowSize();
    const differs =
      pty &&
      this.running &&
      this.control.kind !== "mine" &&
      fits !== undefined &&
      cols !== null &&
      rows !== null &&
      (fits.cols !== cols || fits.rows !== rows);
    this.sizeNote.hidden = !differs;
    this.fitButton.hidden = !differs || !this.ctx.canSteer;
    if (differs) this.sizeNote.textContent = `showing ${cols}x${rows} at ${fits.cols}x${fits.rows}`;
  }

  /** The Fit button: the PTY takes this window's size (refused, as any resize, while someone else holds control). */
  private fitPty(): void {
    const fits = this.windowSize();
    if (fits === undefined) return;
    this.ctx.client.resize(this.session.id, fits).catch((error: unknown) => {
      this.ctx.toast(`Resize not sent: ${errorText(error)}`, "error");
    });
  }

  /**
   * In control of a PTY (or for pipes, which have no size): fit xterm to the window and tell
   * the PTY. Watching a PTY, or with "fit to width" on (which changes the font, never the PTY):
   * show it at its own size; the frame scrolls if the window is smaller.
   */
  private applySize(): void {
    if (this.disposed || !this.term.element) return;
    const pty = this.session.pty;
    if (pty && (this.control.kind !== "mine" || !this.running || this.tools.fittingWidth)) {
      const { cols, rows } = this.session;
      if (cols !== null && rows !== null && (cols !== this.term.cols || rows !== this.term.rows))
        this.term.resize(cols, rows);
      this.element.classList.remove("fitted");
      this.noteSize();
      return;
    }
    this.noteSize();
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
        if (isSwitchboardError(error, "SESSION_NOT_RUNNING")) return;
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
