import { z } from "zod";
import type { NodeRequestHandler, NodeRpc } from "../../cluster/node-rpc.js";
import { SEARCH_HIT_KINDS, SEARCH_PAGE_MAX, SEARCH_QUERY_MAX_CHARS, SwitchboardError } from "../../protocol/index.js";
import type { SearchHit } from "../../protocol/index.js";
import type { SearchIndex } from "../../log/search/search-index.js";
import type { Session } from "../../sessions/session.js";
import type { SessionManager } from "../../sessions/session-manager.js";
import { canSee } from "../identity/auth.js";
import type { Identity } from "../identity/identity.js";
import type { Logger } from "../ops/logger.js";
import { ForwardedIdentity, identityOf } from "./session-forwarding.js";
import { resolveSession } from "./session-resolver.js";

/**
 * How long a search waits for another node's page (docs/cluster.md, "Search"): a node that has
 * not answered by then is named in the answer's `partial`, and the others' hits are answered.
 */
export const SEARCH_NODE_TIMEOUT_MS = 2_000;
/**
 * Session ids one search asks one node about: a caller who may see more of one node's sessions
 * has the first this many searched there, and the node named in `partial`.
 */
export const SEARCH_NODE_SESSIONS_MAX = 20_000;
/** Prefix of a cursor over several nodes (a single node's cursor is a number). */
const CURSOR_PREFIX = "n.";

/** One node's hit: its index's id (the node's paging position) and the time of the event it starts at. */
export interface NodeSearchHit {
  id: number;
  sessionId: string;
  seq: number;
  kind: SearchHit["kind"];
  snippet: string;
  marks: Array<[number, number]>;
  /** The `ts` of the event at `seq`: how hits of several nodes are merged, newest first. */
  at: number;
}

/** One node's page: hits newest first (by its own index), `next` when it has more. */
export interface NodeSearchPage {
  hits: NodeSearchHit[];
  next?: number | undefined;
}

const NodeSearchRequest = z.strictObject({
  kind: z.literal("search"),
  identity: ForwardedIdentity,
  q: z.string().max(SEARCH_QUERY_MAX_CHARS),
  sessions: z.array(z.string().max(256)).max(SEARCH_NODE_SESSIONS_MAX),
  limit: z.number().int().min(1).max(SEARCH_PAGE_MAX),
  before: z.number().int().positive(),
});

const NodeSearchPageSchema = z.strictObject({
  hits: z.array(
    z.strictObject({
      id: z.number().int(),
      sessionId: z.string(),
      seq: z.number().int().positive(),
      kind: z.enum(SEARCH_HIT_KINDS),
      snippet: z.string(),
      marks: z.array(z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()])),
      at: z.number(),
    }),
  ),
  next: z.number().int().optional(),
});

/** What a search needs of the gateway. */
interface SearchCore {
  readonly sessions: SessionManager;
  readonly search: SearchIndex;
}

/**
 * A page of this node's index for `identity`: only the sessions of `sessions` it may see (checked
 * here again for a request another node sent), each hit with the time of its event.
 */
export async function searchHere(
  core: SearchCore,
  identity: Identity,
  o: { q: string; sessions: readonly string[]; limit: number; before: number },
): Promise<NodeSearchPage> {
  const visible = new Map<string, Session>();
  for (const id of o.sessions) {
    const session = core.sessions.get(id);
    if (session !== undefined && canSee(identity, session.record)) visible.set(session.id, session);
  }
  // `await`: the index may answer from a worker (a Promise) or at once.
  const page = await core.search.search(o.q, { sessions: [...visible.keys()], limit: o.limit, before: o.before });
  const hits = page.hits
    .filter((h) => visible.has(h.sessionId))
    .map((h) => ({ ...h, at: timeOf(visible.get(h.sessionId)!, h.seq) }));
  return { hits, ...(page.next !== undefined ? { next: page.next } : {}) };
}

/** The `ts` of event `seq` of the session; 0 when retention dropped it (it sorts last). */
function timeOf(session: Session, seq: number): number {
  try {
    const entry = session.log.read(seq - 1, { limit: 1 }).entries[0];
    if (entry?.seq !== seq) return 0;
    const ts = (JSON.parse(entry.json) as { ts?: unknown }).ts;
    return typeof ts === "number" ? ts : 0;
  } catch (error) {
    // HISTORY_TRIMMED: the hit's event is gone from the log (its text not yet from the index).
    if (error instanceof SwitchboardError) return 0;
    throw error;
  }
}

/** The owner's side of a search another node fans out (`kind: "search"` in the node RPC). */
export function searchRequestHandler(core: SearchCore): NodeRequestHandler {
  return async (request) => {
    const parsed = NodeSearchRequest.safeParse(request);
    if (!parsed.success)
      throw new SwitchboardError("BAD_REQUEST", "the forwarded search is malformed (are all nodes one version?)");
    const { identity, q, sessions, limit, before } = parsed.data;
    return searchHere(core, identityOf(identity), { q, sessions, limit, before });
  };
}

/** Whether a node request is a search (else it is a session call). */
export function isSearchRequest(request: unknown): boolean {
  return typeof request === "object" && request !== null && (request as { kind?: unknown }).kind === "search";
}

/** Where each node stands in a search over several nodes: the id its next page starts before, or done. */
type NodeCursor = Record<string, number | "done">;

const NodeCursorSchema = z.record(z.string().max(256), z.union([z.number().int().positive(), z.literal("done")]));

function cursorOf(raw: string | null): NodeCursor {
  if (raw === null) return {};
  if (!raw.startsWith(CURSOR_PREFIX)) throw badCursor();
  try {
    const parsed = NodeCursorSchema.safeParse(
      JSON.parse(Buffer.from(raw.slice(CURSOR_PREFIX.length), "base64url").toString()),
    );
    if (parsed.success) return parsed.data;
  } catch (error) {
    // Not JSON: refused below, as any other cursor this node did not make.
    if (!(error instanceof SyntaxError)) throw error;
  }
  throw badCursor();
}

function badCursor(): SwitchboardError {
  return new SwitchboardError("BAD_REQUEST", "cursor is not one a search answered with (give `next` as it came)");
}

function cursorText(cursor: NodeCursor): string {
  return CURSOR_PREFIX + Buffer.from(JSON.stringify(cursor)).toString("base64url");
}

/** A page of hits over every node, the nodes that did not answer, and the cursor of the next page. */
export interface ClusterSearchPage {
  hits: NodeSearchHit[];
  next?: string;
  partial: string[];
}

/**
 * Search over every node (docs/cluster.md, "Search"): each session is searched on the node that
 * runs it, whose log holds it whole, so a session copied on several nodes is searched once. The
 * nodes answer in parallel (each within {@link SEARCH_NODE_TIMEOUT_MS}), and their pages are
 * merged newest event first: at each step the newest of the nodes' next hits, so each node's
 * hits are taken in its own order and the cursor keeps each node's position
 * (test/cluster/any-node-reads.test.ts).
 */
export class ClusterSearch {
  constructor(private readonly o: { rpc: NodeRpc; nodeId: string; logger: Logger }) {}

  async search(
    core: SearchCore,
    identity: Identity,
    o: { q: string; sessions: readonly Session[]; limit: number; cursor: string | null },
  ): Promise<ClusterSearchPage> {
    const cursor = cursorOf(o.cursor);
    const groups = new Map<string, string[]>();
    for (const session of o.sessions) {
      const node = resolveSession(core.sessions, session).owner ?? this.o.nodeId;
      const group = groups.get(node) ?? [];
      groups.set(node, group);
      group.push(session.id);
    }
    const asked = [...groups].filter(([node]) => cursor[node] !== "done");
    const answers = await Promise.all(
      asked.map(async ([node, sessions]) => {
        const at = cursor[node];
        const before = typeof at === "number" ? at : Number.MAX_SAFE_INTEGER;
        const request = { q: o.q, sessions: sessions.slice(0, SEARCH_NODE_SESSIONS_MAX), limit: o.limit, before };
        try {
          const page =
            node === this.o.nodeId
              ? await searchHere(core, identity, request)
              : await this.ask(node, identity, request);
          return { node, page };
        } catch (error) {
          this.o.logger.warn({ err: error, node }, "a node did not answer a search; its hits are left out");
          return { node, page: undefined };
        }
      }),
    );
    const visible = new Set(o.sessions.map((s) => s.id));
    const pages = answers
      .filter((a): a is { node: string; page: NodeSearchPage } => a.page !== undefined)
      .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))
      .map((a) => ({ ...a, taken: 0 }));
    const partial = answers
      .filter((a) => a.page === undefined || groups.get(a.node)!.length > SEARCH_NODE_SESSIONS_MAX)
      .map((a) => a.node)
      .sort();
    const hits: NodeSearchHit[] = [];
    const seen = new Set<string>();
    while (hits.length < o.limit) {
      let pick: (typeof pages)[number] | undefined;
      for (const p of pages) {
        const head = p.page.hits[p.taken];
        if (head !== undefined && (pick === undefined || head.at > pick.page.hits[pick.taken]!.at)) pick = p;
      }
      if (pick === undefined) break;
      const hit = pick.page.hits[pick.taken++]!;
      const key = `${hit.sessionId}\n${hit.seq}`;
      // Access once more on this node, and one hit per place however many nodes answered it.
      if (!visible.has(hit.sessionId) || seen.has(key)) continue;
      seen.add(key);
      hits.push(hit);
    }
    const next: NodeCursor = { ...cursor };
    let more = false;
    for (const p of pages) {
      const last = p.page.hits[p.taken - 1];
      if (p.taken >= p.page.hits.length && p.page.next === undefined) next[p.node] = "done";
      else {
        more = true;
        if (last !== undefined) next[p.node] = last.id;
      }
    }
    return { hits, partial, ...(more ? { next: cursorText(next) } : {}) };
  }

  private async ask(
    node: string,
    identity: Identity,
    request: { q: string; sessions: string[]; limit: number; before: number },
  ): Promise<NodeSearchPage> {
    const answer = await this.o.rpc.request(
      node,
      { kind: "search", identity: { ...identity }, ...request },
      { timeoutMs: SEARCH_NODE_TIMEOUT_MS },
    );
    const page = NodeSearchPageSchema.safeParse(answer);
    if (!page.success) throw new SwitchboardError("INTERNAL", `node ${node} answered a search with a malformed page`);
    return page.data;
  }
}
