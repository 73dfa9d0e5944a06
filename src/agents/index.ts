export * from "./adapter.js";
export * from "./adapter-factory.js";
export * from "./agent-session.js";
export * from "./child-terminal.js";
export {
  ACP_CANCEL_ANSWER_MS,
  ACP_CLOSE_TIMEOUT_MS,
  ACP_MAX_MESSAGE_BYTES,
  ACP_START_TIMEOUT_MS,
} from "./acp-adapter.js";
export { MAX_NOISE_LINES_KEPT, NOISE_LINE_CHARS } from "./acp-stdout-noise.js";
export { MAX_CHILD_TERMINALS, MAX_TERMINAL_OUTPUT_BYTES } from "./acp-terminals.js";
export { KILL_GRACE_MS, STDERR_TAIL_BYTES } from "./agent-process.js";
export type { AgentChild, AgentProcesses, AnswerHook, ProcessEnd } from "./agent-process.js";
export { PROMPT_PLACEHOLDER } from "./command-adapter.js";
export { MAX_FS_READ_BYTES } from "./confined-fs.js";
export { ECHO_CHUNK_CHARS, ECHO_CHUNK_DELAY_MS, ECHO_COMMANDS, ECHO_STEP_DELAY_MS } from "./echo-adapter.js";
export type { EchoCommand } from "./echo-adapter.js";
export type { AgentLogger } from "./logger.js";
export { MemoryLog } from "./memory-log.js";
export { DEFAULT_PERMISSION_TIMEOUT_MS, MAX_PENDING_PERMISSIONS } from "./permissions.js";
export { DEFAULT_RUN_STALL_NOTICE_MS, MAX_TRACKED_TOOL_CALLS } from "./run.js";
export { DEFAULT_DELTA_THROTTLE_MS } from "../core/delta-pacer.js";
