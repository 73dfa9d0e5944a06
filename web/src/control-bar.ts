import type { ControlVia, SessionInfo } from "../../src/protocol/index.js";
import { fill, h, icon } from "./dom.js";
import { VIA_TEXT, holderName } from "./format.js";

/** Who may type: this page (`mine`), nobody yet (`free`), someone else (`other`, connected `via`, when known). */
export type Control = { kind: "mine" } | { kind: "free" } | { kind: "other"; name: string; via?: ControlVia };

/** What the bar shows: a viewer's page, an ended session, a stream, or whose the control is. */
export type ControlBarState = "viewer" | "ended" | "stream" | Control["kind"];

export interface ControlBarHandlers {
  /** "Take control": `force` takes it over from someone else. */
  acquire(force: boolean): void;
  release(): void;
}

/**
 * The bar above a terminal that says who may type: "You're in control" with Release, "Nobody
 * is in control" or "Read-only · alice is in control" (or "you are in control in another tab or
 * window") with Take control, or why nobody types (a viewer, a stream session). Hidden once the
 * session ended.
 */
export class ControlBar {
  readonly element: HTMLElement;
  /** The signed-in user's name: the lease is held per connection, so they may hold it on another page. */
  private readonly me: string;
  private readonly handlers: ControlBarHandlers;

  constructor(me: string, handlers: ControlBarHandlers) {
    this.me = me;
    this.handlers = handlers;
    this.element = h("div", { class: "control-bar", role: "status" });
  }

  /** Shows the bar for the page's state; returns the state it shows. */
  render(page: { canSteer: boolean; running: boolean; kind: SessionInfo["kind"]; control: Control }): ControlBarState {
    const bar = this.element;
    const control = page.control;
    let state: ControlBarState;
    if (!page.canSteer) {
      state = "viewer";
      fill(bar, icon("eye"), h("span", null, h("strong", null, "Read-only"), " · you are signed in as a viewer"));
    } else if (!page.running) {
      state = "ended";
      fill(bar);
    } else if (page.kind === "stream") {
      state = "stream";
      fill(
        bar,
        icon("stream"),
        h("span", null, "A stream session: producers append its output; there is nothing to type into."),
      );
    } else if (control.kind === "mine") {
      state = "mine";
      fill(
        bar,
        icon("keyboard"),
        h("span", null, h("strong", null, "You're in control"), " · what you type goes to the session"),
        h(
          "button",
          { class: "btn btn-small btn-ghost", type: "button", onclick: () => this.handlers.release() },
          "Release",
        ),
      );
    } else if (control.kind === "free") {
      state = "free";
      fill(
        bar,
        icon("unlock"),
        h("span", null, h("strong", null, "Nobody is in control")),
        h(
          "button",
          {
            class: "btn btn-small btn-primary",
            type: "button",
            "data-test": "take-control",
            onclick: () => this.handlers.acquire(false),
          },
          "Take control",
        ),
      );
    } else {
      state = "other";
      fill(
        bar,
        icon("lock"),
        h("span", null, h("strong", null, "Read-only"), ` · ${this.holderText(control.name, control.via)}`),
        h(
          "button",
          {
            class: "btn btn-small btn-primary",
            type: "button",
            "data-test": "take-control",
            onclick: () => this.handlers.acquire(true),
          },
          "Take control",
        ),
      );
    }
    bar.className = `control-bar control-${state}`;
    bar.hidden = state === "ended";
    return state;
  }

  /**
   * Who holds control and where, as the signed-in user reads it ("admin is in control" is not
   * news to admin): the same words as the header's (controlHolder).
   */
  private holderText(name: string, via: ControlVia | undefined): string {
    if (name === this.me)
      return via === undefined || via === "page"
        ? "you are in control in another tab or window"
        : `you are in control ${VIA_TEXT[via]}`;
    const who = holderName(name);
    return via === undefined ? `${who} is in control` : `${who} is in control ${VIA_TEXT[via]}`;
  }

  /** Shakes the bar: someone typed while another holds control. */
  nudge(): void {
    this.element.classList.remove("nudge");
    void this.element.offsetWidth; // restart the animation
    this.element.classList.add("nudge");
  }
}
