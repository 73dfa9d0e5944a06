import type { SessionInfo, WorktreeDiff, WorktreeStatus } from "../../src/protocol/index.js";
import type { AppContext } from "./context.js";
import { renderCounts, renderHunks } from "./diff-view.js";
import { fill, h, icon } from "./dom.js";
import { errorText } from "./format.js";

/** The worktree's status is asked for again at most this often while the session changes. */
export const WORKTREE_STATUS_MIN_MS = 5_000;

/**
 * A worktree session's branch in its header (docs/ui.md, "Worktrees"): the branch, whether it has
 * uncommitted changes and how many commits it is ahead of its base (`GET .../worktree`); a click
 * shows its diff against the base (`GET .../worktree/diff`) as the Changes panel shows a run's.
 * Empty for a session without a worktree, or whose worktree was removed.
 */
export class WorktreeChip {
  readonly element: HTMLElement;
  private asked = 0;
  private status: WorktreeStatus | undefined;

  constructor(
    private readonly ctx: Pick<AppContext, "http" | "toast">,
    private session: SessionInfo,
  ) {
    this.element = h("span", { class: "worktree-slot" });
    this.update(session);
  }

  /** The session changed (its store copy): draws it, and asks git again when it is time. */
  update(session: SessionInfo): void {
    this.session = session;
    const worktree = session.worktree;
    if (worktree === undefined || worktree.removedAt !== undefined) {
      fill(this.element, worktree?.removedAt !== undefined ? h("span", { class: "pill" }, "worktree removed") : null);
      return;
    }
    this.draw();
    const now = Date.now();
    if (now - this.asked < WORKTREE_STATUS_MIN_MS) return;
    this.asked = now;
    void this.ctx.http.worktree(session.id).then(
      (status) => {
        this.status = status;
        this.draw();
      },
      // Gone meanwhile, or git refused: the chip shows the branch it was made on.
      () => undefined,
    );
  }

  private draw(): void {
    const worktree = this.session.worktree!;
    const status = this.status;
    fill(
      this.element,
      h(
        "button",
        {
          class: `btn btn-small btn-ghost worktree-chip${status?.dirty === true ? " dirty" : ""}`,
          type: "button",
          title: `Worktree ${worktree.path} of ${worktree.repo}, from ${worktree.base}: show the diff`,
          "data-test": "worktree-chip",
          onclick: () => void this.showDiff(),
        },
        icon("branch"),
        h("span", { "data-test": "worktree-branch" }, status?.branch ?? worktree.branch),
        status?.dirty === true ? h("span", { class: "pill", "data-test": "worktree-dirty" }, "dirty") : null,
        status?.ahead != null && status.ahead > 0
          ? h(
              "span",
              {
                class: "pill",
                "data-test": "worktree-ahead",
                title: `${status.ahead} commits ahead of ${worktree.base}`,
              },
              `↑${status.ahead}`,
            )
          : null,
      ),
    );
  }

  private async showDiff(): Promise<void> {
    let diff: WorktreeDiff;
    try {
      diff = await this.ctx.http.worktreeDiff(this.session.id);
    } catch (error) {
      this.ctx.toast(`Could not read the worktree's diff: ${errorText(error)}`, "error");
      return;
    }
    const files = diff.files.map((file) =>
      h(
        "div",
        { class: "file-diff", "data-test": "worktree-file", "data-path": file.path },
        h(
          "div",
          { class: "file-diff-path" },
          h("span", { class: "file-path", title: file.path }, file.path),
          file.status !== "modified" ? h("span", { class: "pill" }, file.status) : null,
          renderCounts(file.added, file.removed),
        ),
        file.binary ? h("p", { class: "muted" }, "binary file") : renderHunks(file.hunks),
      ),
    );
    const dialog = h(
      "dialog",
      { class: "dialog text-sheet", "aria-label": "Worktree diff", "data-test": "worktree-diff" },
      h(
        "header",
        { class: "dialog-head" },
        h("h2", null, `${this.session.worktree!.branch} against ${diff.base}`),
        h("button", { class: "btn", type: "button", onclick: () => dialog.close() }, "Done"),
      ),
      h(
        "div",
        { class: "sheet-text" },
        files.length > 0 ? files : h("p", { class: "muted" }, "No changes to tracked files."),
        diff.untracked.length > 0 ? h("p", { class: "muted" }, `Untracked: ${diff.untracked.join(", ")}`) : null,
      ),
    );
    dialog.addEventListener("close", () => dialog.remove());
    document.body.appendChild(dialog);
    dialog.showModal();
  }
}
