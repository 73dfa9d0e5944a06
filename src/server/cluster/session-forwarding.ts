import { z } from "zod";
import type { NodeRequestHandler, NodeRpc } from "../../cluster/node-rpc.js";
import { CONTROL_VIA, SwitchboardError } from "../../protocol/index.js";
import { isPublicError } from "../../protocol/errors.js";
import type { ControlVia } from "../../protocol/index.js";
import { canSee } from "../identity/auth.js";
import type { Identity } from "../identity/identity.js";
import type { SessionManager } from "../../sessions/session-manager.js";
import { resolveSession } from "./session-resolver.js";
import type { CopyLookup } from "./session-resolver.js";
import { ROLES } from "../config/config.js";
import type { EventLog } from "../../log/event-log.js";
import type { AppendMark, SessionLog } from "../../log/session-log.js";
import type { Logger } from "../ops/logger.js";

/**
 * The session routes a node forwards to the session's owner (docs/cluster.md, "Requests to the
 * owner"); `message` is a `/v1/messages` delivery to the agent session its key names.
 */
export const FORWARDED_ACTIONS = [
  "events",
  "input",
  "signal",
  "resize",
  "control",
  "prompt",
  "abort",
  "permission",
  "mode",
  "config",
  "elicitation",
  "resume",
  "delete",
  "message",
  "seen",
  "policy-get",
  "policy-put",
  "policy-preview",
  // Reads that need the owner's machine: a worktree's git state, and a file transfer's steps
  // (docs/cluster.md, "Files and worktrees on any node").
  "worktree",
  "worktree-diff",
  "file-open",
  "file-chunk",
  "file-end",
  "file-abort",
  // Not routes: a WebSocket connection's `ping` renewing the lease it took through the owner,
  // and its close ending it there (`control` `disconnected`, as for a local connection).
  "renew",
  "disconnect",
] as const;
export type SessionAction = (typeof FORWARDED_ACTIONS)[number];

/**
 * A request to one session as a route handles it, whether its client reached this node or it
 * was forwarded from another: the caller as its node authenticated it, and the body as read there.
 */
export interface SessionCall {
  action: SessionAction;
  sessionId: string;
  identity: Identity;
  /** Control lease key of the caller (HTTP: one per token name). */
  holderKey: string;
  /** The JSON body (undefined for a route without one). */
  body: unknown;
  /** The query string, without `?`. */
  query: string;
  /** The WebSocket connection that sent it, named in the events' `by` as on one node (none over HTTP). */
  connId?: string | undefined;
  /**
   * A `control` call from another node's WebSocket: how that connection holds the lease it takes
   * (`controllerVia`) and its `reclaimKey` (reclaimKeyOf), so the owner keeps it over a reconnect.
   */
  lease?: ForwardedLease | undefined;
}

export interface ForwardedLease {
  via: ControlVia;
  reclaimKey?: string | undefined;
}

/** A route's answer: the HTTP status and the JSON body. */
export interface SessionAnswer {
  status: number;
  body: unknown;
}

/**
 * A forwarded call's answer: the route's, the newest seq it appended per session (the node that
 * forwarded it answers once its copies hold them: read-your-writes, as on one node) and, when
 * the owner's log could not write them yet, the failure's code (the `switchboard-log-pending` header).
 */
export interface ForwardedAnswer extends SessionAnswer {
  published: Record<string, number>;
  pending?: string;
}

/** The caller as the node it reached authenticated it: what another node checks access with (never a token). */
export const ForwardedIdentity = z.object({
  principal: z.string().max(300),
  name: z.string().max(256),
  role: z.enum(ROLES),
  sessions: z.array(z.string()).max(1_000),
  legacy: z
    .object({ owner: z.string().max(256), since: z.number() })
    .strict()
    .optional(),
});

/** A forwarded identity as the routes take it (only the fields access reads). */
export function identityOf(identity: z.infer<typeof ForwardedIdentity>): Identity {
  return {
    principal: identity.principal,
    name: identity.name,
    role: identity.role,
    sessions: identity.sessions,
    legacy: identity.legacy,
  };
}

/** Checked on the owner: what came through Redis came from a node, but is parsed like any input. */
const ForwardedCall = z
  .object({
    action: z.enum(FORWARDED_ACTIONS),
    sessionId: z.string().max(256),
    identity: ForwardedIdentity,
    holderKey: z.string().max(512),
    // Absent for a route without a body (JSON drops an undefined field).
    body: z.unknown().optional(),
    query: z.string().max(8_192),
    connId: z.string().max(64).optional(),
    lease: z
      .object({
        via: z.enum(CONTROL_VIA),
        reclaimKey: z
          .string()
          .regex(/^[0-9a-f]{64}$/)
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

const ForwardedAnswerSchema = z
  .object({
    status: z.number().int().min(200).max(299),
    body: z.unknown(),
    published: z.record(z.string(), z.number().int().nonnegative()),
    pending: z.string().max(64).optional(),
  })
  .strict();

/** Sends session calls to the node that owns the session. */
export interface SessionForwarder {
  forward(nodeId: string, call: SessionCall): Promise<ForwardedAnswer>;
}

export function sessionForwarder(rpc: NodeRpc): SessionForwarder {
  return {
    async forward(nodeId, call) {
      const answer = ForwardedAnswerSchema.safeParse(await rpc.request(nodeId, call));
      if (!answer.success) throw new SwitchboardError("INTERNAL", `node ${nodeId} answered with a malformed answer`);
      const { pending, ...rest } = answer.data;
      return { ...rest, ...(pending !== undefined ? { pending } : {}) };
    },
  };
}

/** What forwarding needs of the gateway (GatewayCore has it; context.ts imports this module's types). */
interface ForwardingCore {
  readonly forwarder: SessionForwarder | undefined;
  readonly sessions: SessionManager;
}

/**
 * The node that runs the session, when another node does and the caller may see it (the owner
 * refuses the rest as this node would, so a session the caller may not see is never forwarded).
 */
export function ownerElsewhere(core: ForwardingCore, sessionId: string, identity: Identity): string | undefined {
  if (core.forwarder === undefined) return undefined;
  const session = core.sessions.get(sessionId);
  if (session === undefined) return undefined;
  const owner = resolveSession(core.sessions, session).owner;
  return owner !== undefined && canSee(identity, session.record) ? owner : undefined;
}

/**
 * Runs `call` on `owner` and resolves once this node's copies hold what it appended:
 * read-your-writes on the node the client reached, as on the owner.
 */
export async function forwardToOwner(core: ForwardingCore, owner: string, call: SessionCall): Promise<ForwardedAnswer> {
  const forwarder = core.forwarder;
  if (forwarder === undefined) throw new SwitchboardError("INTERNAL", "no forwarder outside cluster mode");
  const answer = await forwarder.forward(owner, call).catch((error: unknown) => {
    // The node asked was fenced: nothing was applied there, so the call goes once to the owner it names.
    const next = movedTo(error);
    if (next === undefined || next === owner) throw error;
    return forwarder.forward(next, call);
  });
  await Promise.all(
    Object.entries(answer.published).map(async ([id, seq]) => {
      await resolveSession(core.sessions, id).reach(seq);
    }),
  );
  return answer;
}

/** The new owner a FENCED refusal names (undefined for any other error). */
function movedTo(error: unknown): string | undefined {
  if (!isPublicError(error) || error.code !== "FENCED") return undefined;
  const node = error.details?.["node"];
  return typeof node === "string" && node !== "" ? node : undefined;
}

/**
 * The owner's side: parses a forwarded call and runs it as the route would (errors are the
 * route's), then waits, as an HTTP answer does, until what it appended is published. A call
 * for a session this node no longer runs (it was fenced since the caller looked) is refused
 * FENCED, naming the owner it follows now: nothing of it was applied.
 */
export function forwardedCallHandler(
  run: (call: SessionCall) => Promise<SessionAnswer>,
  o: { events: EventLog; logger: Logger; sessions: CopyLookup },
): NodeRequestHandler {
  return async (request): Promise<ForwardedAnswer> => {
    const call = ForwardedCall.safeParse(request);
    if (!call.success) {
      o.logger.warn(
        { fields: call.error.issues.map((i) => i.path.join(".")) },
        "a malformed request from another node was refused",
      );
      throw new SwitchboardError("BAD_REQUEST", "the forwarded request is malformed (are all nodes one version?)");
    }
    const { identity, ...rest } = call.data;
    const owner = resolveSession(o.sessions, rest.sessionId).owner;
    if (owner !== undefined && rest.action !== "message")
      throw new SwitchboardError(
        "FENCED",
        `node ${owner} runs session ${rest.sessionId} now, not the node this request was sent to; nothing was applied`,
        { node: owner },
      );
    const appended = new Map<SessionLog, AppendMark>();
    let answer: SessionAnswer;
    try {
      answer = await o.events.tracking(appended, () =>
        run({
          ...rest,
          body: rest.body,
          identity: identityOf(identity),
        }),
      );
    } catch (error) {
      if (!isPublicError(error))
        o.logger.error({ err: error, sessionId: call.data.sessionId }, "a forwarded request failed");
      throw error;
    }
    const failure = await o.events.publishedOrFailing(appended);
    const published = Object.fromEntries([...appended].map(([log, { seq }]) => [log.sessionId, seq]));
    return { ...answer, published, ...(failure ? { pending: failure.code ?? "write-failed" } : {}) };
  };
}
