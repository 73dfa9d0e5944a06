import { toolCallDiffs } from "../../src/protocol/index.js";
import type { ToolCall } from "./agent-model.js";
import { renderToolDiff, shownPath } from "./diff-view.js";
import type { AppContext } from "./context.js";
import { h, icon } from "./dom.js";
import type { Attrs, Child } from "./dom.js";
import { sessionTitle, shortId } from "./format.js";

/** Tool input/output shown inline is cut at this many characters. */
export const TOOL_DETAIL_CHARS = 2_000;

/**
 * One tool call of an agent's run: title, kind and status, links to the terminals it runs in,
 * and its input and output behind "Details" (a `<details>` with `detailsAttrs`: whether it is
 * open, and its key on the page).
 */
export function renderToolCall(
  tool: ToolCall,
  store: AppContext["store"],
  detailsAttrs: Attrs,
  cwd?: string | null,
  download?: (relative: string) => HTMLElement,
): HTMLElement {
  // A path inside the session's cwd gets a download link (GET .../files takes it relative).
  const downloadOf = (file: string): HTMLElement | null => {
    const relative = shownPath(file, cwd);
    return download !== undefined && !relative.startsWith("/") && relative !== "" ? download(relative) : null;
  };
  const diffs = toolCallDiffs({ content: tool.content });
  const output = textOutput(tool.content);
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
    tool.locations.length > 0 && diffs.length === 0
      ? h(
          "div",
          { class: "tool-paths", "data-test": "tool-paths" },
          tool.locations.flatMap((p) => [h("code", { title: p }, shownPath(p, cwd)), downloadOf(p)]),
        )
      : null,
    diffs.flatMap((diff) => [renderToolDiff(diff, cwd), downloadOf(diff.path)]),
    output !== "" ? h("pre", { class: "tool-output", "data-test": "tool-output" }, output) : null,
    tool.terminalSessionIds.length > 0
      ? h(
          "div",
          { class: "tool-terminals" },
          tool.terminalSessionIds.map((id) => {
            const child = store.get(id);
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
    detail.length > 0
      ? h("details", { class: "tool-detail", ...detailsAttrs }, h("summary", null, "Details"), detail)
      : null,
  );
}

/** The text blocks of a tool call's content (a command's output, as agents report it), at most TOOL_DETAIL_CHARS from the end. */
function textOutput(content: unknown[]): string {
  const text = content
    .flatMap((c) => {
      const block = (c as { type?: unknown; content?: { type?: unknown; text?: unknown } } | null) ?? {};
      return block.type === "content" && block.content?.type === "text" && typeof block.content.text === "string"
        ? [block.content.text]
        : [];
    })
    .join("\n");
  return text.length > TOOL_DETAIL_CHARS ? `…${text.slice(-TOOL_DETAIL_CHARS)}` : text;
}

function preview(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  return text.length > TOOL_DETAIL_CHARS ? `${text.slice(0, TOOL_DETAIL_CHARS)}…` : text;
}
