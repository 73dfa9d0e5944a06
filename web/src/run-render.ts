import { joinCommand } from "../../src/core/shell-words.js";
import type { ErrorCode } from "../../src/protocol/index.js";
import type { RunItem, RunView } from "./agent-model.js";
import { h, icon } from "./dom.js";
import type { Attrs, Child } from "./dom.js";
import { clockTime, duration, shown } from "./format.js";
import { MarkdownStream } from "./markdown-stream.js";
import { renderAttachments } from "./message-attachments.js";
import { renderElicitation } from "./elicitation-form.js";
import { renderPermission } from "./permission-request.js";
import type { PermissionPage } from "./permission-request.js";
import { renderToolCall } from "./tool-call.js";
import { downloadLink } from "./session-files.js";
import { renderRunChanges } from "./changes-panel.js";
import type { ChangesPage } from "./changes-panel.js";

/** What rendering a run needs from its page. */
export interface RunPage extends PermissionPage, ChangesPage {
  /** A queued run's place in the queue (1 for the next). */
  queuePosition(run: RunView): number;
  /**
   * Whether the user opened (true) or closed (false) a collapsible section, by its
   * `data-section` key; a section they did not touch is shown as the run's state suggests.
   */
  readonly sections: ReadonlyMap<string, boolean>;
  readonly sessionId: string;
}

/** `text` with its `backquoted` parts (commands to run) as code. */
function withCode(text: string): Child[] {
  return text.split("`").map((part, i) => (i % 2 === 1 ? h("code", null, part) : part));
}

/**
 * One run of an agent's conversation: the prompt (with its place in the queue while queued),
 * then what the agent did in order — answer text, thoughts, tool calls, permission requests,
 * the plan, child terminals — and a footer with how the run stands or ended.
 */
export function renderRun(run: RunView, page: RunPage): HTMLElement {
  const position = run.status === "queued" ? page.queuePosition(run) : 0;
  // A routed message names who wrote it on its channel, and the bridge that brought it.
  // The sender's name is whatever the bridge passed on: no bidirectional or invisible tricks.
  const who = run.from
    ? `${shown(run.from.name)} on ${shown(run.from.channel)} (via ${run.by ?? "?"})`
    : (run.by ?? "someone");
  const userMeta: Child[] = [who, " · ", clockTime(run.queuedAt)];
  if (run.status === "queued")
    userMeta.push(h("span", { class: "pill pill-queued", "data-test": "queued" }, `Queued #${position}`));
  const user = h(
    "div",
    { class: "msg msg-user" },
    h("div", { class: "msg-meta" }, userMeta),
    // A prompt of files alone has no text to show.
    run.prompt === "" && run.attachments.length > 0
      ? null
      : h(
          "div",
          { class: "bubble", dir: "auto" }, // a prompt in Arabic or Hebrew reads right to left
          run.prompt ?? h("em", { class: "muted" }, "(an earlier prompt; retention dropped its text)"),
        ),
    renderAttachments(run.attachments),
  );
  const items = run.items.map((item, index) => renderItem(run, item, index, page));
  const agent =
    run.status === "queued" && run.items.length === 0
      ? null
      : h(
          "div",
          { class: "msg msg-agent" },
          h("div", { class: "avatar" }, icon("agent")),
          h("div", { class: "agent-body" }, items, runFooter(run, page), renderRunChanges(run, page)),
        );
  return h(
    "article",
    {
      class: `run run-${run.status}`,
      "data-run": run.runId,
      "data-status": run.status,
      // Read out once complete, or when it waits for an answer (see the page's live region).
      "aria-busy": (run.status === "queued" || run.status === "running") && !waitsForAnswer(run) ? "true" : null,
    },
    user,
    agent,
  );
}

/** Why an answer ended, in words, when it is not the ordinary end of a turn (ACP's stop reasons). */
const STOP_NOTES: Readonly<Record<string, string>> = {
  max_tokens: "it reached its token limit",
  max_turn_requests: "it reached its limit of requests in a turn",
  refusal: "the agent refused",
  cancelled: "cancelled",
};

function stopNote(reason: string | null | undefined): string {
  if (reason === null || reason === undefined || reason === "end_turn") return "";
  return ` (${STOP_NOTES[reason] ?? reason})`;
}

function waitsForAnswer(run: RunView): boolean {
  return (
    [...run.permissions.values()].some((p) => p.resolved === null) ||
    [...run.elicitations.values()].some((e) => e.resolved === null)
  );
}

function runFooter(run: RunView, page: RunPage): HTMLElement {
  const took = run.startedAt !== null && run.endedAt !== null ? ` · ${duration(run.endedAt - run.startedAt)}` : "";
  switch (run.status) {
    case "queued":
      return h("div", { class: "run-foot muted" }, "Waiting to start…");
    case "running": {
      const waiting = waitsForAnswer(run);
      return h(
        "div",
        { class: "run-foot working" },
        h("span", { class: "typing" }, h("i"), h("i"), h("i")),
        waiting
          ? page.app.canSteer
            ? "Waiting for your answer"
            : "Waiting for an answer" // a viewer cannot give it
          : run.items.length === 0
            ? "Thinking…"
            : "Writing…",
      );
    }
    case "done":
      return h(
        "div",
        { class: "run-foot muted", "data-test": "run-done" },
        icon("check"),
        `Done${stopNote(run.stopReason)}${took}`,
      );
    case "error":
      // Not a crash: the agent waits for its user to log in, and the message says how.
      if (run.error !== null && hasCode(run.error, "AGENT_AUTH_REQUIRED")) {
        return h(
          "div",
          { class: "run-foot run-action", role: "status", "data-test": "run-login" },
          icon("lock"),
          h("strong", null, "Log in to the agent:"),
          h("span", null, ...withCode(run.error.message)),
        );
      }
      return h(
        "div",
        { class: "run-foot run-error", role: "alert" },
        icon("x"),
        h("strong", null, run.error?.code ?? "ERROR"),
        ` ${run.error?.message ?? ""}`,
      );
    case "aborted":
      return h(
        "div",
        { class: "run-foot run-aborted", "data-test": "run-aborted" },
        icon("stop"),
        // A prompt that never started was taken out of the queue (Abort all), not stopped.
        run.startedAt === null
          ? `Removed from the queue${run.abortedBy ? ` by ${run.abortedBy}` : ""}`
          : `Aborted${run.abortedBy ? ` by ${run.abortedBy}` : ""}${took}`,
      );
    case "interrupted":
      // No duration: a lost session is marked so only when the gateway starts again.
      return h(
        "div",
        { class: "run-foot run-aborted", "data-test": "run-interrupted" },
        icon("stop"),
        `Interrupted: the session ${run.sessionEnd === "lost" ? "was lost" : "ended"}`,
      );
  }
}

/** A `<details>`'s attributes: open as the user left it, else `openByDefault`. */
function section(page: RunPage, key: string, openByDefault: boolean): Attrs {
  return { "data-section": key, open: page.sections.get(key) ?? openByDefault };
}

/** Each answer's rendering so far, by its item (which lives as long as the page's model of the run). */
const answerStreams = new WeakMap<RunItem, MarkdownStream>();

function answerStream(item: RunItem): MarkdownStream {
  let stream = answerStreams.get(item);
  if (!stream) answerStreams.set(item, (stream = new MarkdownStream()));
  return stream;
}

function renderItem(run: RunView, item: RunItem, index: number, page: RunPage): HTMLElement {
  switch (item.kind) {
    case "text": {
      const running = run.status === "running";
      return answerStream(item).show(h("div", { class: "answer md" }), item.text, {
        final: !running,
        caret: running && run.items[run.items.length - 1] === item,
      });
    }
    case "thought":
      // Open while the agent is thinking, closed once it moved on.
      return h(
        "details",
        {
          class: "thought",
          ...section(page, `thought:${run.runId}:${index}`, run.status === "running" && index === run.items.length - 1),
        },
        h("summary", null, "Thinking"),
        h("p", null, item.text),
      );
    case "tool": {
      const tool = run.tools.get(item.toolCallId);
      return tool
        ? renderToolCall(
            tool,
            page.app.store,
            section(page, `tool:${run.runId}:${tool.toolCallId}`, false),
            page.app.store.get(page.sessionId)?.cwd,
            page.app.canSteer ? (file) => downloadLink(page.app, page.sessionId, file) : undefined,
          )
        : h("div");
    }
    case "permission": {
      const request = run.permissions.get(item.requestId);
      return request ? renderPermission(run, request, page) : h("div");
    }
    case "elicitation": {
      const request = run.elicitations.get(item.requestId);
      return request ? renderElicitation(run, request, page) : h("div");
    }
    case "plan":
      return h(
        "div",
        { class: "plan" },
        h("div", { class: "plan-title" }, icon("list"), "Plan"),
        h(
          "ol",
          null,
          (run.plan ?? []).map((entry) =>
            h(
              "li",
              { class: `plan-entry plan-${entry.status}` },
              h("span", { class: "plan-mark" }),
              h("span", { class: "plan-text" }, entry.content),
            ),
          ),
        ),
      );
    case "notice":
      return h(
        "div",
        { class: `run-notice notice-${item.level}`, "data-test": "run-notice", role: "status" },
        icon("clock"),
        h("span", null, item.text),
      );
    case "child":
      return h(
        "a",
        { class: "child-link", href: `#/s/${encodeURIComponent(item.sessionId)}`, "data-test": "child-link" },
        icon("terminal"),
        h("span", null, "Terminal "),
        h("code", null, joinCommand(item.command)),
        icon("link"),
      );
  }
}

/** Whether a run's error has one of `codes` (typed: a misspelt code does not compile). */
function hasCode(error: { code: string }, ...codes: ErrorCode[]): boolean {
  return (codes as readonly string[]).includes(error.code);
}
