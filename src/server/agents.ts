import { statSync } from "node:fs";
import type { AgentSpec, ChildTerminalFactory } from "../agents/index.js";
import { ResumeBody, SwitchboardError } from "../protocol/index.js";
import type { CreateAgentSession, SessionWorktree } from "../protocol/index.js";
import { AgentGatewaySession } from "../sessions/agent-gateway-session.js";
import { childTerminalFactory } from "../sessions/agent-child-terminals.js";
import type { AgentStartOptions } from "../sessions/agent-gateway-session.js";
import { ownerKeyOf, ownerOf } from "../sessions/session.js";
import type { SessionOwner, SessionRecord } from "../sessions/session.js";
import { sessionFor } from "./identity/access.js";
import { actorOf } from "./identity/auth.js";
import type { GatewayCore } from "./context.js";
import { validate } from "./http/http.js";
import { pluginAgentAdapter } from "./plugin-agent-adapter.js";
import type { SessionAnswer, SessionCall } from "./cluster/session-forwarding.js";

/** Plugin agents need no process of their own: the adapter is replaced by the plugin bridge. */
const PLUGIN_AGENT_SPEC: AgentSpec = { adapter: "echo" };

/** Agents every gateway has without configuration. */
export const BUILT_IN_AGENTS: Readonly<Record<string, AgentSpec>> = { echo: { adapter: "echo" } };

/** The spec of a configured (or built-in) agent id; AGENT_NOT_FOUND names the ones that exist. */
export function agentSpec(core: GatewayCore, id: string): AgentSpec {
  // Own properties only: "toString" or "__proto__" must not find Object.prototype's members.
  const spec = Object.hasOwn(core.config.agents, id)
    ? core.config.agents[id]
    : Object.hasOwn(BUILT_IN_AGENTS, id)
      ? BUILT_IN_AGENTS[id]
      : core.pluginAgents.has(id)
        ? PLUGIN_AGENT_SPEC
        : undefined;
  if (!spec) {
    const known = [
      ...new Set([...Object.keys(BUILT_IN_AGENTS), ...Object.keys(core.config.agents), ...core.pluginAgents.keys()]),
    ].join(", ");
    throw new SwitchboardError("AGENT_NOT_FOUND", `no agent ${id.slice(0, 64)}; configured agents: ${known}`);
  }
  return spec;
}

/** Creates and starts an agent session for `owner`. */
export function createAgentGatewaySession(
  core: GatewayCore,
  body: CreateAgentSession,
  owner: SessionOwner,
  worktree?: SessionWorktree,
): AgentGatewaySession {
  const agentId = typeof body.agent === "string" ? body.agent : `inline:${body.agent.adapter}`;
  const spec = typeof body.agent === "string" ? agentSpec(core, body.agent) : body.agent;
  const cwd = worktree?.path ?? body.cwd ?? spec.cwd ?? process.cwd();
  let isDir: boolean;
  try {
    isDir = statSync(cwd).isDirectory();
  } catch {
    // Missing or unreachable: reported below like a file in the way.
    isDir = false;
  }
  if (!isDir) throw new SwitchboardError("SPAWN_FAILED", `cwd ${cwd} does not exist or is not a directory`);
  return core.sessions.create(
    { kind: "agent", owner, name: body.name, agent: agentId, cwd, command: spec.command ?? null, worktree },
    (record, log, ctx) => {
      const session = new AgentGatewaySession(record, log, ctx);
      session.start(startOptions(core, record, spec, cwd));
      return session;
    },
  );
}

/** How the agent of session `record` runs, with `spec` (a plugin's agent: through its plugin). */
function startOptions(core: GatewayCore, record: SessionRecord, spec: AgentSpec, cwd: string): AgentStartOptions {
  const plugins = core.plugins;
  const viaPlugin = record.agent !== null && spec === PLUGIN_AGENT_SPEC && plugins !== undefined;
  return {
    spec,
    adapter: viaPlugin ? pluginAgentAdapter(plugins, record.agent!) : undefined,
    cwd,
    deltaThrottleMs: core.config.deltaThrottleMs,
    stallNoticeMs: core.config.runStallNoticeMs,
    maxRunTextBytes: core.limits.runTextBytes,
    onUnknownUpdate: (variant) => core.metrics.countUnknownAcpUpdate(variant),
    children: countingExhaustion(childTerminalFactory(core.sessions, ownerOf(record)), core),
    logger: core.logger.child({ session: record.id }),
  };
}

/**
 * `POST /v1/sessions/:id/resume`: runs a lost agent session again (docs/agents.md, "Resuming a
 * lost session"), checked as steering is (who may steer it) and counted as a new running session.
 * A configured agent runs as the config says now; an inline one with the command and cwd its
 * session kept (not its `env` or `authMethod`, which the record does not keep: they may hold keys).
 */
export async function resumeAgentSession(core: GatewayCore, call: SessionCall): Promise<SessionAnswer> {
  validate(ResumeBody, call.body ?? {});
  const session = sessionFor(core.sessions, call.identity, call.sessionId, "steer");
  if (!(session instanceof AgentGatewaySession)) {
    throw new SwitchboardError(
      "WRONG_SESSION_KIND",
      `only agent sessions can be resumed; this is a ${session.record.kind} session`,
    );
  }
  const record = session.record;
  if (record.state === "lost") core.sessions.assertRoomFor(ownerKeyOf(record), record.owner);
  await session.resume(restartOptions(core, record), actorOf(call.identity, call.connId));
  return { status: 200, body: session.info() };
}

/** How the agent of a session that ran before runs again: as the config says now, or inline as its record kept it. */
function restartOptions(core: GatewayCore, record: SessionRecord): AgentStartOptions {
  const agent = record.agent ?? "";
  const inline = /^inline:(acp|command|echo)$/.exec(agent)?.[1] as AgentSpec["adapter"] | undefined;
  const spec: AgentSpec =
    inline !== undefined
      ? { adapter: inline, ...(record.command ? { command: record.command } : {}) }
      : agentSpec(core, agent);
  const cwd = record.cwd ?? spec.cwd ?? process.cwd();
  return startOptions(core, record, spec, cwd);
}

/**
 * At start: the agent sessions whose agent process an earlier gateway left under its holder take
 * it over (docs/agents.md, "Agents across gateway restarts"); one whose agent is no longer
 * configured is lost, its process ended.
 */
export function adoptHeldAgents(core: GatewayCore): void {
  for (const session of core.sessions.list()) {
    if (!(session instanceof AgentGatewaySession) || !session.adopting) continue;
    let options: AgentStartOptions;
    try {
      options = restartOptions(core, session.record);
    } catch (error) {
      session.abandonAdoption(
        `its agent process ran on under its holder, but the gateway cannot adopt it: ${(error as Error).message}; the process was ended`,
      );
      continue;
    }
    session.adopt(options);
  }
}

/** `factory`, with the child terminals that cannot start for lack of file descriptors counted like sessions. */
function countingExhaustion(factory: ChildTerminalFactory, core: GatewayCore): ChildTerminalFactory {
  return {
    async create(spec) {
      try {
        return await factory.create(spec);
      } catch (error) {
        core.countFdExhaustion(error, "session");
        throw error;
      }
    },
  };
}

/** Every agent a session can be created with: built in, configured, or registered by a plugin. */
export function listAgents(
  core: GatewayCore,
): Array<{ id: string; adapter: string; source: "built-in" | "config" | "plugin"; plugin?: string }> {
  const out: Array<{ id: string; adapter: string; source: "built-in" | "config" | "plugin"; plugin?: string }> = [];
  // A configured agent with a built-in's id replaces it (agentSpec looks at the config first): listed once, as configured.
  for (const [id, spec] of Object.entries(BUILT_IN_AGENTS))
    if (!Object.hasOwn(core.config.agents, id)) out.push({ id, adapter: spec.adapter, source: "built-in" });
  for (const [id, spec] of Object.entries(core.config.agents))
    out.push({ id, adapter: spec.adapter, source: "config" });
  // A plugin's agent that the config defined after the plugin registered it is shadowed: the configured one is used.
  for (const [id, plugin] of core.pluginAgents)
    if (!out.some((a) => a.id === id)) out.push({ id, adapter: "plugin", source: "plugin", plugin });
  return out;
}
