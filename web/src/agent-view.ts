import type { Subscription } from "../../src/client/index.js";
import type { SessionEvent, SessionInfo } from "../../src/protocol/index.js";
import { AgentModel, answerText } from "./agent-model.js";
import type { PermissionView, RunItem, RunView, ToolCall } from "./agent-model.js";
import type { AppContext, View } from "./context.js";
import { fill, h, icon } from "./dom.js";
import type { Child } from "./dom.js";
import { clockTime, duration, errorText, sessionTitle, shortId } from "./format.js";
import { renderMarkdown } from "./markdown.js";
import { SessionHeader } from "./session-header.js";

/** The conversation sticks to the bottom while the reader is within this many pixels of it. */
export const STICK_TO_BOTTOM_PX = 120;
/** Tool input/output shown inline is cut at this many characters. */
export const TOOL_DETAIL_CHARS = 2_000;

const PROMPT_HINTS = [
  "/tool count these words",
  "/plan read; think; answer",
  "/permission edit the file",
  "/think hard",
];

/**
 * An agent session: the conversation rebuilt from the log (prompts, streamed answers,
 * thoughts, tool calls with their terminals, the plan, permission requests), a prompt box
 * that queues behind the active run, and abort. Runs are re-rendered at most once a frame.
 */
export class AgentView implements View {
  readonly element: HTMLElement;
  private readonly ctx: AppContext;
  private session: SessionInfo;
  private readonly model = new AgentModel();
  private readonly header: SessionHeader;
  private readonly scroller: HTMLElement;
  private readonly runsEl: HTMLElement;
  private readonly intro: HTMLElement;
  private readonly composer: HTMLElement;
  private readonly textarea: HTMLTextAreaElement | null;
  private readonly sendButton: HTMLButtonElement | null;
  private readonly abortButton: HTMLButtonElement;
  private readonly abortAllButton: HTMLButtonElement;
  private readonly queueLine: HTMLElement;
  private readonly runEls = new Map<string, HTMLElement>();
  private readonly dirty = new Set<string>();
  private readonly sub: Subscription;
  private readonly disposers: (() => void)[] = [];
  private frame: number | undefined;
  private subscribedHead: number | null = null;
  private lastSeq = 0;
  private ended = false;
  private restored = false;
  private disposed = false;

  constructor(ctx: AppContext, session: SessionInfo) {
    this.ctx = ctx;
    this.session = session;
    this.abortButton = h(
      "button",
      {
        class: "btn btn-small btn-danger",
        type: "button",
        "data-test": "abort",
        title: "Abort the active run",
        hidden: true,
        onclick: () => void this.abort(false),
      },
      icon("stop"),
      h("span", null, "Abort"),
    );
    this.abortAllButton = h(
      "button",
      {
        class: "btn btn-small btn-ghost",
        type: "button",
        hidden: true,
        title: "Abort the active run and every queued prompt",
        onclick: () => void this.abort(true),
      },
      "Abort all",
    );
    this.header = new SessionHeader(ctx, session, ctx.canSteer ? [this.abortAllButton, this.abortButton] : []);
    this.runsEl = h("div", { class: "runs" });
    this.intro = h(
      "div",
      { class: "intro" },
      h("div", { class: "intro-icon" }, icon("agent", "icon big")),
      h("h3", null, `Talk to ${sessionTitle(session)}`),
      h(
        "p",
        { class: "muted" },
        "Answers stream in as they are written; everyone watching this session sees the same conversation.",
      ),
      session.agent === "echo" && ctx.canSteer
        ? h(
            "div",
            { class: "hints" },
            PROMPT_HINTS.map((hint) =>
              h("button", { class: "chip", type: "button", onclick: () => this.useHint(hint) }, h("code", null, hint)),
            ),
          )
        : null,
    );
    this.scroller = h("div", { class: "conversation" }, h("div", { class: "conv-inner" }, this.intro, this.runsEl));
    this.queueLine = h("div", { class: "queue-line", hidden: true });
    if (ctx.canSteer) {
      this.textarea = h("textarea", {
        class: "prompt-input",
        rows: 1,
        placeholder: "Message the agent…",
        title: "Enter sends, Shift+Enter starts a new line",
        "aria-label": "Prompt",
      });
      this.sendButton = h(
        "button",
        { class: "btn btn-primary btn-send", type: "submit", "data-test": "send", "aria-label": "Send" },
        icon("send"),
      );
      const form = h("form", { class: "composer-form" }, this.textarea, this.sendButton);
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        void this.send();
      });
      this.textarea.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          void this.send();
        }
      });
      this.textarea.addEventListener("input", () => this.autosize());
      this.composer = h("div", { class: "composer" }, this.queueLine, form);
    } else {
      this.textarea = null;
      this.sendButton = null;
      this.composer = h(
        "div",
        { class: "composer readonly", "data-test": "readonly" },
        this.queueLine,
        h("p", null, icon("eye"), h("strong", null, "Read-only"), " · you are signed in as a viewer"),
      );
    }
    this.element = h(
      "section",
      { class: "view agent-view", "data-session": session.id },
      this.header.element,
      this.scroller,
      this.composer,
    );

    this.disposers.push(
      ctx.store.onChange(() => {
        const fresh = ctx.store.get(this.session.id);
        if (!fresh) return;
        this.session = fresh;
        this.header.update(fresh);
      }),
    );
    this.sub = ctx.client.subscribe(
      session.id,
      {
        since: 0,
        onReset: (info) =>
          ctx.toast(`Retention dropped ${info.first - info.lastSeq - 1} old events of this conversation`, "info"),
        onError: (error) => ctx.toast(`Cannot follow this session: ${errorText(error)}`, "error"),
      },
      (event) => this.onEvent(event),
    );
    this.sub.ready.then(
      (info) => {
        this.subscribedHead = info.head;
        this.checkRestored();
        // The list's viewer count now includes this page.
        void ctx.store.refresh();
      },
      () => undefined, // onError reports it.
    );
    this.renderChrome();
  }

  mounted(): void {
    this.textarea?.focus();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.frame !== undefined) cancelAnimationFrame(this.frame);
    for (const dispose of this.disposers) dispose();
    this.sub.unsubscribe();
    this.header.dispose();
  }

  debug(): unknown {
    return {
      kind: "agent",
      session: this.session.id,
      restored: this.restored,
      lastSeq: this.lastSeq,
      runs: this.model.runs.map((r) => ({ runId: r.runId, status: r.status, prompt: r.prompt, text: answerText(r) })),
    };
  }

  /* ------------------------------------------------------------------ events */

  private onEvent(event: SessionEvent): void {
    this.lastSeq = event.seq;
    if (this.subscribedHead !== null && event.seq > this.subscribedHead)
      this.ctx.store.applyEvent(this.session.id, event);
    if (event.type === "exit" || event.type === "lost") {
      this.ended = true;
      this.session = { ...this.session, state: event.type === "exit" ? "exited" : "lost" };
    }
    const run = this.model.apply(event);
    if (run) this.dirty.add(run.runId);
    // A run leaving the queue moves everyone behind it up one place.
    if (event.type === "run.started" || event.type === "chat.aborted")
      for (const queued of this.model.queued) this.dirty.add(queued.runId);
    this.schedule();
    this.checkRestored();
  }

  private checkRestored(): void {
    if (this.restored || this.subscribedHead === null || this.lastSeq < this.subscribedHead) return;
    this.restored = true;
    this.element.dataset["restored"] = "true";
  }

  private schedule(): void {
    if (this.frame !== undefined || this.disposed) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = undefined;
      this.flush();
    });
  }

  private flush(): void {
    const stick =
      this.scroller.scrollHeight - this.scroller.scrollTop - this.scroller.clientHeight < STICK_TO_BOTTOM_PX;
    for (const runId of this.dirty) {
      const run = this.model.get(runId);
      if (!run) continue;
      const next = this.renderRun(run);
      const current = this.runEls.get(runId);
      if (current) current.replaceWith(next);
      else this.runsEl.appendChild(next);
      this.runEls.set(runId, next);
    }
    this.dirty.clear();
    this.renderChrome();
    if (stick) this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  /** The parts outside the runs: intro, queue line, abort buttons, composer state. */
  private renderChrome(): void {
    this.intro.hidden = this.model.runs.length > 0;
    const active = this.model.active;
    const queued = this.model.queued;
    const running = !this.ended && this.session.state === "running";
    this.abortButton.hidden = !active || !running;
    this.abortAllButton.hidden = queued.length === 0 || !running;
    this.queueLine.hidden = queued.length === 0;
    fill(
      this.queueLine,
      icon("clock"),
      `${queued.length} prompt${queued.length === 1 ? "" : "s"} queued behind the active run`,
    );
    const waiting = this.model.openPermissions.length > 0;
    this.element.dataset["activity"] = waiting ? "waiting" : active ? "working" : "idle";
    if (this.textarea && this.sendButton) {
      this.textarea.disabled = !running;
      this.sendButton.disabled = !running;
      this.textarea.placeholder = !running
        ? "This session has ended."
        : active
          ? "Queue another prompt…"
          : "Message the agent…";
      this.sendButton.title = active ? "Queue" : "Send";
    }
  }

  /* ------------------------------------------------------------------ rendering */

  private renderRun(run: RunView): HTMLElement {
    const position = run.status === "queued" ? this.model.queued.indexOf(run) + 1 : 0;
    const userMeta: Child[] = [run.by ?? "someone", " · ", clockTime(run.queuedAt)];
    if (run.status === "queued")
      userMeta.push(h("span", { class: "pill pill-queued", "data-test": "queued" }, `Queued #${position}`));
    const user = h(
      "div",
      { class: "msg msg-user" },
      h("div", { class: "msg-meta" }, userMeta),
      h(
        "div",
        { class: "bubble" },
        run.prompt ?? h("em", { class: "muted" }, "(an earlier prompt; retention dropped its text)"),
      ),
    );
    const items = run.items.map((item) => this.renderItem(run, item));
    const agent =
      run.status === "queued" && run.items.length === 0
        ? null
        : h(
            "div",
            { class: "msg msg-agent" },
            h("div", { class: "avatar" }, icon("agent")),
            h("div", { class: "agent-body" }, items, this.runFooter(run)),
          );
    return h(
      "article",
      { class: `run run-${run.status}`, "data-run": run.runId, "data-status": run.status },
      user,
      agent,
    );
  }

  private runFooter(run: RunView): HTMLElement {
    const took = run.startedAt !== null && run.endedAt !== null ? ` · ${duration(run.endedAt - run.startedAt)}` : "";
    switch (run.status) {
      case "queued":
        return h("div", { class: "run-foot muted" }, "Waiting to start…");
      case "running": {
        const waiting = [...run.permissions.values()].some((p) => p.resolved === null);
        return h(
          "div",
          { class: "run-foot working" },
          h("span", { class: "typing" }, h("i"), h("i"), h("i")),
          waiting ? "Waiting for your answer" : run.items.length === 0 ? "Thinking…" : "Writing…",
        );
      }
      case "done":
        return h(
          "div",
          { class: "run-foot muted", "data-test": "run-done" },
          icon("check"),
          `Done (${run.stopReason ?? "end_turn"})${took}`,
        );
      case "error":
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
          `Aborted${run.abortedBy ? ` by ${run.abortedBy}` : ""}${took}`,
        );
    }
  }

  private renderItem(run: RunView, item: RunItem): HTMLElement {
    switch (item.kind) {
      case "text": {
        const el = h("div", { class: "answer md" });
        el.appendChild(renderMarkdown(item.text));
        if (run.status === "running" && run.items[run.items.length - 1] === item)
          el.appendChild(h("span", { class: "caret" }));
        return el;
      }
      case "thought":
        return h(
          "details",
          { class: "thought", open: run.status === "running" && run.items[run.items.length - 1] === item },
          h("summary", null, "Thinking"),
          h("p", null, item.text),
        );
      case "tool": {
        const tool = run.tools.get(item.toolCallId);
        return tool ? this.renderTool(tool) : h("div");
      }
      case "permission": {
        const request = run.permissions.get(item.requestId);
        return request ? this.renderPermission(run, request) : h("div");
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
              h("li", { class: `plan-entry plan-${entry.status}` }, h("span", { class: "plan-mark" }), entry.content),
            ),
          ),
        );
      case "child":
        return h(
          "a",
          { class: "child-link", href: `#/s/${encodeURIComponent(item.sessionId)}`, "data-test": "child-link" },
          icon("terminal"),
          h("span", null, "Terminal "),
          h("code", null, item.command.join(" ")),
          icon("link"),
        );
    }
  }

  private renderTool(tool: ToolCall): HTMLElement {
    const detail: Child[] = [];
    if (tool.rawInput !== undefined)
      detail.push(h("div", { class: "tool-io" }, h("span", null, "Input"), h("pre", null, preview(tool.rawInput))));
    if (tool.rawOutput !== undefined)
      detail.push(h("div", { class: "tool-io" }, h("span", null, "Output"), h("pre", null, preview(tool.rawOutput))));
    return h(
      "div",
      { class: `tool tool-${tool.status}`, "data-tool": tool.toolCallId, "data-status": tool.status },
      h(
        "div",
        { class: "tool-head" },
        h("span", { class: "tool-icon" }, icon("tool")),
        h("span", { class: "tool-title" }, tool.title),
        tool.kind && tool.kind !== "other" ? h("span", { class: "tool-kind" }, tool.kind) : null,
        h("span", { class: `pill pill-${tool.status}` }, tool.status.replace(/_/g, " ")),
      ),
      tool.terminalSessionIds.length > 0
        ? h(
            "div",
            { class: "tool-terminals" },
            tool.terminalSessionIds.map((id) => {
              const child = this.ctx.store.get(id);
              return h(
                "a",
                { class: "child-link", href: `#/s/${encodeURIComponent(id)}`, "data-test": "tool-terminal" },
                icon("terminal"),
                child ? sessionTitle(child) : `terminal ${shortId(id)}`,
                icon("link"),
              );
            }),
          )
        : null,
      detail.length > 0 ? h("details", { class: "tool-detail" }, h("summary", null, "Details"), detail) : null,
    );
  }

  private renderPermission(run: RunView, request: PermissionView): HTMLElement {
    const resolved = request.resolved;
    if (resolved) {
      const text =
        resolved.outcome === "cancelled"
          ? `Cancelled${resolved.by ? ` by ${resolved.by}` : run.status === "aborted" ? " (the run was aborted)" : " (nobody answered in time)"}`
          : `${resolved.optionName ?? resolved.optionId ?? "Answered"}${resolved.by ? ` — answered by ${resolved.by}` : ""}`;
      return h(
        "div",
        {
          class: `permission resolved outcome-${resolved.outcome}`,
          "data-request": request.requestId,
          "data-resolved": "true",
        },
        h("span", { class: "perm-icon" }, icon("shield")),
        h(
          "div",
          { class: "perm-body" },
          h("div", { class: "perm-title" }, request.title),
          h("div", { class: "perm-outcome", "data-test": "permission-outcome" }, text),
        ),
      );
    }
    const canAnswer = this.ctx.canSteer && run.status === "running";
    return h(
      "div",
      { class: "permission open", "data-request": request.requestId, "data-resolved": "false" },
      h("span", { class: "perm-icon" }, icon("shield")),
      h(
        "div",
        { class: "perm-body" },
        h("div", { class: "perm-title" }, request.title),
        h(
          "div",
          { class: "perm-sub muted" },
          `The agent waits for an answer · expires ${clockTime(request.expiresAt)}`,
        ),
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
                      void this.answer(request, option.optionId, event.currentTarget as HTMLButtonElement),
                  },
                  option.name,
                ),
              ),
            )
          : h("div", { class: "perm-sub muted" }, this.ctx.canSteer ? "" : "Viewers cannot answer."),
      ),
    );
  }

  /* ------------------------------------------------------------------ actions */

  private async send(): Promise<void> {
    const textarea = this.textarea;
    if (!textarea) return;
    const text = textarea.value.trim();
    if (text === "") return;
    textarea.disabled = true;
    try {
      await this.ctx.client.prompt(this.session.id, text);
      textarea.value = "";
      this.autosize();
    } catch (error) {
      this.ctx.toast(`Prompt not sent: ${errorText(error)}`, "error");
    } finally {
      textarea.disabled = this.ended;
      textarea.focus();
    }
  }

  private async abort(all: boolean): Promise<void> {
    try {
      await this.ctx.client.abort(this.session.id, all ? { all: true } : {});
    } catch (error) {
      if ((error as { code?: unknown }).code === "RUN_NOT_ACTIVE") return; // it ended meanwhile
      this.ctx.toast(`Abort failed: ${errorText(error)}`, "error");
    }
  }

  private async answer(request: PermissionView, optionId: string, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    try {
      await this.ctx.client.permission(this.session.id, request.requestId, optionId);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      // First answer wins: someone else was quicker, and their answer is on its way as an event.
      if (code === "PERMISSION_REQUEST_NOT_FOUND") this.ctx.toast("Someone else answered first", "info");
      else this.ctx.toast(`Answer not sent: ${errorText(error)}`, "error");
      button.disabled = false;
    }
  }

  private useHint(hint: string): void {
    if (!this.textarea) return;
    this.textarea.value = hint;
    this.autosize();
    this.textarea.focus();
  }

  private autosize(): void {
    const textarea = this.textarea;
    if (!textarea) return;
    textarea.style.height = "auto";
    textarea.style.height = `${Math.min(textarea.scrollHeight, 200)}px`;
  }
}

function preview(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  return text.length > TOOL_DETAIL_CHARS ? `${text.slice(0, TOOL_DETAIL_CHARS)}…` : text;
}
