/**
 * What the address says to show: the session list, one session's page (`#/s/<id>`), or the
 * plugins (`#/plugins`). A session's address may add `?seq=N&find=TEXT` (a search hit in its log:
 * log-hits.ts): a terminal's page then finds TEXT in its scrollback.
 */
export type Route =
  { name: "home" } | { name: "session"; id: string; find?: string; seq?: number } | { name: "plugins" };

export function parseRoute(hash: string): Route {
  if (/^#\/plugins\/?$/.test(hash)) return { name: "plugins" };
  const m = /^#\/s\/([^/?#]+)(?:\?(.*))?/.exec(hash);
  if (!m?.[1]) return { name: "home" };
  const params = new URLSearchParams(m[2] ?? "");
  const find = params.get("find") ?? "";
  const seq = Number(params.get("seq"));
  const at = { ...(find !== "" ? { find } : {}), ...(Number.isSafeInteger(seq) && seq > 0 ? { seq } : {}) };
  try {
    return { name: "session", id: decodeURIComponent(m[1]), ...at };
  } catch {
    // A malformed escape (`#/s/%E0`, a link cut short): the id as written, which the gateway
    // answers with "No such session", instead of an error that left the previous page up.
    return { name: "session", id: m[1], ...at };
  }
}
