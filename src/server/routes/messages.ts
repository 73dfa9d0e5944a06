import { InboundMessageSchema } from "../../routing/index.js";
import type { Route } from "../../routing/index.js";
import { AgentGatewaySession } from "../../sessions/agent-gateway-session.js";
import { SESSION_LIMIT_ADVICE } from "../../sessions/session-manager.js";
import { createAgentGatewaySession } from "../agents.js";
import { actorOf, canCreate } from "../auth.js";
import type { GatewayCore } from "../context.js";
import { readJson, sendJson, validate } from "../http.js";
import type { Router } from "../router.js";
import { SwitchboardError } from "../../protocol/index.js";
import type { Actor } from "../../protocol/index.js";

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
    sendJson(ctx.res, 202, deliverMessage(core, raw, actorOf(ctx.identity)));
  });
}

/** Where a delivered message went: the answer of `POST /v1/messages` and of a plugin's `api.messages.inbound`. */
export interface Delivery extends Route {
  sessionId: string;
  runId: string;
}

/**
 * Routes an inbound message (validated here) by the bindings and queues it as a run on its
 * session, which `by` owns when it creates it: the one path of both HTTP and plugins.
 */
export function deliverMessage(core: GatewayCore, raw: unknown, by: Actor): Delivery {
  try {
    const delivery = deliver(core, raw, by);
    core.metrics.messages.inc({ result: "delivered" });
    return delivery;
  } catch (error) {
    core.metrics.messages.inc({ result: error instanceof SwitchboardError ? error.code : "INTERNAL" });
    throw error;
  }
}

function deliver(core: GatewayCore, raw: unknown, by: Actor): Delivery {
  const message = validate(InboundMessageSchema, raw);
  const route = core.routing.resolveOrThrow(message);
  const session = sessionForKey(core, route.agentId, route.sessionKey, by.name);
  const from = message.sender && { channel: message.channel.toLowerCase(), ...message.sender };
  const { runId } = session.prompt(message.text, by, from);
  return {
    agentId: route.agentId,
    sessionKey: route.sessionKey,
    sessionId: session.id,
    runId,
    matchedBy: route.matchedBy,
    bindingIndex: route.bindingIndex,
  };
}

/**
 * The running agent session named by `sessionKey` and owned by `owner`, or a new one. The key
 * is the session's name, so the mapping shows in the session list; a session that ended is
 * replaced by a new one on the next message. Sessions belong to whoever delivered the first
 * message (a token, or `plugin:<id>`), so two callers never share one.
 */
export function sessionForKey(
  core: GatewayCore,
  agentId: string,
  sessionKey: string,
  owner: string,
): AgentGatewaySession {
  for (const s of core.sessions.list()) {
    const r = s.record;
    if (
      s instanceof AgentGatewaySession &&
      s.running &&
      r.name === sessionKey &&
      r.agent === agentId &&
      r.owner === owner
    )
      return s;
  }
  try {
    return createAgentGatewaySession(core, { kind: "agent", agent: agentId, name: sessionKey }, owner);
  } catch (error) {
    // The session limits count routed sessions too, and each new conversation (per-peer) is one:
    // a chat bridge hits them after 64 peers with nothing but "op1 runs at most 64 sessions".
    if (error instanceof SwitchboardError && error.code === "LIMIT_EXCEEDED") {
      throw new SwitchboardError(
        "LIMIT_EXCEEDED",
        `${error.message.endsWith(SESSION_LIMIT_ADVICE) ? error.message.slice(0, -SESSION_LIMIT_ADVICE.length) : error.message}; this message needs a new agent session (${sessionKey.slice(0, 200)}) and routed sessions stay running: ` +
          `end the idle ones (DELETE /v1/sessions/:id), raise the limit, or share sessions (a binding's "session": "per-channel" or "main")`,
      );
    }
    throw error;
  }
}
