import type { SessionEvent } from "../../src/protocol/index.js";
import { fill, h, icon } from "./dom.js";
import { clockTime, duration, endOutcome } from "./format.js";

type EndEvent = Extract<SessionEvent, { type: "exit" | "lost" }>;

/** The banner under a terminal that ended (how, after how long) or cannot be followed. */
export class EndBanner {
  readonly element: HTMLElement = h("div", { class: "end-banner", hidden: true, role: "status" });

  /** The session ended with `event`; it was created at `createdAt`. */
  showEnd(event: EndEvent, createdAt: number): void {
    const ran = duration(event.ts - createdAt);
    if (event.type === "lost") {
      this.show("lost", "Lost: the gateway stopped while this session ran. Its output up to then is kept.");
      return;
    }
    const how =
      event.signal !== null
        ? `Killed by ${event.signal}`
        : event.exitCode === null
          ? "Stopped"
          : `Exited with code ${event.exitCode}`;
    this.show(endOutcome(event.exitCode, event.signal), `${how} · ran ${ran} · ended ${clockTime(event.ts)}`);
  }

  /** The session cannot be followed. */
  showError(text: string): void {
    this.show("error", text);
  }

  private show(kind: "ok" | "stopped" | "failed" | "lost" | "error", text: string): void {
    this.element.hidden = false;
    this.element.className = `end-banner end-${kind}`;
    const mark = kind === "ok" ? "check" : kind === "stopped" ? "stop" : "x";
    fill(this.element, icon(mark), h("span", { "data-test": "exit-summary" }, text));
  }
}
