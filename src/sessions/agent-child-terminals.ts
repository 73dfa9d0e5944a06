import type { ChildTerminal, ChildTerminalFactory, ChildTerminalSpec } from "../agents/index.js";
import { LIMITS, replaceHiddenChars } from "../protocol/index.js";
import { isPublicError } from "../protocol/errors.js";
import type { SessionOwner } from "./session.js";
import type { SessionManager } from "./session-manager.js";
import { createTerminalSession } from "./terminal-session.js";
import type { TerminalSession } from "./terminal-session.js";

/**
 * Serves ACP `terminal/create` with real gateway terminal sessions whose `parent` is the agent
 * session: anyone who may see the agent session can watch what its agent runs.
 */
export function childTerminalFactory(sessions: SessionManager, owner: SessionOwner): ChildTerminalFactory {
  return {
    async create(spec: ChildTerminalSpec): Promise<ChildTerminal> {
      const session = await createTerminalSession(
        sessions,
        {
          kind: "terminal",
          command: [spec.command, ...spec.args],
          cwd: spec.cwd,
          env: spec.env,
          name: childName(spec.command),
        },
        owner,
        { parent: spec.parent.sessionId, creator: { name: `agent:${spec.parent.sessionId}`, role: "system" } },
      );
      const exitOf = () => ({ exitCode: session.record.exitCode, signal: session.record.signal });
      return {
        sessionId: session.id,
        output: () => ({
          ...tailOutput(session, spec.outputByteLimit),
          exitStatus: session.running ? null : exitOf(),
        }),
        waitForExit: async () => {
          await session.ended();
          return exitOf();
        },
        kill: () => session.terminate({ name: "agent", role: "system" }),
        release: () => session.terminate({ name: "agent", role: "system" }),
      };
    },
  };
}

const CHILD_SUFFIX = " (agent)";

/**
 * The name of an agent's child terminal: its command, which the agent chose, made a valid
 * session name — characters a name may not have (control characters: an escape sequence would
 * retitle or clear a terminal that lists it; bidirectional and invisible ones) become `?`, and
 * it is cut to fit `LIMITS.NAME_CHARS`.
 */
export function childName(command: string): string {
  const room = LIMITS.NAME_CHARS - CHILD_SUFFIX.length;
  const cut = command.length > room ? `${command.slice(0, room - 1)}…` : command;
  // Replaced after the cut, which can split a surrogate pair or a flag's tags; "?" is never longer.
  return `${replaceHiddenChars(cut)}${CHILD_SUFFIX}`;
}

/** The newest `limit` bytes of a terminal's output, starting on a character boundary. */
function tailOutput(session: TerminalSession, limit: number): { output: string; truncated: boolean } {
  const total = session.log.outputBytes;
  let from = Math.max(0, total - limit);
  let slices;
  try {
    slices = session.log.readOutput(from);
  } catch (error) {
    // Retention dropped the start of that tail: what is kept of it.
    const first = isPublicError(error) && error.code === "HISTORY_TRIMMED" ? error.details?.["first"] : undefined;
    if (typeof first !== "number") throw error;
    from = first;
    slices = session.log.readOutput(from);
  }
  const bytes = Buffer.concat(slices.map((s) => s.bytes));
  let start = 0;
  // Skip UTF-8 continuation bytes so the text does not begin in the middle of a character.
  while (start < bytes.length && start < 4 && (bytes[start]! & 0xc0) === 0x80) start++;
  return { output: bytes.subarray(start).toString("utf8"), truncated: from > 0 };
}
