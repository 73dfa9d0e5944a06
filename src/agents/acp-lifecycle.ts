// The ACP session lifecycle beyond `session/new` and `session/prompt`: which of `session/load`,
// `session/resume` and `session/close` the agent offers (its `initialize` answer), and what it
// takes in a prompt. Read once by the handshake; the adapter asks it when it reopens a
// conversation, closes one, or sends a prompt.
import type * as acp from "@agentclientprotocol/sdk";
import type { PromptCapabilities } from "../protocol/index.js";

/** What the agent offers of the session lifecycle. */
export interface AcpLifecycle {
  /** `session/load`: reopens a conversation, replaying it as updates. */
  load: boolean;
  /** `session/resume`: reopens a conversation without replaying it (preferred: the log has it). */
  resume: boolean;
  /** `session/close`: frees a conversation the gateway ends for good. */
  close: boolean;
}

/** Nothing beyond the baseline: what an agent that has not answered `initialize` is taken to offer. */
export const BASELINE_LIFECYCLE: AcpLifecycle = { load: false, resume: false, close: false };

/**
 * Reads the lifecycle from `agentCapabilities`: ACP v1 offers `session/load` as `loadSession: true`
 * and the others as `sessionCapabilities.resume` / `.close` objects (`{}`; omitted or null: not).
 */
export function readLifecycle(caps: acp.AgentCapabilities | null | undefined): AcpLifecycle {
  const session = caps?.sessionCapabilities;
  return {
    load: caps?.loadSession === true,
    resume: isOffered(session?.resume),
    close: isOffered(session?.close),
  };
}

/** What the agent takes in a prompt beyond text and links (ACP `promptCapabilities`; omitted: nothing). */
export function readPromptCapabilities(caps: acp.AgentCapabilities | null | undefined): PromptCapabilities {
  const prompt = caps?.promptCapabilities;
  return {
    image: prompt?.image === true,
    audio: prompt?.audio === true,
    embeddedContext: prompt?.embeddedContext === true,
  };
}

const isOffered = (value: unknown): boolean => typeof value === "object" && value !== null;

/** Whether the agent can reopen a conversation at all (a lost session can then be resumed). */
export const canReopen = (lifecycle: AcpLifecycle): boolean => lifecycle.resume || lifecycle.load;
