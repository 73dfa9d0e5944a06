import { isSwitchboardError } from "../../src/client/index.js";
import type { SessionInfo } from "../../src/protocol/index.js";
import type { AppContext } from "./context.js";
import { fill, h, icon } from "./dom.js";
import { errorText } from "./format.js";

/**
 * Under an agent session the gateway lost: a Resume button (`POST .../resume`: the agent starts
 * again and reloads its conversation), or why it cannot in its place (the agent does not offer
 * ACP `session/load`): from the session's `cannotResume`, or once a resume answered AGENT_CANNOT_RESUME.
 */
export class ResumeBar {
  readonly element: HTMLElement;
  private readonly ctx: AppContext;
  private readonly sessionId: string;
  private readonly button: HTMLButtonElement;
  private readonly body: HTMLElement;
  /** The gateway's reason it cannot resume this session, once it gave one. */
  private refused: string | null = null;

  constructor(ctx: AppContext, sessionId: string) {
    this.ctx = ctx;
    this.sessionId = sessionId;
    this.button = h(
      "button",
      {
        class: "btn btn-small btn-primary",
        type: "button",
        "data-test": "resume",
        title: "Start the agent again and go on with this conversation",
        onclick: () => void this.resume(),
      },
      icon("power"),
      h("span", null, "Resume"),
    );
    this.body = h("div", { class: "resume-body" });
    this.element = h(
      "div",
      { class: "resume-bar", hidden: true, role: "status", "data-test": "resume-bar" },
      this.body,
    );
    this.render();
  }

  /** Shown while `session` is lost, to those who may steer it; the gateway may know it cannot resume. */
  update(session: SessionInfo): void {
    this.element.hidden = session.state !== "lost" || !this.ctx.canSteer;
    if (session.cannotResume !== undefined && this.refused === null) {
      this.refused = session.cannotResume;
      this.render();
    }
  }

  private render(): void {
    if (this.refused !== null) {
      fill(
        this.body,
        h("p", null, icon("x"), h("span", { "data-test": "resume-refused" }, `Cannot resume: ${this.refused}`)),
      );
      return;
    }
    fill(this.body, h("p", null, "The gateway stopped while this session ran."), this.button);
  }

  private async resume(): Promise<void> {
    this.button.disabled = true;
    try {
      // The store tells the page the session runs again (AgentView follows it anew).
      this.ctx.store.upsert(await this.ctx.http.resume(this.sessionId));
    } catch (error) {
      if (isSwitchboardError(error, "AGENT_CANNOT_RESUME")) {
        this.refused = error.message;
        this.render();
      } else {
        this.ctx.toast(`Resume failed: ${errorText(error)}`, "error");
      }
    } finally {
      this.button.disabled = false;
    }
  }
}
