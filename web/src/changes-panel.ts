import type { ChangesAnswer } from "../../src/protocol/index.js";
import type { RunView } from "./agent-model.js";
import type { AppContext } from "./context.js";
import { renderChangedFile } from "./diff-view.js";
import { fill, h, icon } from "./dom.js";
import { errorText } from "./format.js";

/** A change list as the page has it: being read, read (for `files` changed files), or failed. */
export type ChangesState =
  | { kind: "loading"; files: number }
  | { kind: "loaded"; files: number; answer: ChangesAnswer }
  | { kind: "failed"; files: number; message: string };

/** What the run's Changes panel needs from its page. */
export interface ChangesPage {
  readonly sessionId: string;
  readonly sections: ReadonlyMap<string, boolean>;
  /** The run's change list as read, if it was. */
  changes(runId: string): ChangesState | undefined;
  /** Reads the run's change list (`files`: how many files the page knows it changed), then renders the run again. */
  loadChanges(runId: string, files: number): void;
}

/** The files of a change list, each a collapsible unified diff. */
function renderList(state: ChangesState | undefined): HTMLElement {
  if (state === undefined || state.kind === "loading") return h("p", { class: "muted" }, "Reading the changes…");
  if (state.kind === "failed") return h("p", { class: "run-error" }, `Could not read the changes: ${state.message}`);
  if (state.answer.files.length === 0) return h("p", { class: "muted" }, "No file changed in the end.");
  return h("div", { class: "changed-files" }, state.answer.files.map(renderChangedFile));
}

/**
 * Under a run that changed files: "Changes" (closed until opened), listing each file with its
 * diff (`GET .../runs/:run/changes`), read when opened and again when more changes came since.
 */
export function renderRunChanges(run: RunView, page: ChangesPage): HTMLElement | null {
  const files = run.changedFiles.size;
  if (files === 0) return null;
  const key = `changes:${run.runId}`;
  const open = page.sections.get(key) ?? false;
  const state = page.changes(run.runId);
  if (open && (state === undefined || (state.kind !== "loading" && state.files !== files)))
    page.loadChanges(run.runId, files);
  return h(
    "details",
    { class: "run-changes", "data-section": key, "data-test": "run-changes", open },
    h("summary", null, icon("list"), h("span", null, `Changes · ${files} file${files === 1 ? "" : "s"}`)),
    open ? renderList(state) : null,
  );
}

/**
 * The session's changes across runs (`GET /v1/sessions/:id/changes`): a panel above the
 * conversation that a header button shows and hides, read each time it is shown.
 */
export class SessionChanges {
  readonly button: HTMLButtonElement;
  readonly element: HTMLElement;
  private readonly body: HTMLElement;

  constructor(
    private readonly ctx: AppContext,
    private readonly sessionId: string,
  ) {
    this.body = h("div", { class: "session-changes-body" });
    this.element = h(
      "section",
      { class: "session-changes", "data-test": "session-changes", hidden: true, "aria-label": "Changes" },
      h(
        "div",
        { class: "session-changes-head" },
        h("h2", null, "Changes in this session"),
        h(
          "button",
          { class: "btn btn-small btn-ghost", type: "button", onclick: () => this.toggle(false) },
          icon("x"),
          h("span", null, "Close"),
        ),
      ),
      this.body,
    );
    this.button = h(
      "button",
      {
        class: "btn btn-small btn-ghost",
        type: "button",
        "data-test": "session-changes-button",
        title: "What the agent changed in files, across runs",
        "aria-expanded": "false",
        onclick: () => this.toggle(this.element.hidden),
      },
      icon("list"),
      h("span", null, "Changes"),
    );
  }

  private toggle(show: boolean): void {
    this.element.hidden = !show;
    this.button.setAttribute("aria-expanded", String(show));
    if (show) void this.load();
  }

  private async load(): Promise<void> {
    fill(this.body, renderList(undefined));
    try {
      const answer = await this.ctx.client.http.changes(this.sessionId);
      fill(this.body, renderList({ kind: "loaded", files: answer.files.length, answer }));
    } catch (error) {
      fill(this.body, renderList({ kind: "failed", files: 0, message: errorText(error) }));
    }
  }
}
