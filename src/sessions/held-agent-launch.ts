import { randomBytes } from "node:crypto";
import type { AgentProcesses } from "../agents/index.js";
import type { HeldTurn } from "../agents/held-turn.js";
import { childEnv } from "../core/child-env.js";
import { SwitchboardError } from "../protocol/index.js";
import { HeldAgentProcess } from "./held-agent-process.js";
import type { HolderRef, Holders, Launched } from "./holders.js";
import { processStartTime } from "./processes.js";
import type { SessionRecord } from "./session.js";
import { OUTPUT_DRAIN_TIMEOUT_MS } from "./terminal-process.js";

/*
 * An agent session's process under a holder (docs/agents.md, "Agents across gateway restarts"):
 * started so that it outlives the gateway, or taken over from the holder an earlier gateway left;
 * the session's record names the holder and the process.
 */

/** The agent process last started, as AgentGatewaySession.markLost needs it after a crash. */
export interface KeptProcess {
  agentPid?: number;
  /** Its start time (`processStartTime`): with the pid, it names that process for good. */
  agentPidStart?: number | undefined;
  /** The socket name of the holder the agent runs under (`record.holder` names the holder's process). */
  agentHolderName?: string;
}

interface HeldAgentRecord {
  holders: Holders;
  /** The session's record: it names the holder while the process runs. */
  record: SessionRecord;
  persist: () => void;
}

/** Starts the agent's process under a new holder; throws SPAWN_FAILED when it cannot. */
export function launchHeldAgent(
  options: HeldAgentRecord & { sessionId: string; launch: Parameters<AgentProcesses["start"]>[0] },
): HeldAgentProcess {
  const { holders, launch } = options;
  // A name of its own per process: the holder of an agent that ended may not be gone yet.
  const name = `${options.sessionId}.agent-${randomBytes(4).toString("hex")}`;
  const command = [launch.command, ...launch.args];
  let started: Launched;
  try {
    started = holders.launchSync(name, {
      command,
      cwd: launch.cwd,
      env: childEnv(launch.env),
      pty: false,
      cols: 80,
      rows: 24,
      drainTimeoutMs: OUTPUT_DRAIN_TIMEOUT_MS,
    });
  } catch (error) {
    throw new SwitchboardError("SPAWN_FAILED", `cannot start ${launch.command}: ${(error as Error).message}`);
  }
  const record = options.record as SessionRecord & KeptProcess;
  record.holder = { pid: started.holderPid, start: started.holderStart, outputBase: 0 };
  record.agentHolderName = name;
  record.agentPid = started.childPid;
  record.agentPidStart = processStartTime(started.childPid) ?? undefined;
  options.persist();
  return heldAgentProcess({
    ...options,
    name,
    holder: { pid: started.holderPid, start: started.holderStart },
    childPid: started.childPid,
    adopted: false,
    kept: undefined,
  });
}

/**
 * The agent's process under holder `name`: a new one (acknowledged from 0), or one an earlier
 * gateway left (`adopted`), which goes on from its kept turn.
 */
export function heldAgentProcess(
  options: HeldAgentRecord & {
    name: string;
    holder: Pick<HolderRef, "pid" | "start">;
    childPid: number;
    adopted: boolean;
    kept: HeldTurn | undefined;
  },
): HeldAgentProcess {
  const { holders, name, holder, adopted, kept } = options;
  return new HeldAgentProcess({
    // A new process: the adapter acknowledges (from 0); an adopted one goes on from its kept turn.
    ...(!adopted ? { skipTo: 0 } : {}),
    ...(kept !== undefined
      ? { skipTo: kept.cursor.offset, committedMark: kept.mark, answered: new Set(kept.answered.map(([id]) => id)) }
      : {}),
    socketPath: holders.socketPath(name),
    holderPid: holder.pid,
    holderStart: holder.start,
    childPid: options.childPid,
    onRefused: (refusal) => holders.refused(options.record, refusal),
    command: options.record.command?.[0] ?? "agent",
    ...(adopted ? { onGreeted: () => holders.adopted(options.record) } : {}),
    onEnded: () => {
      const record = options.record as SessionRecord & KeptProcess;
      if (record.agentHolderName !== name) return;
      record.holder = null;
      delete record.agentHolderName;
      options.persist();
    },
  });
}
