import { isSwitchboardError } from "../../src/client/index.js";
import { toolCallCommand, toolCallDiffs, toolCallPaths } from "../../src/protocol/index.js";
import type { PermissionView, RunView } from "./agent-model.js";
import type { AppContext } from "./context.js";
import { renderToolDiff, shownPath } from "./diff-view.js";
import { h, icon } from "./dom.js";
import { clockTime, errorText, unconfirmedText } from "./format.js";

/** The page a permission request is shown on: who is looking, and at which session. */
export interface PermissionPage {
  readonly app: AppContext;
  readonly sessionId: string;
}

/**
 * An agent's permission request in its run: while open, a button per option (for those who
 * may steer, while the run is running); once resolved, the outcome and who gave it. The first
 * answer from any page wins.
 */
export function renderPermission(run: RunView, request: PermissionView, page: PermissionPage): HTMLElement {
  const resolved = request.resolved;
  if (resolved) {
    const text =
      resolved.outcome === "cancelled"
        ? `Cancelled${resolved.by ? ` by ${resolved.by}` : ` (${cancelReason(run)})`}`
        : `${resolved.optionName ?? resolved.optionId ?? "Answered"}${resolved.by ? ` — answered by ${resolved.by}` : ""}`;
    // A refusal is not a success: only an allowing answer is green (ACP option kinds reject_once, reject_always).
    const kind = request.options.find((o) => o.optionId === resolved.optionId)?.kind ?? "";
    const outcome = resolved.outcome === "selected" && kind.startsWith("reject") ? "rejected" : resolved.outcome;
    return h(
      "div",
      {
        class: `permission resolved outcome-${outcome}`,
        "data-outcome": outcome,
        "data-request": request.requestId,
        "data-resolved": "true",
      },
      h("span", { class: "perm-icon" }, icon("shield")),
      h(
        "div",
        { class: "perm-body" },
        h("div", { class: "perm-title" }, request.title),
        renderWhat(request, page.app.store.get(page.sessionId)?.cwd),
        h("div", { class: "perm-outcome", "data-test": "permission-outcome" }, text),
      ),
    );
  }
  const canAnswer = page.app.canSteer && run.status === "running";
  return h(
    "div",
    { class: "permission open", "data-request": request.requestId, "data-resolved": "false" },
    h("span", { class: "perm-icon" }, icon("shield")),
    h(
      "div",
      { class: "perm-body" },
      h("div", { class: "perm-title" }, request.title),
      renderWhat(request, page.app.store.get(page.sessionId)?.cwd),
      h("div", { class: "perm-sub muted" }, `The agent waits for an answer · expires ${clockTime(request.expiresAt)}`),
      canAnswer
        ? h(
            "div",
            { class: "perm-options" },
            request.options.map((option) =>
              h(
                "button",
                {
                  class: `btn btn-small ${option.kind.startsWith("allow") ? "btn-primary" : "btn-danger-ghost"}`,
                  type: "button",
                  "data-option": option.optionId,
                  onclick: (event) =>
                    void answer(page, request, option.optionId, event.currentTarget as HTMLButtonElement),
                },
                option.name,
              ),
            ),
          )
        : h("div", { class: "perm-sub muted" }, page.app.canSteer ? "" : "Viewers cannot answer."),
    ),
  );
}

/**
 * What the request would approve: the tool's kind, the shell command, each file's diff (unified)
 * and the files it touches, when the agent said (test/web/ui-changes.test.ts).
 */
function renderWhat(request: PermissionView, cwd: string | null | undefined): HTMLElement[] {
  const shown: HTMLElement[] = [];
  const call = request.toolCall ?? undefined;
  const command = toolCallCommand(call);
  const diffs = toolCallDiffs(call);
  const paths = toolCallPaths(call).filter((p) => !diffs.some((d) => d.path === p));
  if (call?.kind !== undefined && call.kind !== "other")
    shown.push(h("span", { class: "tool-kind perm-kind", "data-test": "permission-kind" }, call.kind));
  if (command !== undefined)
    shown.push(h("pre", { class: "perm-command", "data-test": "permission-command" }, command));
  for (const diff of diffs)
    shown.push(h("div", { class: "perm-diff", "data-test": "permission-diff" }, renderToolDiff(diff, cwd)));
  if (paths.length > 0)
    shown.push(
      h(
        "div",
        { class: "tool-paths", "data-test": "permission-paths" },
        paths.map((p) => h("code", { title: p }, shownPath(p, cwd))),
      ),
    );
  return shown;
}

/** Why a request nobody answered was cancelled. */
function cancelReason(run: RunView): string {
  switch (run.status) {
    case "aborted":
      return "the run was aborted";
    case "interrupted":
      return run.sessionEnd === "lost" ? "the session was lost" : "the session ended";
    default:
      return "nobody answered in time";
  }
}

async function answer(
  { app: ctx, sessionId }: PermissionPage,
  request: PermissionView,
  optionId: string,
  button: HTMLButtonElement,
): Promise<void> {
  button.disabled = true;
  try {
    await ctx.client.permission(sessionId, request.requestId, optionId);
  } catch (error) {
    // First answer wins: another page answered, or the run was aborted, first; which one is on
    // its way as an event (exploratory test: an abort was called "someone else answered").
    if (isSwitchboardError(error, "PERMISSION_REQUEST_NOT_FOUND"))
      ctx.toast("Too late: the request was answered or cancelled first (see it below)", "info");
    else {
      const unconfirmed = unconfirmedText("Answer", error);
      ctx.toast(
        unconfirmed !== null
          ? `${unconfirmed} — if the request is still open below, answer it again`
          : `Answer not sent: ${errorText(error)}`,
        "error",
      );
    }
    button.disabled = false;
  }
}
