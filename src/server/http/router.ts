import type { RequestContext } from "../context.js";

export type Handler = (ctx: RequestContext) => Promise<void> | void;

interface Route {
  method: string;
  path: string;
  segments: string[];
  handler: Handler;
}

export type Match =
  | { kind: "found"; handler: Handler; params: Record<string, string>; route: string }
  | { kind: "not-found" }
  | { kind: "method-not-allowed"; allow: string[] };

/** Path routing by segments: `/v1/sessions/:id/input`, and a trailing `*` for the rest of a path. No regexes. */
export class Router {
  private readonly routes: Route[] = [];

  add(method: string, path: string, handler: Handler): this {
    this.routes.push({ method, path, segments: path.split("/").filter(Boolean), handler });
    return this;
  }

  /** Every registered route, for the docs drift test. */
  list(): Array<{ method: string; path: string }> {
    return this.routes.map(({ method, path }) => ({ method, path }));
  }

  match(method: string, pathname: string): Match {
    const parts = pathname.split("/").filter(Boolean);
    const allow: string[] = [];
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts);
      if (!params) continue;
      if (route.method === method || (method === "HEAD" && route.method === "GET"))
        return { kind: "found", handler: route.handler, params, route: `${route.method} ${route.path}` };
      allow.push(route.method);
    }
    // HEAD is answered wherever GET is (RFC 9110: a resource that has GET has HEAD), so Allow says so.
    if (allow.includes("GET") && !allow.includes("HEAD")) allow.splice(allow.indexOf("GET") + 1, 0, "HEAD");
    return allow.length > 0 ? { kind: "method-not-allowed", allow } : { kind: "not-found" };
  }
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  // A trailing `*` matches the rest of the path (possibly nothing), given as params["*"].
  const rest = pattern[pattern.length - 1] === "*";
  if (rest ? parts.length < pattern.length - 1 : pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p === "*") {
      params["*"] = "/" + parts.slice(i).join("/");
      return params;
    }
    const v = parts[i]!;
    if (p.startsWith(":")) {
      let decoded: string;
      try {
        decoded = decodeURIComponent(v);
      } catch {
        // A malformed escape cannot name anything: treat the route as not matching.
        return undefined;
      }
      params[p.slice(1)] = decoded;
    } else if (p !== v) return undefined;
  }
  return params;
}
