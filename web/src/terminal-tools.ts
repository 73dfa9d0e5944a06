import { SearchAddon } from "@xterm/addon-search";
import type { Terminal } from "@xterm/xterm";
import type { SessionInfo } from "../../src/protocol/index.js";
import type { AppContext } from "./context.js";
import { h, icon } from "./dom.js";
import { errorText } from "./format.js";

/** The smallest font "fit to width" goes down to: 134 columns fit 390 px at about 4.9 px. */
export const FIT_MIN_FONT_PX = 4;
/**
 * Below this font "fit to width" on a phone held upright says how to read it larger: turned
 * sideways (134 columns fit 844 px at about 10 px), or zoomed with two fingers, which the page allows.
 */
export const FIT_READABLE_FONT_PX = 6;
/** Font sizes "fit to width" sets are multiples of this, so a size settles instead of creeping. */
const FIT_FONT_STEP_PX = 0.25;
/** Measure-and-set rounds per fit: a font's cell width is not quite proportional to its size. */
const FIT_ROUNDS = 4;
/** How long a download's object URL lives after its click (the browser has the file by then). */
const DOWNLOAD_URL_MS = 60_000;

type Export = "raw" | "text" | "cast";
const EXPORTS: Record<Export, { label: string; extension: string; title: string }> = {
  raw: { label: "Download output", extension: "out", title: "All the output, as the program wrote it (bytes)" },
  text: { label: "Download text", extension: "txt", title: "All the output as text, without escape sequences" },
  cast: { label: "Export recording", extension: "cast", title: "An asciicast v2 recording (asciinema play)" },
};

export interface TerminalToolsOptions {
  term: Terminal;
  session: () => SessionInfo;
  /** The terminal's frame: "fit to width" scales the font until the screen fits its width. */
  frame: () => HTMLElement;
  /** "Fit to width" was turned on or off: the terminal keeps the PTY's size while it is on. */
  fitToggled?: () => void;
}

/**
 * The terminal header's "Tools" menu: find in the terminal (xterm's search addon), download the
 * whole output (bytes or text) or an asciicast recording, both streamed by the gateway
 * (docs/protocol.md, "Recordings and transcripts"), and, for a PTY, "fit to width", which scales
 * the font so a session wider than the window (134 columns on a phone) shows without scrolling.
 */
export class TerminalTools {
  readonly element: HTMLElement;
  private readonly search = new SearchAddon();
  private readonly menu: HTMLDetailsElement;
  private readonly findBar: HTMLFormElement;
  private readonly findInput: HTMLInputElement;
  private readonly findStatus: HTMLElement;
  private readonly fitButton: HTMLButtonElement | null;
  private readonly baseFont: number;
  private fitting = false;
  private fitFrame = 0;
  /** The small-font hint was shown since fit to width was turned on. */
  private fitHinted = false;
  private readonly disposers: (() => void)[] = [];

  constructor(
    private readonly ctx: AppContext,
    private readonly options: TerminalToolsOptions,
  ) {
    const { term } = options;
    term.loadAddon(this.search);
    this.baseFont = term.options.fontSize ?? 13;
    const session = options.session();
    const item = (test: string, label: string, title: string, action: () => void) =>
      h(
        "button",
        {
          class: "menu-item",
          type: "button",
          role: "menuitem",
          title,
          "data-test": test,
          onclick: () => {
            this.menu.open = false;
            action();
          },
        },
        label,
      );
    this.fitButton = session.pty
      ? item("tool-fit", "Fit to width", "Scale the font so every column shows", () => this.setFit(!this.fitting))
      : null;
    this.fitButton?.setAttribute("aria-pressed", "false");
    const exports = (session.pty ? (["raw", "text", "cast"] as const) : (["raw", "text"] as const)).map((kind) =>
      item(`tool-download-${kind}`, EXPORTS[kind].label, EXPORTS[kind].title, () => void this.download(kind)),
    );
    this.menu = h(
      "details",
      { class: "tools-menu" },
      h("summary", { class: "btn btn-small", title: "Find, download, fit", "data-test": "terminal-tools" }, "Tools"),
      h(
        "div",
        { class: "menu-list", role: "menu" },
        item("tool-find", "Find…", "Find text in the terminal", () => this.openFind()),
        exports,
        this.fitButton,
      ),
    );
    this.findInput = h("input", {
      type: "search",
      placeholder: "Find",
      "aria-label": "Find in the terminal",
      "data-test": "find-input",
      oninput: () => this.find("next", true),
      onkeydown: (event: Event) => {
        if ((event as KeyboardEvent).key === "Escape") this.closeFind();
      },
    });
    this.findStatus = h("span", { class: "find-status", role: "status", "data-test": "find-status" });
    const findButton = (direction: "next" | "previous", label: string) =>
      h(
        "button",
        { class: "btn btn-small", type: "button", title: `Find ${direction}`, onclick: () => this.find(direction) },
        label,
      );
    this.findBar = h(
      "form",
      {
        class: "find-bar",
        hidden: true,
        "data-test": "find-bar",
        onsubmit: (event: Event) => {
          event.preventDefault();
          this.find("next");
        },
      },
      this.findInput,
      findButton("previous", "↑"),
      findButton("next", "↓"),
      this.findStatus,
      h(
        "button",
        {
          class: "btn btn-small btn-icon",
          type: "button",
          "aria-label": "Close find",
          onclick: () => this.closeFind(),
        },
        icon("x"),
      ),
    );
    this.element = h("span", { class: "terminal-tools" }, this.menu, this.findBar);
    // Closes the menu on a click elsewhere, as a menu does.
    const outside = (event: MouseEvent) => {
      if (this.menu.open && !this.menu.contains(event.target as Node)) this.menu.open = false;
    };
    document.addEventListener("click", outside);
    this.disposers.push(() => document.removeEventListener("click", outside));
    const resized = term.onResize(() => this.scheduleFit());
    this.disposers.push(() => resized.dispose());
  }

  /** Called once the terminal is open: "fit to width" follows the frame's size. */
  mounted(): void {
    const observer = new ResizeObserver(() => this.scheduleFit());
    observer.observe(this.options.frame());
    this.disposers.push(() => observer.disconnect());
  }

  dispose(): void {
    cancelAnimationFrame(this.fitFrame);
    for (const dispose of this.disposers) dispose();
    this.disposers.length = 0;
  }

  /* ------------------------------------------------------------------ find */

  /** Opens the find bar with `text` and finds its last occurrence (a search hit opened: log-hits.ts). */
  findText(text: string): void {
    this.findInput.value = text;
    this.findBar.hidden = false;
    this.find("previous");
  }

  private openFind(): void {
    this.findBar.hidden = false;
    this.findInput.focus();
    this.findInput.select();
  }

  private closeFind(): void {
    this.findBar.hidden = true;
    this.search.clearDecorations();
    this.options.term.clearSelection();
    this.options.term.focus();
  }

  /** Selects the next (or previous) match: xterm draws the selection, and scrolls to it. */
  private find(direction: "next" | "previous", incremental = false): void {
    const text = this.findInput.value;
    if (text === "") {
      this.options.term.clearSelection();
      this.findStatus.textContent = "";
      return;
    }
    const found =
      direction === "next"
        ? this.search.findNext(text, { incremental })
        : this.search.findPrevious(text, { incremental });
    this.findStatus.textContent = found ? "" : "Not found";
    this.findBar.dataset["found"] = String(found);
  }

  /* ------------------------------------------------------------------ downloads */

  /** Fetches the export (the gateway streams it; the browser keeps it as a Blob) and saves it. */
  /** Downloads the session's whole output (`raw`: the bytes; `text`: without escape sequences). */
  async download(kind: Export): Promise<void> {
    const { id } = this.options.session();
    try {
      const blob =
        kind === "cast" ? await this.ctx.http.cast(id) : await this.ctx.http.transcript(id, { format: kind });
      const url = URL.createObjectURL(blob);
      h("a", { href: url, download: `${id}.${EXPORTS[kind].extension}` }).click();
      setTimeout(() => URL.revokeObjectURL(url), DOWNLOAD_URL_MS);
    } catch (error) {
      this.ctx.toast(`${EXPORTS[kind].label} failed: ${errorText(error)}`, "error");
    }
  }

  /* ------------------------------------------------------------------ fit to width */

  private setFit(on: boolean): void {
    this.fitting = on;
    this.fitButton?.setAttribute("aria-pressed", String(on));
    this.options.frame().dataset["fitWidth"] = String(on);
    this.fitHinted = false;
    if (on) this.scheduleFit();
    else this.options.term.options.fontSize = this.baseFont;
    this.options.fitToggled?.();
  }

  /** Whether "fit to width" is on: the font follows the window, and the PTY keeps its size. */
  get fittingWidth(): boolean {
    return this.fitting;
  }

  private scheduleFit(rounds = FIT_ROUNDS): void {
    if (!this.fitting) return;
    cancelAnimationFrame(this.fitFrame);
    this.fitFrame = requestAnimationFrame(() => {
      if (this.fitStep() && rounds > 1) this.scheduleFit(rounds - 1);
      else this.fitSettled();
    });
  }

  /** The font fit to width settled on (`data-fit-font`); too small to read upright, it says what helps. */
  private fitSettled(): void {
    const font = this.options.term.options.fontSize ?? this.baseFont;
    this.options.frame().dataset["fitFont"] = String(font);
    if (font >= FIT_READABLE_FONT_PX || this.fitHinted || window.innerHeight <= window.innerWidth) return;
    this.fitHinted = true;
    this.ctx.toast(
      `The text is ${font} px to fit ${this.options.term.cols} columns: turn the phone sideways to read it larger, or zoom in with two fingers`,
      "info",
    );
  }

  /**
   * One round: the font that makes the screen as wide as the frame (never above the usual size,
   * never below {@link FIT_MIN_FONT_PX}). True when it changed the font (measure again).
   */
  private fitStep(): boolean {
    const { term } = this.options;
    const screen = term.element?.querySelector<HTMLElement>(".xterm-screen");
    const frame = this.options.frame();
    if (!screen) return false;
    const style = getComputedStyle(frame);
    const room = frame.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const width = screen.getBoundingClientRect().width;
    const font = term.options.fontSize ?? this.baseFont;
    if (room <= 0 || width <= 0) return false;
    // Fits, and either at the usual size or filling most of the frame: leave it.
    if (width <= room && (font >= this.baseFont || width > room * 0.95)) return false;
    const scaled = Math.floor((font * room) / width / FIT_FONT_STEP_PX) * FIT_FONT_STEP_PX;
    const next = Math.max(FIT_MIN_FONT_PX, Math.min(this.baseFont, scaled));
    if (next === font) return false;
    term.options.fontSize = next;
    return true;
  }
}
