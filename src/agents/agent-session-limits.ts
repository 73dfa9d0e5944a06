// The bounds of one agent session: how much may queue behind the active run, how often an agent
// that keeps failing is restarted; and what a prompt or a run is told past them. Apart from the
// run lane in agent-session.ts.
import { PROMPT_CONTENT_MAX_BYTES, SwitchboardError, blockBytes } from "../protocol/index.js";
import type { ErrorCode, PromptInput } from "../protocol/index.js";
import type { Run } from "./run.js";

/**
 * After an abort the next run waits for the agent to finish the cancelled turn (so late
 * updates of the old turn cannot leak into the new run) — at most this long; then the agent
 * process is killed and replaced.
 */
export const ABORT_SETTLE_TIMEOUT_MS = 10_000;

/** Most prompts that may wait behind the active run; more are refused with LIMIT_EXCEEDED. */
export const MAX_QUEUED_RUNS = 100;
/**
 * Most text (UTF-16 code units) the prompts waiting behind the active run may hold together; a
 * prompt that would go past it is refused with LIMIT_EXCEEDED. Queued prompts stay in memory
 * until they run: {@link MAX_QUEUED_RUNS} prompts of up to 256 KiB were 25 MiB per session, and
 * 1.6 GiB for one token's 64 sessions behind a slow agent.
 */
export const MAX_QUEUED_PROMPT_CHARS = 4 * 1024 * 1024;

/**
 * Most bytes of content (images, audio, files: prompt-content.ts) the prompts waiting behind the
 * active run may hold together: two prompts of the most content one may carry.
 */
export const MAX_QUEUED_CONTENT_BYTES = 2 * PROMPT_CONTENT_MAX_BYTES;

const contentBytes = (run: { content?: PromptInput["content"] }): number =>
  run.content?.reduce((n, b) => n + (b.type === "text" ? 0 : blockBytes(b)), 0) ?? 0;

/**
 * Throws LIMIT_EXCEEDED when `input` may not queue behind `queue` ({@link MAX_QUEUED_RUNS},
 * {@link MAX_QUEUED_PROMPT_CHARS}, {@link MAX_QUEUED_CONTENT_BYTES}).
 */
export function checkQueueRoom(queue: readonly Run[], input: PromptInput): void {
  const text = input.text;
  if (queue.length >= MAX_QUEUED_RUNS) {
    throw new SwitchboardError(
      "LIMIT_EXCEEDED",
      `${MAX_QUEUED_RUNS} prompts are already queued (MAX_QUEUED_RUNS): wait for them to run, or abort them`,
    );
  }
  const queuedChars = queue.reduce((n, r) => n + r.prompt.length, 0);
  if (queuedChars + text.length > MAX_QUEUED_PROMPT_CHARS) {
    throw new SwitchboardError(
      "LIMIT_EXCEEDED",
      `the prompts already queued hold ${queuedChars} characters; with this one they would pass ${MAX_QUEUED_PROMPT_CHARS} (MAX_QUEUED_PROMPT_CHARS): wait for them to run, or abort them`,
    );
  }
  const queuedBytes = queue.reduce((n, r) => n + contentBytes(r), 0);
  if (queuedBytes + contentBytes(input) > MAX_QUEUED_CONTENT_BYTES) {
    throw new SwitchboardError(
      "LIMIT_EXCEEDED",
      `the prompts already queued hold ${queuedBytes} bytes of images and files; with this one they would pass ${MAX_QUEUED_CONTENT_BYTES} (MAX_QUEUED_CONTENT_BYTES): wait for them to run, or abort them`,
    );
  }
}

/** Most agent restarts after crashes within {@link AGENT_RESTART_WINDOW_MS}; past it runs fail with AGENT_EXITED. */
export const MAX_AGENT_RESTARTS = 3;
export const AGENT_RESTART_WINDOW_MS = 60_000;

/** How the last run on an agent that then turned out dead ended: the restart refusal quotes it. */
export interface AgentFailure {
  code: ErrorCode;
  message: string;
  start: boolean;
}

/**
 * Counts a restart at `now` in `restartTimes` (those older than {@link AGENT_RESTART_WINDOW_MS}
 * dropped), or, past {@link MAX_AGENT_RESTARTS}, says why not without counting it.
 */
export function takeRestart(
  restartTimes: number[],
  now: number,
  last: AgentFailure | undefined,
): { code: ErrorCode; message: string } | undefined {
  while (restartTimes.length > 0 && restartTimes[0]! <= now - AGENT_RESTART_WINDOW_MS) {
    restartTimes.shift();
  }
  if (restartTimes.length >= MAX_AGENT_RESTARTS) return restartRefusal(restartTimes, now, last);
  restartTimes.push(now);
  return undefined;
}

/**
 * Why a run fails without starting the agent: it failed too often lately. The message quotes
 * the last failure (an agent that cannot start at all said only "exited 4 times", hiding the
 * ENOENT that explains it) and says when a prompt will try again. An agent that never started
 * keeps its SPAWN_FAILED or RESOURCE_EXHAUSTED code: it did not exit.
 */
function restartRefusal(
  restartTimes: readonly number[],
  now: number,
  last: AgentFailure | undefined,
): { code: ErrorCode; message: string } {
  const retryInS = Math.max(1, Math.ceil((restartTimes[0]! + AGENT_RESTART_WINDOW_MS - now) / 1000));
  const neverStarted = last?.code === "SPAWN_FAILED" || last?.code === "RESOURCE_EXHAUSTED";
  // It started but failed its handshake (AGENT_FAILED, AGENT_AUTH_REQUIRED): it did not exit,
  // and its code says more than AGENT_EXITED would.
  const handshake = !neverStarted && last?.start === true;
  const what = neverStarted ? "failed to start" : handshake ? "failed its handshake" : "exited";
  return {
    code: neverStarted || handshake ? last.code : "AGENT_EXITED",
    message:
      `the agent ${what} ${MAX_AGENT_RESTARTS + 1} times within ` +
      `${AGENT_RESTART_WINDOW_MS / 1000} s${last !== undefined ? ` (last: ${last.code}: ${last.message})` : ""}; ` +
      `not restarting it yet: a prompt in ${retryInS} s starts it again`,
  };
}
