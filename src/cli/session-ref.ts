import { SwitchboardError, isSwitchboardError } from "../client/node.js";
import type { HttpClient, SessionInfo } from "../client/node.js";

/** Most ids an ambiguous name's message lists; `switchboard ls NAME` lists them all. */
const AMBIGUOUS_IDS_SHOWN = 5;

/**
 * The id of the session `ref` names: its id, else the one session with that name.
 * SESSION_NOT_FOUND when none has it; SESSION_NAME_AMBIGUOUS, with the ids, when several do.
 */
export async function resolveSession(http: HttpClient, ref: string): Promise<string> {
  let notFound: SwitchboardError;
  try {
    return (await http.getSession(ref)).id;
  } catch (error) {
    if (!isSwitchboardError(error, "SESSION_NOT_FOUND")) throw error;
    notFound = error;
  }
  const named = sessionsNamed(await http.listSessions(), ref);
  if (named.length === 1) return named[0]!.id;
  // The gateway's own answer, which the CLI's error line completes with where to look.
  if (named.length === 0) throw notFound;
  const ids = named.slice(0, AMBIGUOUS_IDS_SHOWN).map((s) => s.id);
  throw new SwitchboardError(
    "SESSION_NAME_AMBIGUOUS",
    `${named.length} sessions are named ${ref.slice(0, 200)} (${ids.join(", ")}${named.length > ids.length ? ", …" : ""}): give the id of one ("switchboard ls ${ref.slice(0, 200)}" lists them)`,
  );
}

/** The sessions whose id or name is `ref`, oldest first. */
export function sessionsNamed(sessions: readonly SessionInfo[], ref: string): SessionInfo[] {
  return sessions.filter((s) => s.id === ref || s.name === ref).sort((a, b) => a.createdAt - b.createdAt);
}
