import type { AttentionReason, SessionInfo } from "../../src/protocol/index.js";
import { joinCommand } from "../../src/core/shell-words.js";
import { h, icon } from "./dom.js";
import type { IconName } from "./dom.js";
import { controlHolder, displayState, sessionSubtitle, sessionTitle, shown } from "./format.js";
import { usageMeter } from "./usage-meter.js";

const KIND_ICONS: Record<SessionInfo["kind"], IconName> = { terminal: "terminal", agent: "agent", stream: "stream" };
/** Watcher names a row spells out; more are "+N". */
export const ROW_WATCHER_NAMES = 2;

export interface RowOptions {
  mode: "full" | "compact";
  me: string;
  parent: string | null;
  /** Starts an ended terminal session again; null where the user may not start sessions. */
  runAgain: ((s: SessionInfo) => void) | null;
}

export interface Row {
  /** The row's element in the list: the link, and beside it the row's own buttons. */
  el: HTMLElement;
  link: HTMLElement;
  activity: HTMLElement;
}

/** What a row shows, but its relative time: the row is redrawn when this changes. */
export function rowKey(s: SessionInfo, parent: string | null): string {
  return JSON.stringify([
    s.name,
    s.state,
    s.exitCode,
    s.signal,
    s.run,
    s.viewers,
    s.watchers,
    s.lastLine,
    s.controller,
    s.controllerVia,
    s.cols,
    s.rows,
    s.agentState?.usage,
    s.attention,
    parent,
  ]);
}

/** What the search box looks in: name, command, owner, agent and the state as shown. */
export function searchText(s: SessionInfo): string {
  return [
    sessionTitle(s),
    s.name ?? "",
    s.command ? joinCommand(s.command) : "",
    s.agent ?? "",
    s.owner,
    s.kind,
    displayState(s).label,
    displayState(s).state,
  ]
    .join("\n")
    .toLowerCase();
}

/** True when every word of `query` is found in what {@link searchText} lists. */
export function matchesQuery(s: SessionInfo, query: string): boolean {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return true;
  const text = searchText(s);
  return words.every((word) => text.includes(word));
}

/** "alice, bob +3 watching", or "nobody watching". */
export function watchingText(s: SessionInfo, me: string): string {
  if (s.viewers === 0) return "nobody watching";
  const names = s.watchers.map((name) => (name === me ? "you" : shown(name)));
  const listed = names.slice(0, ROW_WATCHER_NAMES);
  // `viewers` counts connections (one person may have two tabs); the names are people.
  const more = Math.max(0, names.length - listed.length);
  return `${listed.join(", ") || `${s.viewers}`}${more > 0 ? ` +${more}` : ""} watching`;
}

/** The line under the title: an agent says what it waits for, else the last line it wrote. */
function lastLineText(s: SessionInfo): { text: string; waiting: boolean } | null {
  if (s.state === "running" && s.kind === "agent" && s.run) {
    if (s.run.activity === "waiting") return { text: "Waits for an answer to a permission request", waiting: true };
    if (s.run.activity === "idle" && s.lastLine === null) return { text: "Waits for a prompt", waiting: true };
  }
  return s.lastLine === null ? null : { text: shown(s.lastLine), waiting: false };
}

/** What each attention reason says on the "needs you" mark's tooltip. */
const ATTENTION_WORDS: Record<AttentionReason, string> = {
  permission: "asks for permission",
  elicitation: "asks a question",
  "run-failed": "its run failed",
  "run-finished": "finished its run",
  bell: "rang the bell",
  notification: "sent a notification",
  quiet: "went quiet",
};

/** The "needs you" mark of a session with `attention` (null without). */
function needsYouMark(s: SessionInfo): HTMLElement | null {
  const attention = s.attention;
  if (attention === undefined || s.state !== "running") return null;
  const why = `${ATTENTION_WORDS[attention.reason]}${attention.text !== undefined ? `: ${attention.text}` : ""}`;
  return h(
    "span",
    { class: "needs-you", "data-test": "needs-you", "data-reason": attention.reason, title: `Needs you: ${why}` },
    "needs you",
  );
}

export function renderRow(s: SessionInfo, options: RowOptions): Row {
  const badge = displayState(s);
  const ended = s.state !== "running";
  // A name in a right-to-left script reads (and is cut off with "…") from its own start.
  const title = h("span", { class: "row-title", dir: "auto" }, sessionTitle(s));
  const stateBadge = h(
    "span",
    { class: `badge state-${badge.state}`, "data-state": badge.state },
    h("span", { class: "dot" }),
    badge.label,
  );
  const activity = h("span", { class: "row-meta activity" });
  const common = {
    class: `row state-${badge.state}`,
    href: `#/s/${encodeURIComponent(s.id)}`,
    "data-session": s.id,
    "data-kind": s.kind,
  };
  const kindIcon = h("span", { class: `kind-icon kind-${s.kind}` }, icon(KIND_ICONS[s.kind]));
  if (options.mode === "compact") {
    const link = h(
      "a",
      common,
      kindIcon,
      h("span", { class: "row-main" }, title, h("span", { class: "row-line" }, stateBadge, needsYouMark(s), activity)),
    );
    return { el: h("div", { class: "row-item", "data-item": s.id }, link), link, activity };
  }
  const last = lastLineText(s);
  const sub = h(
    "span",
    { class: "row-sub" },
    sessionSubtitle(s),
    options.parent ? h("span", { class: "row-parent" }, ` · ↳ ${options.parent}`) : null,
  );
  const lastEl = last
    ? h(
        "span",
        { class: `row-last${last.waiting ? " waiting" : ""}`, dir: "auto", "data-test": "last-line" },
        last.text,
      )
    : null;
  const holder = controlHolder(s.controller, options.me, s.controllerVia);
  // An ended session has nobody to watch and no control to hold: it shows only when it ended.
  const live = ended
    ? []
    : [
        h(
          "span",
          { class: "row-meta viewers", title: `${s.viewers} connection(s) watching` },
          icon("eye"),
          h("span", { "data-test": "watchers" }, watchingText(s, options.me)),
          // The lock icon says "control" to the eye only.
          h("span", { class: "sr-only" }, ", control:"),
        ),
        h(
          "span",
          { class: `row-meta control${s.controller ? " held" : ""}`, title: holder.title },
          icon(s.controller ? "lock" : "unlock"),
          holder.label,
        ),
      ];
  // An agent's context window and cost, as its header shows them (compact: the share and the cost).
  const usage = s.agentState?.usage ? usageMeter(s.agentState.usage, { compact: true }) : null;
  const link = h(
    "a",
    common,
    kindIcon,
    h("span", { class: "row-main" }, title, sub, lastEl),
    stateBadge,
    needsYouMark(s),
    h("span", { class: "row-meta-group" }, activity, usage, ...live),
  );
  const runAgain =
    ended && s.kind === "terminal" && s.command !== null && options.runAgain
      ? h(
          "button",
          {
            class: "btn btn-small row-action",
            type: "button",
            "data-test": "run-again",
            title: `Start ${joinCommand(s.command)} again`,
            onclick: () => options.runAgain?.(s),
          },
          icon("send"),
          "Run again",
        )
      : null;
  return {
    el: h("div", { class: `row-item${runAgain ? " has-action" : ""}`, "data-item": s.id }, link, runAgain),
    link,
    activity,
  };
}

/** The request that starts `s` again: same command, working directory, terminal mode, size and name. */
export function runAgainRequest(s: SessionInfo): {
  command: string[];
  cwd?: string;
  pty: boolean;
  cols?: number;
  rows?: number;
  name?: string;
} {
  return {
    command: s.command ?? [],
    pty: s.pty,
    ...(s.cwd !== null ? { cwd: s.cwd } : {}),
    ...(s.pty && s.cols !== null ? { cols: s.cols } : {}),
    ...(s.pty && s.rows !== null ? { rows: s.rows } : {}),
    ...(s.name !== null ? { name: s.name } : {}),
  };
}
