import type { SessionInfo } from "../client/node.js";
import { joinCommand } from "../core/shell-words.js";
import { printable } from "./printable.js";
import { padToWidth, textWidth, truncateToWidth } from "./text-width.js";

/** Longest command shown in `ls`, in columns, before it is cut with an ellipsis. */
export const LS_COMMAND_CHARS = 60;

const COLUMNS = ["ID", "NAME", "KIND", "STATE", "PID", "EXIT", "AGE", "COMMAND"] as const;

/** `ls` as an aligned table, oldest first. */
export function formatSessionTable(sessions: readonly SessionInfo[], now: number): string {
  // Names and commands come from whoever created the session: escaped, so they cannot act on the terminal.
  const rows = sessions.map((s) => [
    printable(s.id),
    printable(s.name ?? "-"),
    s.pty ? `${s.kind}/pty` : s.kind,
    stateText(s),
    s.pid !== null ? String(s.pid) : "-",
    printable(exitText(s)),
    age(now - s.createdAt),
    commandText(s),
  ]);
  return formatTable(COLUMNS, rows);
}

/** `rows` under `columns`, aligned, two spaces apart; the last column is not padded. */
export function formatTable(columns: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  // In columns on the screen, not characters: 日本語 takes six, é written as e + U+0301 one.
  const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => textWidth(r[i]!))));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : padToWidth(cell, widths[i]!)))
      .join("  ")
      .trimEnd();
  return `${[line(columns), ...rows.map(line)].join("\n")}\n`;
}

/**
 * The STATE column: `running`, or for a running agent session what it does (`idle`, `working`,
 * `waiting` for a permission answer, as the UI shows it); `*` when someone holds control.
 */
function stateText(s: SessionInfo): string {
  if (s.state !== "running") return s.state;
  const shown = s.run?.activity ?? s.state;
  return s.controller !== null ? `${shown}*` : shown;
}

/** One session in a sentence (what `kill` prints). */
export function formatSessionLine(s: SessionInfo): string {
  return `${printable(s.id)} ${printable(endText(s))}`;
}

/**
 * How a session ended, for `kill` and `attach`. Agent and stream sessions can end with neither
 * an exit code nor a signal (terminated, or their producer gave none): they "ended".
 */
export function endText(s: Pick<SessionInfo, "state" | "exitCode" | "signal">): string {
  if (s.state === "running") return "is still running";
  if (s.state === "lost") return "was lost";
  if (s.signal !== null) return `was killed by ${s.signal}`;
  return s.exitCode !== null ? `exited with code ${s.exitCode}` : "ended";
}

function exitText(s: SessionInfo): string {
  if (s.state === "running") return "-";
  if (s.signal !== null) return s.signal;
  if (s.exitCode !== null) return String(s.exitCode);
  return s.state === "lost" ? "?" : "-";
}

function commandText(s: SessionInfo): string {
  const text = printable(s.command ? joinCommand(s.command) : s.agent ? `agent ${s.agent}` : "");
  return truncateToWidth(text, LS_COMMAND_CHARS);
}

function age(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}
