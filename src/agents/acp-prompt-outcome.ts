import type { AnyResponse } from "@agentclientprotocol/sdk";
import type { RunOutcome } from "./adapter.js";
import { ACP_AUTH_REQUIRED, describeRpcError } from "./acp-failures.js";
import type { RpcError } from "./acp-failures.js";
import { statusNotice } from "./acp-updates.js";
import { isRecord } from "./acp-wire.js";

/**
 * How a run ends from the agent's answer to its `session/prompt`: its `stopReason`, or why it
 * failed (`authRequired` words an ACP auth-required error with the agent's login methods).
 */
export function promptOutcome(message: AnyResponse, authRequired: (error: RpcError) => string): RunOutcome {
  if ("error" in message) {
    const error = message.error as RpcError;
    return error.code === ACP_AUTH_REQUIRED
      ? { kind: "error", code: "AGENT_AUTH_REQUIRED", message: authRequired(error) }
      : { kind: "error", code: "AGENT_FAILED", message: `the agent answered ${describeRpcError(error)}` };
  }
  const result = message.result;
  const stopReason = isRecord(result) && typeof result.stopReason === "string" ? result.stopReason : undefined;
  if (stopReason === undefined) {
    return { kind: "error", code: "AGENT_FAILED", message: "session/prompt answered without a stopReason" };
  }
  // claude-agent-acp, told the client shows its failures, ends a turn its model API failed
  // with `end_turn` and the failure in `_meta`: that run failed, and says why.
  const failure = statusNotice(isRecord(result) ? result._meta : undefined);
  if (failure?.level === "error") {
    return { kind: "error", code: "AGENT_FAILED", message: `the agent failed: ${failure.text}` };
  }
  return { kind: "final", stopReason };
}
