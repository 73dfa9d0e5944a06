import { isSwitchboardError } from "../../src/client/index.js";
import type { ElicitationEndReason, ElicitationProperty, ElicitationValue } from "../../src/protocol/index.js";
import type { ElicitationView, RunView } from "./agent-model.js";
import type { AppContext } from "./context.js";
import { h, icon } from "./dom.js";
import { clockTime, errorText, unconfirmedText } from "./format.js";

/** The page an elicitation is shown on: who is looking, and at which session. */
export interface ElicitationPage {
  readonly app: AppContext;
  readonly sessionId: string;
}

const ACTION_TEXT = { accept: "Answered", decline: "Declined", cancel: "Cancelled" } as const;
/** What a resolved card says when nobody answered it (`by` null). */
const ENDED_TEXT: Partial<Record<ElicitationEndReason, string>> = {
  timeout: "Cancelled: nobody answered in time",
  "agent-cancelled": "Withdrawn by the agent",
  "agent-completed": "Done (the agent says so)",
};

/**
 * How an agent's url is shown: a link only for http(s), never `javascript:` or `data:`; the host
 * apart so the user sees where it goes (test/web/ui-hostile-agent.test.ts).
 */
export function safeLink(url: string): { href: string; host: string } | null {
  if (!URL.canParse(url)) return null;
  const parsed = new URL(url);
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return null;
  return { href: parsed.href, host: parsed.host };
}

/**
 * A form the agent asked to be filled in, or a page to visit (docs/agents.md, "Elicitation"):
 * while open, a field per property and Submit / Decline, or the link and "I've done it" /
 * Decline / Cancel (for those who may steer, while the run is running); once resolved, the answer
 * and who gave it. The gateway checks a form's answer: what it refuses is shown as a toast naming
 * the field, and the form stays open.
 */
export function renderElicitation(run: RunView, request: ElicitationView, page: ElicitationPage): HTMLElement {
  const resolved = request.resolved;
  const title = h("div", { class: "perm-title" }, request.message);
  if (resolved) {
    const content = resolved.content
      ? Object.entries(resolved.content)
          .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : String(v)}`)
          .join(" · ")
      : "";
    const ended = resolved.by === null && resolved.reason !== null ? ENDED_TEXT[resolved.reason] : undefined;
    const text =
      ended ??
      `${ACTION_TEXT[resolved.action]}${resolved.by ? ` by ${resolved.by}` : run.status === "running" ? "" : " (the run ended)"}`;
    return h(
      "div",
      {
        class: `permission elicitation resolved outcome-${resolved.action}`,
        "data-request": request.requestId,
        "data-resolved": "true",
      },
      h("span", { class: "perm-icon" }, icon("list")),
      h(
        "div",
        { class: "perm-body" },
        title,
        content !== "" ? h("div", { class: "perm-sub", "data-test": "elicitation-content" }, content) : null,
        h("div", { class: "perm-outcome", "data-test": "elicitation-outcome" }, text),
      ),
    );
  }
  const canAnswer = page.app.canSteer && run.status === "running";
  if (request.ask.mode === "url") return renderUrl(request, request.ask.url, canAnswer, page);
  const schema = request.ask.schema;
  const required = new Set(schema.required ?? []);
  const fields = Object.entries(schema.properties).map(([name, p]) => field(name, p, required.has(name)));
  const form = h(
    "form",
    {
      class: "elicitation-form",
      onsubmit: (event: Event) => {
        event.preventDefault();
        void answer(page, request, "accept", form as HTMLFormElement);
      },
    },
    fields,
    h(
      "div",
      { class: "perm-options" },
      h("button", { class: "btn btn-small btn-primary", type: "submit" }, "Submit"),
      h(
        "button",
        {
          class: "btn btn-small btn-danger-ghost",
          type: "button",
          onclick: () => void answer(page, request, "decline", form as HTMLFormElement),
        },
        "Decline",
      ),
    ),
  );
  return h(
    "div",
    { class: "permission elicitation open", "data-request": request.requestId, "data-resolved": "false" },
    h("span", { class: "perm-icon" }, icon("list")),
    h(
      "div",
      { class: "perm-body" },
      title,
      schema.description !== undefined ? h("div", { class: "perm-sub" }, schema.description) : null,
      h("div", { class: "perm-sub muted" }, `The agent waits for an answer · expires ${clockTime(request.expiresAt)}`),
      canAnswer ? form : h("div", { class: "perm-sub muted" }, page.app.canSteer ? "" : "Viewers cannot answer."),
    ),
  );
}

/**
 * An open url elicitation: the host plainly, the link (http(s) only; anything else is shown as
 * text, not opened), and "I've done it" (accept) / Decline / Cancel.
 */
function renderUrl(request: ElicitationView, url: string, canAnswer: boolean, page: ElicitationPage): HTMLElement {
  const link = safeLink(url);
  const target = link
    ? h(
        "div",
        { class: "perm-sub elicitation-url" },
        h("span", { class: "elicitation-host", "data-test": "elicitation-host" }, link.host),
        " ",
        h(
          "a",
          { href: link.href, target: "_blank", rel: "noopener noreferrer", "data-test": "elicitation-link" },
          link.href,
        ),
      )
    : h(
        "div",
        { class: "perm-sub elicitation-url", "data-test": "elicitation-unsafe-url" },
        "Not a web link, so not opened: ",
        h("code", null, url),
      );
  const buttons = h(
    "div",
    { class: "perm-options" },
    (["accept", "decline", "cancel"] as const).map((action) =>
      h(
        "button",
        {
          class: `btn btn-small ${action === "accept" ? "btn-primary" : "btn-danger-ghost"}`,
          type: "button",
          "data-action": action,
          onclick: () => void answer(page, request, action, buttons),
        },
        URL_ACTION_TEXT[action],
      ),
    ),
  );
  return h(
    "div",
    { class: "permission elicitation open", "data-request": request.requestId, "data-resolved": "false" },
    h("span", { class: "perm-icon" }, icon("list")),
    h(
      "div",
      { class: "perm-body" },
      h("div", { class: "perm-title" }, request.message),
      target,
      h(
        "div",
        { class: "perm-sub muted" },
        `The agent waits until you have visited it · expires ${clockTime(request.expiresAt)}`,
      ),
      canAnswer ? buttons : h("div", { class: "perm-sub muted" }, page.app.canSteer ? "" : "Viewers cannot answer."),
    ),
  );
}

const URL_ACTION_TEXT = { accept: "I've done it", decline: "Decline", cancel: "Cancel" } as const;

/** One labelled input for a property; its `name` is the property's. */
function field(name: string, p: ElicitationProperty, required: boolean): HTMLElement {
  const label = `${p.title ?? name}${required ? " *" : ""}`;
  const choices = p.enum?.map((c) => ({ const: c, title: c })) ?? p.oneOf;
  let input: HTMLElement;
  if (p.type === "boolean") {
    input = h("input", {
      type: "checkbox",
      name,
      "data-kind": "boolean",
      ...(p.default === true ? { checked: "" } : {}),
    });
  } else if (p.type === "array") {
    const items = p.items?.enum?.map((c) => ({ const: c, title: c })) ?? p.items?.anyOf ?? [];
    input = h(
      "span",
      { class: "elicitation-choices" },
      items.map((c) =>
        h("label", null, h("input", { type: "checkbox", name, value: c.const, "data-kind": "array" }), ` ${c.title}`),
      ),
    );
  } else if (choices !== undefined) {
    input = h(
      "select",
      { name, "data-kind": "string" },
      required ? null : h("option", { value: "" }, "—"),
      choices.map((c) => h("option", { value: c.const, ...(p.default === c.const ? { selected: "" } : {}) }, c.title)),
    );
  } else {
    const type =
      p.type === "number" || p.type === "integer"
        ? "number"
        : p.format === "email"
          ? "email"
          : p.format === "uri"
            ? "url"
            : p.format === "date"
              ? "date"
              : "text";
    input = h("input", {
      type,
      name,
      "data-kind": p.type,
      ...(p.type === "integer" ? { step: "1" } : p.type === "number" ? { step: "any" } : {}),
      ...(p.default !== undefined && !Array.isArray(p.default) ? { value: String(p.default) } : {}),
    });
  }
  return h(
    "label",
    { class: "elicitation-field" },
    h("span", { class: "elicitation-label" }, label),
    input,
    p.description !== undefined ? h("span", { class: "muted" }, p.description) : null,
  );
}

/** The form's values by property: empty fields are left out (the gateway says which are required). */
function contentOf(form: HTMLFormElement): Record<string, ElicitationValue> {
  const content: Record<string, ElicitationValue> = {};
  for (const el of Array.from(form.querySelectorAll<HTMLInputElement | HTMLSelectElement>("[data-kind]"))) {
    const kind = el.dataset["kind"];
    if (kind === "boolean") content[el.name] = (el as HTMLInputElement).checked;
    else if (kind === "array") {
      const list = (content[el.name] as string[] | undefined) ?? [];
      if ((el as HTMLInputElement).checked) list.push(el.value);
      content[el.name] = list;
    } else if (el.value !== "")
      content[el.name] = kind === "number" || kind === "integer" ? Number(el.value) : el.value;
  }
  return content;
}

/** Sends an answer; `form` holds the buttons (and, for a form's accept, the fields). */
async function answer(
  { app: ctx, sessionId }: ElicitationPage,
  request: ElicitationView,
  action: "accept" | "decline" | "cancel",
  form: HTMLElement,
): Promise<void> {
  const buttons = Array.from(form.querySelectorAll("button"));
  for (const b of buttons) b.disabled = true;
  try {
    await ctx.client.elicitation(
      sessionId,
      request.requestId,
      action,
      action === "accept" && form instanceof HTMLFormElement ? contentOf(form) : undefined,
    );
  } catch (error) {
    if (isSwitchboardError(error, "ELICITATION_NOT_FOUND"))
      ctx.toast("Too late: the question was answered or cancelled first (see it below)", "info");
    else if (isSwitchboardError(error, "ELICITATION_CONTENT_INVALID")) ctx.toast(errorText(error), "error");
    else {
      const unconfirmed = unconfirmedText("Answer", error);
      ctx.toast(
        unconfirmed !== null
          ? `${unconfirmed} — if the question is still open below, answer it again`
          : `Answer not sent: ${errorText(error)}`,
        "error",
      );
    }
    for (const b of buttons) b.disabled = false;
  }
}
