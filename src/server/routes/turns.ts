import { SwitchboardError, TURNS_PAGE_MAX } from "../../protocol/index.js";
import { turnIndexOf } from "../../log/turn-index.js";
import type { TurnLog, TurnMark } from "../../log/turn-index.js";
import { currentCopy, sessionFor } from "../identity/access.js";
import type { GatewayCore, RequestContext } from "../context.js";
import { intParam, queryParam, sendJsonText } from "../http/http.js";
import type { Router } from "../http/router.js";

/** Turns given when the request names no `limit`. */
export const TURNS_PAGE_DEFAULT = 1;

/**
 * `GET /v1/sessions/:id/turns` (docs/protocol.md, "Turns"): where an agent session's runs start,
 * from the log's turn index (src/log/turn-index.ts), so that a page opens on the last turns and
 * loads older ones a page at a time. `before=SEQ`: the last `limit` turns starting before SEQ;
 * `from=SEQ`: the first `limit` starting at or after it; neither: the last `limit` turns, and
 * the prompts waiting in the queue. Read as the session's log is (`see`).
 */
export function turnRoutes(router: Router, core: GatewayCore): void {
  router.add("GET", "/v1/sessions/:id/turns", async (ctx) => {
    const session = sessionFor(core.sessions, ctx.identity, ctx.params["id"]!, "see");
    await currentCopy(core.sessions, session);
    sendJsonText(ctx.res, 200, turnsAnswer(session.log, ctx));
  });
}

function turnsAnswer(log: TurnLog, ctx: RequestContext): string {
  const limit = intParam(ctx.url, "limit", TURNS_PAGE_DEFAULT, TURNS_PAGE_MAX, 1);
  const hasBefore = queryParam(ctx.url, "before") !== null;
  const hasFrom = queryParam(ctx.url, "from") !== null;
  if (hasBefore && hasFrom) throw new SwitchboardError("BAD_REQUEST", "give before or from, not both");
  const index = turnIndexOf(log);
  const page = hasFrom
    ? index.from(intParam(ctx.url, "from", 0), limit)
    : index.before(intParam(ctx.url, "before", Number.MAX_SAFE_INTEGER), limit);
  const pageStart = page.turns[0]?.start ?? Number.MAX_SAFE_INTEGER;
  const turns = page.turns.map(
    (t) =>
      `{"runId":${JSON.stringify(t.runId)},"start":${t.start},"queued":${t.queued !== null && t.queued < pageStart ? queuedJson(log, t) : "null"}}`,
  );
  const waiting =
    hasBefore || hasFrom ? [] : index.queued.map((t) => queuedJson(log, t)).filter((json) => json !== "null");
  return `{"turns":[${turns.join(",")}],"next":${page.next ?? "null"},"waiting":[${waiting.join(",")}],"head":${log.head},"first":${log.first},"bytes":${log.storedState.retainedBytes}}`;
}

/** The JSON of a run's `run.queued` event, read by its seq; "null" when retention dropped it. */
function queuedJson(log: TurnLog, mark: TurnMark): string {
  if (mark.queued === null || mark.queued < log.first) return "null";
  const entry = log.read(mark.queued - 1, { limit: 1 }).entries[0];
  return entry?.seq === mark.queued ? entry.json : "null";
}
