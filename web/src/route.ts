/** What the address says to show: the session list, one session's page (`#/s/<id>`), or the plugins (`#/plugins`). */
export type Route = { name: "home" } | { name: "session"; id: string } | { name: "plugins" };

export function parseRoute(hash: string): Route {
  if (/^#\/plugins\/?$/.test(hash)) return { name: "plugins" };
  const m = /^#\/s\/([^/?#]+)/.exec(hash);
  if (!m?.[1]) return { name: "home" };
  try {
    return { name: "session", id: decodeURIComponent(m[1]) };
  } catch {
    // A malformed escape (`#/s/%E0`, a link cut short): the id as written, which the gateway
    // answers with "No such session", instead of an error that left the previous page up.
    return { name: "session", id: m[1] };
  }
}
