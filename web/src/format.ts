import { isConnectionError, isSwitchboardError } from "../../src/client/index.js";
import { joinCommand } from "../../src/core/shell-words.js";
import type { ControlVia, SessionInfo } from "../../src/protocol/index.js";
import { replaceHiddenChars } from "../../src/protocol/display-text.js";
import { DEVICE_IDENTITY_PREFIX } from "../../src/protocol/devices.js";
import { pageRequestTimeoutMs } from "./request-timeout.js";

/**
 * Names and commands as shown: a bidirectional control or an invisible character (which the
 * gateway refuses in names, but an older log or an agent's command may hold) becomes U+FFFD,
 * so the text cannot display in another order or hide part of itself.
 */
export function shown(text: string): string {
  return replaceHiddenChars(text, () => "\uFFFD");
}

/**
 * What the list and the headers say a session is doing. `waiting` is an agent blocked on a
 * permission answer (docs/ui.md: "waiting for input"); `working`/`idle` split a running agent.
 */
export type DisplayState = "waiting" | "working" | "idle" | "running" | "exited" | "failed" | "lost";

export interface StateBadge {
  state: DisplayState;
  label: string;
}

export function displayState(s: SessionInfo): StateBadge {
  switch (s.state) {
    case "lost":
      return { state: "lost", label: "Lost" };
    case "exited":
      return {
        state: endOutcome(s.exitCode, s.signal) === "failed" ? "failed" : "exited",
        label: exitSummary(s.exitCode, s.signal),
      };
    case "running":
      if (s.kind === "agent" && s.run) {
        switch (s.run.activity) {
          case "waiting":
            return { state: "waiting", label: "Waiting for input" };
          case "working":
            return { state: "working", label: "Working" };
          case "idle":
            return { state: "idle", label: "Idle" };
        }
      }
      return { state: "running", label: "Running" };
  }
}

/**
 * The signals that ask a process to end: Stop sends a PTY's process SIGHUP (its terminal hangs
 * up: an interactive shell ignores SIGTERM) and a pipe's SIGTERM, ^C SIGINT.
 */
const REQUESTED_END_SIGNALS: ReadonlySet<string> = new Set(["SIGHUP", "SIGTERM", "SIGINT"]);

/**
 * How an ended process did: `ok` (code 0), `stopped` on request — Stop ends an agent or a
 * stream with neither code nor signal, a terminal with SIGHUP or SIGTERM — or else `failed`. A session
 * someone stopped should not look like one that failed (exploratory test: a red "Exited").
 */
export function endOutcome(exitCode: number | null, signal: string | null): "ok" | "stopped" | "failed" {
  if (exitCode === 0 && signal === null) return "ok";
  if (exitCode === null && (signal === null || REQUESTED_END_SIGNALS.has(signal))) return "stopped";
  return "failed";
}

export function exitSummary(exitCode: number | null, signal: string | null): string {
  if (signal !== null) return `Killed (${signal})`;
  if (exitCode === null) return "Stopped";
  return `Exited ${exitCode}`;
}

/** Sort order of the list: what needs a human first, then what is alive, then the rest. */
export function stateRank(state: DisplayState): number {
  switch (state) {
    case "waiting":
      return 0;
    case "working":
    case "running":
    case "idle":
      return 1;
    case "exited":
    case "failed":
    case "lost":
      return 2;
  }
}

export function sessionTitle(s: Pick<SessionInfo, "name" | "command" | "agent" | "kind" | "id">): string {
  if (s.name) return shown(s.name);
  if (s.kind === "agent" && s.agent) return `${s.agent} agent`;
  if (s.command && s.command.length > 0) return shown(joinCommand(s.command));
  return `${s.kind} ${shortId(s.id)}`;
}

export function sessionSubtitle(s: SessionInfo): string {
  const parts: string[] = [];
  if (s.kind === "agent") {
    parts.push(s.agent ?? "agent");
    if (s.run && s.run.queued > 0) parts.push(`${s.run.queued} queued`);
  } else if (s.kind === "terminal") {
    if (s.name && s.command) parts.push(shown(joinCommand(s.command)));
    parts.push(s.pty ? `pty ${s.cols ?? "?"}×${s.rows ?? "?"}` : "pipes");
  } else {
    parts.push("stream");
  }
  return parts.join(" · ");
}

export function shortId(id: string): string {
  return id.slice(0, 6);
}

/** "just now", "42s ago", "5m ago", "3h ago", "2d ago". */
export function relativeTime(ts: number, now: number): string {
  const s = Math.max(0, Math.round((now - ts) / 1000));
  if (s < 5) return "just now";
  if (s < 60) return `${s}s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ago`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours}h ago`;
  return `${Math.floor(hours / 24)}d ago`;
}

export function clockTime(ts: number): string {
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

/** An error's message for a toast, with the gateway's code when it has one. */
/** Why a session page stopped following its session (removed, or no longer visible: same answer). */
export function followErrorText(error: unknown): string {
  if (isSwitchboardError(error, "SESSION_NOT_FOUND")) return "This session was removed.";
  return `Cannot follow this session: ${errorText(error)}`;
}

/**
 * What to say when a request may have reached the gateway without its answer reaching the page
 * (`what`: "Prompt", "Input"…), or null for any other failure. The SDK rejects with DISCONNECTED
 * only a request it wrote to the socket; a TIMEOUT may be one written (the link stalled: it may
 * still arrive once the link recovers) or one that waited for the connection and was never sent —
 * the SDK does not say which, so the text holds for both. Saying "not sent" made users send it again,
 * and then it arrived twice (exploratory test).
 */
export function unconfirmedText(what: string, error: unknown): string | null {
  if (isConnectionError(error, "TIMEOUT"))
    return `${what} not confirmed: the gateway did not answer in ${pageRequestTimeoutMs() / 1000} s; it may still arrive`;
  if (isConnectionError(error, "DISCONNECTED"))
    return `${what} not confirmed: the connection dropped before the gateway answered; it may have arrived`;
  return null;
}

export function errorText(error: unknown): string {
  if (isSwitchboardError(error) || isConnectionError(error)) return `${error.message} (${error.code})`;
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Where a control holder types, after its name in a header or a list row. */
const VIA_SHORT: Record<ControlVia, string> = { page: "web", attach: "attach", sdk: "SDK", http: "HTTP" };
/** Where a control holder types, in a sentence ("otto is in control in switchboard attach"). */
export const VIA_TEXT: Record<ControlVia, string> = {
  page: "in the web UI",
  attach: "in switchboard attach",
  sdk: "through the SDK",
  http: "through the HTTP API",
};

/**
 * A holder's name as people read it: a paired device (`device:phone`) is "your phone", from the
 * name it was paired with, rather than a second "you" in "another tab".
 */
export function holderName(name: string): string {
  return name.startsWith(DEVICE_IDENTITY_PREFIX) ? `your ${name.slice(DEVICE_IDENTITY_PREFIX.length)}` : name;
}

/**
 * Who holds a session's control, for its header and its row in the list: the holder's name
 * ("you" for the signed-in user) and how it is connected (`via`: "otto · attach"); `here`: this
 * page holds it ("you · this page"), and a page of the user's that does not says "another tab".
 */
export function controlHolder(
  controller: string | null,
  me: string,
  via?: ControlVia | null,
  here?: boolean,
): { label: string; title: string } {
  if (controller === null) return { label: "free", title: "Nobody is in control" };
  if (here === true) return { label: "you · this page", title: "You are in control on this page" };
  const mine = controller === me;
  const name = mine ? "you" : holderName(controller);
  if (via === undefined || via === null)
    return {
      label: name,
      title: mine ? "You are in control (on this page or another)" : `${name} is in control`,
    };
  const where = mine && via === "page" && here === false ? "another tab" : VIA_SHORT[via];
  const text = mine && via === "page" && here === false ? "in another tab or window" : VIA_TEXT[via];
  return { label: `${name} · ${where}`, title: `${mine ? "You are" : `${name} is`} in control ${text}` };
}
