import * as acp from "@agentclientprotocol/sdk";
import type { JsonRpcId } from "@agentclientprotocol/sdk";
import type { PermissionToolCall } from "../protocol/index.js";
import type { PermissionOutcome, RunSink } from "./adapter.js";
import { toLocations } from "./acp-updates.js";
import type { AcpTerminals } from "./acp-terminals.js";
import type { AcpWire } from "./acp-wire.js";
import { ConfinedFs, FsAccessError } from "./confined-fs.js";
import { fileChange, relativePath } from "./file-change.js";
import { type ElicitationOutcome, readElicitationAsk } from "./elicitations.js";
import { type AgentLogger, describeError } from "./logger.js";

/** JSON-RPC codes the handlers answer with. */
const JSONRPC_INVALID_PARAMS = -32602;
const JSONRPC_RESOURCE_NOT_FOUND = -32002;
const JSONRPC_INTERNAL_ERROR = -32603;

export interface AcpClientOptions {
  /** The client's name, as in `initialize`'s `clientInfo`. */
  name: string;
  /** The session's cwd: the root the agent's file access is confined to. */
  cwd: string;
  /** Puts each request in its place among the agent's other messages. */
  wire: AcpWire;
  terminals: AcpTerminals;
  /** The ACP session `session/new` opened: a request that names another is refused. */
  sessionId(): string | undefined;
  /** The current prompt turn's sink, if there is a turn (`open` says whether its run still goes on). */
  sink(): RunSink | undefined;
  logger: AgentLogger;
}

/**
 * The gateway's side of ACP: answers what the agent asks of its client — a permission
 * (`session/request_permission`, asked of the run's sink), an elicitation (`elicitation/create`
 * and its `elicitation/complete`, likewise), files under the cwd (`fs/*`, through
 * ConfinedFs) and child terminals (`terminal/*`, through AcpTerminals). Each request waits for
 * its place in wire order first (acp-wire.ts), so its effects land after the messages before it.
 */
export function acpClient(options: AcpClientOptions): acp.ClientApp {
  const fs = new ConfinedFs(options.cwd);
  const { terminals } = options;
  return acp
    .client({ name: options.name })
    .onRequest("session/request_permission", async ({ params, requestId, signal }) => {
      const answer = await inOrder(options, requestId, params.sessionId, (): Promise<PermissionOutcome> => {
        const sink = options.sink();
        if (!sink?.open) return Promise.resolve({ outcome: "cancelled" });
        return sink.requestPermission(
          {
            title: params.toolCall.title ?? "",
            toolCallId: params.toolCall.toolCallId,
            toolCall: askedToolCall(params.toolCall),
            options: params.options.map((o) => ({ optionId: o.optionId, name: o.name, kind: o.kind })),
          },
          signal,
        );
      });
      const outcome = await answer;
      return {
        outcome:
          outcome.outcome === "selected"
            ? { outcome: "selected", optionId: outcome.optionId }
            : { outcome: "cancelled" },
      };
    })
    .onRequest("elicitation/create", async ({ params, requestId, signal }) => {
      // Form or url mode, tied to this session, during a turn: asked of the run's sink like a permission.
      const scoped = params as { sessionId?: unknown; toolCallId?: unknown };
      if (params.mode !== "form" && params.mode !== "url") {
        throw acp.RequestError.invalidParams({ mode: params.mode }, "only form and url elicitation are served");
      }
      if (typeof scoped.sessionId !== "string") {
        throw acp.RequestError.invalidParams(undefined, "only session-scoped elicitation is served");
      }
      const ask = readElicitationAsk(scoped.toolCallId === null ? { ...params, toolCallId: undefined } : params);
      if (typeof ask === "string") throw acp.RequestError.invalidParams(undefined, ask);
      const answer = await inOrder(options, requestId, scoped.sessionId, (): Promise<ElicitationOutcome> => {
        const sink = options.sink();
        if (!sink?.open) return Promise.resolve({ action: "cancel" });
        return sink.requestElicitation(ask, signal);
      });
      const outcome = await answer;
      return outcome.action === "accept" && outcome.content !== undefined
        ? { action: "accept", content: outcome.content }
        : { action: outcome.action };
    })
    .onNotification("elicitation/complete", ({ params }) => {
      // In wire order, after the `elicitation/create` it names has been applied.
      const elicitationId = params.elicitationId;
      options.wire.enqueue(() => {
        // One answered already, or ended with its run: nothing is open to resolve.
        if (!options.sink()?.completeElicitation(elicitationId)) {
          options.logger.debug({ elicitationId }, "elicitation/complete for no open url elicitation");
        }
      });
    })
    .onRequest("fs/read_text_file", async ({ params, requestId }) => {
      await inOrder(options, requestId, params.sessionId, () => undefined);
      const content = await fsCall(() => fs.readTextFile(params.path, { line: params.line, limit: params.limit }));
      return { content };
    })
    .onRequest("fs/write_text_file", async ({ params, requestId }) => {
      // Held in wire order until the change is logged, as terminal/create holds it: the
      // `file.change` lands where the agent wrote, before the tool call update that follows.
      const release = await options.wire.enter(requestId);
      try {
        if (params.sessionId !== options.sessionId()) throw acp.RequestError.sessionNotFound(params.sessionId);
        // Like terminal/create, a write changes things: only for a run that is still going. After
        // an abort the agent may still be finishing the cancelled turn; what it writes then is refused.
        const sink = options.sink();
        if (!sink?.open) {
          throw acp.RequestError.invalidRequest(
            { reason: "no-turn" },
            "no prompt turn is running (the run was aborted or has ended): the file was not written",
          );
        }
        const { before } = await fsCall(() => fs.writeTextFile(params.path, params.content));
        const path = relativePath(options.cwd, params.path);
        sink.fileChange(fileChange({ path, source: "write", before, after: params.content }));
        return {};
      } finally {
        release();
      }
    })
    .onRequest("terminal/create", async ({ params, requestId }) => {
      // The child is started while this request holds its place in the wire order, so its
      // `child` event lands exactly where the agent asked for it.
      const release = await options.wire.enter(requestId);
      try {
        if (params.sessionId !== options.sessionId()) throw acp.RequestError.sessionNotFound(params.sessionId);
        const sink = options.sink();
        if (!sink?.open) throw acp.RequestError.invalidRequest(undefined, "no prompt turn is running");
        const terminal = await terminals.create(params, sink.runId).catch((err: unknown) => {
          // The agent (and its user) should learn why: not a bare "Internal error".
          if (err instanceof acp.RequestError) throw err;
          const code = (err as { code?: unknown }).code;
          throw new acp.RequestError(
            JSONRPC_INTERNAL_ERROR,
            describeError(err),
            typeof code === "string" ? { code } : undefined,
          );
        });
        sink.child({ sessionId: terminal.sessionId, command: [params.command, ...(params.args ?? [])] });
        return { terminalId: terminal.sessionId };
      } finally {
        release();
      }
    })
    .onRequest("terminal/output", async ({ params, requestId }) => {
      const terminal = await inOrder(options, requestId, params.sessionId, () => terminals.get(params.terminalId));
      const out = await terminal.output();
      return { output: out.output, truncated: out.truncated, exitStatus: out.exitStatus };
    })
    .onRequest("terminal/wait_for_exit", async ({ params, requestId }) => {
      const terminal = await inOrder(options, requestId, params.sessionId, () => terminals.get(params.terminalId));
      const exit = await terminal.waitForExit();
      return { exitCode: exit.exitCode, signal: exit.signal };
    })
    .onRequest("terminal/kill", async ({ params, requestId }) => {
      const terminal = await inOrder(options, requestId, params.sessionId, () => terminals.get(params.terminalId));
      await terminal.kill();
      return {};
    })
    .onRequest("terminal/release", async ({ params, requestId }) => {
      await inOrder(options, requestId, params.sessionId, () => terminals.get(params.terminalId));
      await terminals.release(params.terminalId);
      return {};
    });
}

/** What a `session/request_permission` says of its tool call besides its id and title (Gemini says it only there). */
function askedToolCall(call: acp.ToolCallUpdate): PermissionToolCall {
  const locations = toLocations(call.locations);
  return {
    ...(typeof call.kind === "string" ? { kind: call.kind } : {}),
    ...(call.rawInput !== undefined ? { rawInput: call.rawInput } : {}),
    ...(Array.isArray(call.content) ? { content: call.content } : {}),
    ...(locations !== undefined ? { locations } : {}),
  };
}

/**
 * Waits for this request's turn in wire order, lets `fn` append its events synchronously, then
 * lets later messages go on. A promise `fn` returns is not awaited here (a permission answer
 * may take minutes; the messages after the request must not wait for it).
 */
async function inOrder<T>(options: AcpClientOptions, requestId: JsonRpcId, sessionId: string, fn: () => T): Promise<T> {
  const release = await options.wire.enter(requestId);
  try {
    if (sessionId !== options.sessionId()) throw acp.RequestError.sessionNotFound(sessionId);
    return fn();
  } finally {
    release();
  }
}

/** Runs a confined fs call, turning refusals into JSON-RPC errors the agent can read. */
async function fsCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof FsAccessError) {
      const code = err.reason === "not-found" ? JSONRPC_RESOURCE_NOT_FOUND : JSONRPC_INVALID_PARAMS;
      throw new acp.RequestError(code, err.message, { reason: err.reason });
    }
    throw new acp.RequestError(JSONRPC_INTERNAL_ERROR, describeError(err));
  }
}
