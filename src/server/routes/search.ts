import {
  SEARCH_PAGE_DEFAULT,
  SEARCH_PAGE_MAX,
  SEARCH_QUERY_MAX_CHARS,
  SwitchboardError,
} from "../../protocol/index.js";
import type { SearchAnswer } from "../../protocol/index.js";
import { sessionFor } from "../identity/access.js";
import { canSee } from "../identity/auth.js";
import type { GatewayCore } from "../context.js";
import { intParam, queryParam, sendJson } from "../http/http.js";
import type { Router } from "../http/router.js";

/**
 * `GET /v1/search?q=&limit=&cursor=&session=`: full-text search over the logs of the sessions the
 * caller may see (docs/protocol.md, "Search"). The sessions are chosen by the same rule as
 * `GET /v1/sessions` and handed to the query, which counts only their hits toward `limit`
 * (test/search/search.test.ts, "never returns a session the caller may not see"). In cluster
 * mode each session is searched on the node that runs it (docs/cluster.md, "Search";
 * test/cluster/any-node-reads.test.ts).
 */
export function searchRoutes(router: Router, core: GatewayCore): void {
  router.add("GET", "/v1/search", async (ctx) => {
    const q = queryParam(ctx.url, "q") ?? "";
    if (q.length > SEARCH_QUERY_MAX_CHARS)
      throw new SwitchboardError("BAD_REQUEST", `q is ${q.length} characters; at most ${SEARCH_QUERY_MAX_CHARS}`);
    const limit = intParam(ctx.url, "limit", SEARCH_PAGE_DEFAULT, SEARCH_PAGE_MAX, 1);
    const only = queryParam(ctx.url, "session");
    const visible =
      only !== null
        ? [sessionFor(core.sessions, ctx.identity, only, "see")]
        : core.sessions.list().filter((s) => canSee(ctx.identity, s.record));
    const names = new Map(visible.map((s) => [s.id, s.record.name]));
    let page: {
      hits: Array<Omit<SearchAnswer["hits"][number], "name">>;
      next?: string | undefined;
      partial?: string[];
    };
    if (core.clusterSearch !== undefined) {
      const cursor = queryParam(ctx.url, "cursor");
      page = await core.clusterSearch.search(core, ctx.identity, { q, sessions: visible, limit, cursor });
    } else {
      const cursor = intParam(ctx.url, "cursor", Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 1);
      const local = await core.search.search(q, { sessions: [...names.keys()], limit, before: cursor });
      page = { hits: local.hits, ...(local.next !== undefined ? { next: String(local.next) } : {}) };
    }
    const answer: SearchAnswer = {
      hits: page.hits.map((h) => ({
        sessionId: h.sessionId,
        name: names.get(h.sessionId) ?? null,
        seq: h.seq,
        kind: h.kind,
        snippet: h.snippet,
        marks: h.marks,
      })),
      ...(page.next !== undefined ? { next: page.next } : {}),
      ...(page.partial !== undefined && page.partial.length > 0 ? { partial: page.partial } : {}),
    };
    sendJson(ctx.res, 200, answer);
  });
}
