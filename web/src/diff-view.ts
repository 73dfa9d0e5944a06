import { diffHunks, diffLineKind } from "../../src/core/unified-diff.js";
import type { ChangedFile, ToolCallDiff } from "../../src/protocol/index.js";
import { h } from "./dom.js";

/** Lines of a diff shown at most per file; the rest is summed up in one line. */
export const MAX_DIFF_LINES_SHOWN = 400;

/**
 * A unified diff's hunks as lines colored by kind (`@@` headers, added, removed, context),
 * wrapped rather than scrolled sideways, so a phone shows a whole line.
 */
export function renderHunks(hunks: string): HTMLElement {
  const lines = hunks.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const rows = lines
    .slice(0, MAX_DIFF_LINES_SHOWN)
    .map((line) => h("div", { class: `diff-line diff-${diffLineKind(line)}` }, line === "" ? " " : line));
  if (lines.length > MAX_DIFF_LINES_SHOWN)
    rows.push(h("div", { class: "diff-line muted" }, `… ${lines.length - MAX_DIFF_LINES_SHOWN} more lines`));
  return h("pre", { class: "diff-lines", "data-test": "diff-lines" }, rows);
}

/** The counts `+3 −1` of a change. */
export function renderCounts(added: number, removed: number): HTMLElement {
  return h(
    "span",
    { class: "diff-counts" },
    h("span", { class: "diff-count-add" }, `+${added}`),
    " ",
    h("span", { class: "diff-count-del" }, `−${removed}`),
  );
}

/** `file` relative to the session's `cwd` when it is inside it (agents name files by absolute path). */
export function shownPath(file: string, cwd: string | null | undefined): string {
  if (cwd === null || cwd === undefined || cwd === "") return file;
  const root = cwd.endsWith("/") ? cwd : `${cwd}/`;
  return file.startsWith(root) && file.length > root.length ? file.slice(root.length) : file;
}

/**
 * An ACP diff (a tool call's content, a permission request's) as a unified diff under its path,
 * shown relative to the session's `cwd`.
 */
export function renderToolDiff(diff: ToolCallDiff, cwd?: string | null): HTMLElement {
  const { diff: hunks, added, removed } = diffHunks({ path: diff.path, oldText: diff.oldText, newText: diff.newText });
  return h(
    "div",
    { class: "file-diff", "data-test": "tool-diff", "data-path": diff.path },
    h(
      "div",
      { class: "file-diff-path" },
      h("span", { class: "file-path", title: diff.path }, shownPath(diff.path, cwd)),
      diff.oldText === null ? h("span", { class: "pill" }, "new file") : null,
      renderCounts(added, removed),
    ),
    renderHunks(hunks),
  );
}

const STATUS_WORDS: Record<ChangedFile["status"], string> = { added: "new", modified: "", deleted: "deleted" };

/**
 * One file of a change list: a `<details>` (open) whose summary is the path, its status and its
 * counts, and whose body is its diff (or why there is none).
 */
export function renderChangedFile(file: ChangedFile): HTMLElement {
  const body =
    file.diff !== undefined
      ? renderHunks(file.diff)
      : h(
          "p",
          { class: "muted file-note" },
          file.content === "text"
            ? "The diff is too large for this list: switchboard diff has it."
            : `A ${file.content} change: ${file.oldBytes ?? 0} → ${file.newBytes ?? 0} bytes.`,
        );
  const status = STATUS_WORDS[file.status];
  return h(
    "details",
    { class: "file-diff changed-file", open: true, "data-test": "changed-file", "data-path": file.path },
    h(
      "summary",
      { class: "file-diff-path" },
      h("span", { class: "file-path" }, file.path),
      status !== "" ? h("span", { class: "pill" }, status) : null,
      file.region === true ? h("span", { class: "pill", title: "Only the part the agent reported" }, "region") : null,
      renderCounts(file.added, file.removed),
    ),
    body,
  );
}
