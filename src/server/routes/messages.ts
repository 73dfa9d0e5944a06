import { randomUUID } from "node:crypto";
import { z } from "zod";
import type { MessageKey, MessageSessionIndex } from "../../cluster/message-index.js";
import { InboundMessageSchema } from "../../routing/index.js";
import type { Route } from "../../routing/index.js";
import { AgentGatewaySession } from "../../sessions/agent-gateway-session.js";
import { REMOTE_CATCH_UP_MS } from "../../sessions/remote-session.js";
import { ownerKey, ownerKeyOf } from "../../sessions/session.js";
import type { Session, SessionOwner } from "../../sessions/session.js";
import { SESSION_LIMIT_ADVICE } from "../../sessions/session-manager.js";
import { createAgentGatewaySession } from "../agents.js";
import { actorOf, canCreate, ownerOfActor } from "../identity/auth.js";
import type { GatewayCore } from "../context.js";
import { resolveSession } from "../cluster/session-resolver.js";
import { readJson, sendJson, validate } from "../http/http.js";
import type { Router } from "../http/router.js";
import { SwitchboardError } from "../../protocol/index.js";
import { isPublicError } from "../../protocol/errors.js";
import type { Actor } from "../../protocol/index.js";
import { forwardToOwner } from "../cluster/session-forwarding.js";
import type { Identity } from "../identity/identity.js";

/**
 * `POST /v1/route` answers where a message would go and why (a dry run); `POST /v1/messages`
 * delivers it: the binding's agent session for the message's session key (created on first
 * use, so the same peer reaches the same session) gets a queued run.
 */
export function messageRoutes(router: Router, core: GatewayCore): void {
  router.add("POST", "/v1/route", async (ctx) => {
    const message = validate(InboundMessageSchema, await readJson(ctx.req, core.limits.bodyBytes));
    sendJson(ctx.res, 200, core.routing.resolveOrThrow(message));
  });

  router.add("POST", "/v1/messages", async (ctx) => {
    if (!canCreate(ctx.identity))
      throw new SwitchboardError("FORBIDDEN", `${ctx.identity.name} is a viewer and cannot deliver messages`);
    const raw = await readJson(ctx.req, core.limits.bodyBytes);
    sendJson(ctx.res, 202, await deliverMessage(core, raw, actorOf(ctx.identity)));
  });
}

/** Where a delivered message went: the answer of `POST /v1/messages` and of a plugin's `api.messages.inbound`. */
export interface Delivery extends Route {
  sessionId: string;
  runId: string;
}

/**
 * How long a message waits for another node that claimed its key (to create the key's session)
 * to record the session, before it is refused with NODE_UNAVAILABLE.
 */
export const MESSAGE_CLAIM_WAIT_MS = 5_000;
/** How often a waiting message looks again whether the claim was recorded. */
const MESSAGE_CLAIM_POLL_MS = 25;

/**
 * Routes an inbound message (validated here) by the bindings and queues it as a run on its
 * session, which `by` owns when it creates it: the one path of both HTTP and plugins. In
 * cluster mode the session may run on another node, which then queues it (`forwarded`: this
 * node is that node, and forwards nothing further).
 */
export async function deliverMessage(
  core: GatewayCore,
  raw: unknown,
  by: Actor,
  o: { forwarded?: boolean } = {},
): Promise<Delivery> {
  try {
    const delivery = await deliver(core, raw, by, o.forwarded ?? false);
    core.metrics.messages.inc({ result: "delivered" });
    return delivery;
  } catch (error) {
    core.metrics.messages.inc({ result: isPublicError(error) ? error.code : "INTERNAL" });
    throw error;
  }
}

async function deliver(core: GatewayCore, raw: unknown, by: Actor, forwarded: boolean): Promise<Delivery> {
  const message = validate(InboundMessageSchema, raw);
  const route = core.routing.resolveOrThrow(message);
  const from = message.sender && { channel: message.channel.toLowerCase(), ...message.sender };
  const queue = (session: AgentGatewaySession): Delivery => {
    const { runId } = session.prompt({ text: message.text }, by, from);
    return {
      agentId: route.agentId,
      sessionKey: route.sessionKey,
      sessionId: session.id,
      runId,
      matchedBy: route.matchedBy,
      bindingIndex: route.bindingIndex,
    };
  };
  const index = core.messageIndex;
  const owner = ownerOfActor(by);
  if (index === undefined) return queue(sessionForKey(core, route.agentId, route.sessionKey, owner));
  const key: MessageKey = { agentId: route.agentId, sessionKey: route.sessionKey, owner: ownerKey(owner) };
  const deadline = core.clock.now() + MESSAGE_CLAIM_WAIT_MS;
  for (;;) {
    const named = await index.get(key);
    const session = named === undefined ? undefined : await known(core, named);
    if (session?.running && session instanceof AgentGatewaySession) return queue(session);
    const runner = resolveSession(core.sessions, session).owner;
    if (session?.running && runner !== undefined && !forwarded)
      return forwardMessage(core, runner, session.id, raw, by);
    // None yet, or it ended (or this node does not know it): one node claims the key and creates
    // its session; the others wait for it to be recorded and deliver there.
    const holder = randomUUID();
    if (await index.claim(key, named, holder)) {
      let created: AgentGatewaySession;
      try {
        created = createKeySession(core, route.agentId, route.sessionKey, owner);
      } catch (error) {
        await index.release(key, holder);
        throw error;
      }
      await index.record(key, holder, created.id);
      return queue(created);
    }
    if (core.clock.now() >= deadline)
      throw new SwitchboardError(
        "NODE_UNAVAILABLE",
        `another node claimed this conversation's session (${route.sessionKey.slice(0, 200)}) to create it and did not record it within ${MESSAGE_CLAIM_WAIT_MS} ms; retry later`,
      );
    await new Promise((resolve) => core.clock.setTimeout(() => resolve(undefined), MESSAGE_CLAIM_POLL_MS));
  }
}

/**
 * The session `id` as this node knows it: a node's copy of a session another node just
 * created may lag its entry in the index, so an unknown one is waited for (at most
 * REMOTE_CATCH_UP_MS, as a read is); undefined when it is still unknown (deleted).
 */
async function known(core: GatewayCore, id: string): Promise<Session | undefined> {
  const deadline = core.clock.now() + REMOTE_CATCH_UP_MS;
  for (;;) {
    const session = core.sessions.get(id);
    if (session !== undefined || core.clock.now() >= deadline) return session;
    await new Promise((resolve) => core.clock.setTimeout(() => resolve(undefined), MESSAGE_CLAIM_POLL_MS));
  }
}

/**
 * Cluster mode: when an agent session this node runs ends, its key's entry in the index goes
 * (if it still names it). Returns the unsubscribe. A session whose node died leaves its entry
 * to the key's next message, which replaces it (docs/cluster.md, "Messages on any node").
 */
export function forgetEndedKeySessions(core: GatewayCore, index: MessageSessionIndex): () => void {
  const forgotten = new WeakSet<Session>();
  return core.sessions.onChange((session) => {
    if (session.running || !(session instanceof AgentGatewaySession) || forgotten.has(session)) return;
    forgotten.add(session);
    const r = session.record;
    if (r.name === null || r.agent === null) return;
    index.forget({ agentId: r.agent, sessionKey: r.name, owner: ownerKeyOf(r) }, session.id).catch((error: unknown) => {
      core.logger.warn(
        { err: error, session: session.id },
        "could not remove an ended session's message key from Redis",
      );
    });
  });
}

/** The body of a forwarded `message` call: the message as the client sent it and who delivers it. */
export const ForwardedMessage = z
  .object({
    message: z.unknown(),
    by: z
      .object({
        name: z.string().max(256),
        role: z.enum(["admin", "operator", "plugin"]),
        id: z.string().max(300).optional(),
      })
      .strict(),
  })
  .strict();

/**
 * Has the node that runs the key's session queue the message there (the `message` action of
 * "Requests to the owner"); answers as that node does.
 */
async function forwardMessage(
  core: GatewayCore,
  owner: string,
  sessionId: string,
  raw: unknown,
  by: Actor,
): Promise<Delivery> {
  // The owner delivers as `by` (a token, a plugin); the identity only carries the call.
  const identity: Identity = {
    principal: by.id ?? by.name,
    name: by.name,
    role: by.role === "admin" ? "admin" : "operator",
    sessions: [],
  };
  const answer = await forwardToOwner(core, owner, {
    action: "message",
    sessionId,
    identity,
    holderKey: by.name,
    body: { message: raw, by },
    query: "",
  });
  return answer.body as Delivery;
}

/**
 * The running agent session named by `sessionKey` and owned by `owner`, or a new one. The key
 * is the session's name, so the mapping shows in the session list; a session that ended is
 * replaced by a new one on the next message. Sessions belong to whoever delivered the first
 * message (a token, a device, a proxy user, a plugin: its principal), so two callers never share one.
 */
export function sessionForKey(
  core: GatewayCore,
  agentId: string,
  sessionKey: string,
  owner: SessionOwner,
): AgentGatewaySession {
  for (const s of core.sessions.list()) {
    const r = s.record;
    if (
      s instanceof AgentGatewaySession &&
      s.running &&
      r.name === sessionKey &&
      r.agent === agentId &&
      ownerKeyOf(r) === ownerKey(owner)
    )
      return s;
  }
  return createKeySession(core, agentId, sessionKey, owner);
}

/** A new agent session for a message's key; a session limit it hits says what to do about routed sessions. */
function createKeySession(
  core: GatewayCore,
  agentId: string,
  sessionKey: string,
  owner: SessionOwner,
): AgentGatewaySession {
  try {
    return createAgentGatewaySession(core, { kind: "agent", agent: agentId, name: sessionKey }, owner);
  } catch (error) {
    // The session limits count routed sessions too, and each new conversation (per-peer) is one:
    // a chat bridge hits them after 64 peers with nothing but "op1 runs at most 64 sessions".
    if (isPublicError(error) && error.code === "LIMIT_EXCEEDED") {
      throw new SwitchboardError(
        "LIMIT_EXCEEDED",
        `${error.message.endsWith(SESSION_LIMIT_ADVICE) ? error.message.slice(0, -SESSION_LIMIT_ADVICE.length) : error.message}; this message needs a new agent session (${sessionKey.slice(0, 200)}) and routed sessions stay running: ` +
          `end the idle ones (DELETE /v1/sessions/:id), raise the limit, or share sessions (a binding's "session": "per-channel" or "main")`,
      );
    }
    throw error;
  }
}
