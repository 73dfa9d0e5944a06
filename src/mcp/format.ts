import type { SessionInfo } from "../client/node.js";
import type { SessionSummary } from "./results.js";

export function summarize(session: SessionInfo): SessionSummary {
  return {
    id: session.id,
    name: session.name,
    kind: session.kind,
    state: session.state,
    pty: session.pty,
    command: session.command,
    cwd: session.cwd,
    pid: session.pid,
    exit_code: session.exitCode,
    signal: session.signal,
    output_bytes: session.outputBytes,
    agent: session.agent,
    run: session.run,
    created_at: new Date(session.createdAt).toISOString(),
    ended_at: session.endedAt === null ? null : new Date(session.endedAt).toISOString(),
  };
}

/**
 * One line about a session:
 * `kbDYb3YEOIRcC13f1i4fFA "build" terminal/pty running (pid 48213), 1234 output bytes: bash -l`.
 */
export function sessionLine(session: SessionInfo): string {
  const name = session.name !== null ? ` ${JSON.stringify(session.name)}` : "";
  const kind =
    session.kind === "terminal"
      ? `terminal/${session.pty ? "pty" : "pipe"}`
      : session.kind === "agent"
        ? `agent ${session.agent ?? "(inline)"}`
        : session.kind;
  let what = `${session.id}${name} ${kind} ${describeState(session)}`;
  if (session.kind !== "agent") what += `, ${session.outputBytes} output bytes`;
  else if (session.run !== null && session.run.activity !== "idle") {
    what += `, ${session.run.activity}${session.run.queued > 0 ? ` (${session.run.queued} queued)` : ""}`;
  }
  if (session.command !== null) what += `: ${shorten(session.command.map(quoteArg).join(" "))}`;
  return what;
}

/** A command in a line of text is cut to this many characters (the structured content has it whole). */
export const COMMAND_TEXT_CHARS = 200;

/** `text`, cut to {@link COMMAND_TEXT_CHARS} with what was left out counted: a 60 KB script must not fill a listing. */
function shorten(text: string): string {
  if (text.length <= COMMAND_TEXT_CHARS) return text;
  // Not between the halves of a surrogate pair.
  let cut = COMMAND_TEXT_CHARS;
  if (/[\uDC00-\uDFFF]/.test(text[cut] ?? "")) cut--;
  return `${text.slice(0, cut)}… (${text.length - cut} more characters)`;
}

/** `running (pid 42)`, `exited with code 3`, `exited by signal SIGTERM`, `lost`. */
export function describeState(session: Pick<SessionInfo, "state" | "pid" | "exitCode" | "signal">): string {
  switch (session.state) {
    case "running":
      return session.pid !== null ? `running (pid ${session.pid})` : "running";
    case "exited":
      return describeExit(session.exitCode, session.signal);
    case "lost":
      return "lost (the gateway stopped while it ran)";
  }
}

export function describeExit(exitCode: number | null, signal: string | null): string {
  if (signal !== null) return `exited by signal ${signal}`;
  if (exitCode !== null) return `exited with code ${exitCode}`;
  return "exited";
}

function quoteArg(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : JSON.stringify(arg);
}
