import { isSwitchboardError } from "../client/errors.js";
import { SwitchboardError } from "../protocol/errors.js";
import type { HttpClient, SessionInfo } from "../client/node.js";
import { positional } from "./context.js";
import { printable } from "./printable.js";

/** Most candidates an ambiguous reference's message lists; `switchboard ls REF` lists them all. */
const AMBIGUOUS_SHOWN = 5;
/** Longest part of a reference quoted back in a message. */
const REF_SHOWN_CHARS = 200;

/**
 * The id of the session `ref` names, as every client command that takes a session reads it
 * (docs/cli.md, "Naming a session"): its id; else the one session with that name; else the
 * one session whose id starts with `ref`, as git takes a short hash. SESSION_NOT_FOUND when
 * none matches; SESSION_NAME_AMBIGUOUS, listing the candidates, when several do
 * (test/cli/session-names.test.ts runs every command through this).
 */
export async function resolveSession(http: HttpClient, ref: string): Promise<string> {
  let notFound: SwitchboardError;
  try {
    return (await http.getSession(ref)).id;
  } catch (error) {
    if (!isSwitchboardError(error, "SESSION_NOT_FOUND")) throw error;
    notFound = error;
  }
  const match = matchSessions(await http.listSessions(), ref);
  if (match.sessions.length === 1) return match.sessions[0]!.id;
  // The gateway's own answer ("no session x"), which the CLI's error line completes with where to look.
  if (match.sessions.length === 0) throw notFound;
  const shown = printable(ref.slice(0, REF_SHOWN_CHARS));
  const candidates = match.sessions
    .slice(0, AMBIGUOUS_SHOWN)
    .map((s) => (match.by === "prefix" && s.name ? `${s.id} ${printable(s.name)}` : s.id));
  const more = match.sessions.length > candidates.length ? ", …" : "";
  const what =
    match.by === "name"
      ? `${match.sessions.length} sessions are named ${shown}`
      : `${match.sessions.length} session ids start with ${shown}`;
  throw new SwitchboardError(
    "SESSION_NAME_AMBIGUOUS",
    `${what} (${candidates.join(", ")}${more}): give the id of one ("switchboard ls ${shown}" lists them)`,
  );
}

/**
 * The sessions `ref` names, oldest first, and how: those of that id or name, else those whose
 * id starts with it (what `ls REF` lists; one of them is what {@link resolveSession} takes).
 */
export function matchSessions(
  sessions: readonly SessionInfo[],
  ref: string,
): { by: "id" | "name" | "prefix"; sessions: SessionInfo[] } {
  const oldestFirst = (list: SessionInfo[]) => list.sort((a, b) => a.createdAt - b.createdAt);
  const exact = sessions.find((s) => s.id === ref);
  if (exact) return { by: "id", sessions: [exact] };
  const named = sessions.filter((s) => s.name === ref);
  if (named.length > 0) return { by: "name", sessions: oldestFirst(named) };
  return { by: "prefix", sessions: ref === "" ? [] : oldestFirst(sessions.filter((s) => s.id.startsWith(ref))) };
}

/** The session a command's operand `index` names (see {@link resolveSession}), or a usage error when it is missing. */
export function sessionOperand(
  ctx: { http: HttpClient },
  parsed: { positionals: string[] },
  index = 0,
): Promise<string> {
  return resolveSession(ctx.http, positional(parsed, index, "the session id or name"));
}
