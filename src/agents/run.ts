import type { Clock, Timer } from "../core/clock.js";
import { DeltaPacer } from "../core/delta-pacer.js";
import type { AppendableLog } from "../log/types.js";
import type {
  Actor,
  ContentBlock,
  SessionEvent,
  ErrorCode,
  MessageSender,
  PermissionToolCall,
} from "../protocol/index.js";
import type { AgentEventInput, PermissionAsk, PermissionOutcome, PlanEntry, RunSink, ToolUpdate } from "./adapter.js";
import type { ElicitationAsk, ElicitationBroker, ElicitationOutcome } from "./elicitations.js";
import type { FileChange } from "./file-change.js";
import type { PermissionBroker } from "./permissions.js";

/**
 * Text (answer and thoughts together, UTF-8 bytes) one run may stream before it is stopped:
 * `chat.final` carries the whole answer, so an agent printing without end would otherwise grow
 * the gateway until it fails (`limits.runTextBytes`).
 */
export const DEFAULT_RUN_TEXT_BYTES = 16 * 1024 * 1024;

/**
 * Tool calls a run remembers (to fill updates that omit their status, title or kind). Past it,
 * the one longest without an update is forgotten, a finished one first.
 */
export const MAX_TRACKED_TOOL_CALLS = 1000;

/**
 * How long an active run may go without a word from its agent before the gateway says so
 * (`run.notice`, warning): an agent retrying a dead model API is otherwise silent for minutes
 * (Claude Code retried 151 s, Codex 21.6 s). Not while a permission request waits for an answer.
 */
export const DEFAULT_RUN_STALL_NOTICE_MS = 30_000;

/** How a run ends: exactly one of these is appended per run. */
export type RunEnd =
  | { type: "chat.final"; stopReason: string }
  | { type: "chat.error"; code: ErrorCode; message: string }
  | { type: "chat.aborted"; by: Actor | undefined };

export type RunPhase = "queued" | "active" | "ended";

export interface RunOptions {
  runId: string;
  text: string;
  /** The prompt's ACP content blocks, when it was sent as content (`text` is their text). */
  content?: ContentBlock[] | undefined;
  by: Actor;
  /** A routed message's sender (see `run.queued`). */
  from?: MessageSender | undefined;
  log: AppendableLog;
  clock: Clock;
  throttleMs: number;
  permissions: PermissionBroker;
  /** Where `elicitation/create` goes; without it the agent is answered `cancel`. */
  elicitations?: ElicitationBroker | undefined;
  /** Default {@link DEFAULT_RUN_TEXT_BYTES}. */
  maxTextBytes?: number;
  /** The run streamed more than `maxTextBytes`: the owner ends it (the text past the limit is dropped). */
  onTextLimit?: (run: Run, maxTextBytes: number) => void;
  /** Default {@link DEFAULT_RUN_STALL_NOTICE_MS}; 0: never. */
  stallNoticeMs?: number;
}

interface ToolState {
  status: string;
  title: string | undefined;
  kind: string | undefined;
  terminals: Set<string>;
  /** What the call would do, for a permission request about it: kept while the call is open. */
  asked: PermissionToolCall;
}

const isFinished = (status: string): boolean => status === "completed" || status === "failed";

/**
 * The agent's message the run's text belongs to now (ACP `messageId`), to tell a new message that
 * starts over from one that goes on (see {@link Run.enterMessage}).
 */
interface Message {
  id: string;
  /** Where its text starts in the run's answer. */
  answerStart: number;
  /** Whether it has answer text. */
  spoke: boolean;
  /** Whether the agent did something else (a tool call, a plan, a permission request) since its last text. */
  worked: boolean;
}

/**
 * One run of an agent session, and the sink its adapter writes to. Owns the run's pacing:
 * text and thoughts are coalesced per run; both are flushed — bypassing the throttle —
 * before any other event of the run, so the log reads in the order the agent spoke and
 * `chat.final.text` is exactly the concatenation of the run's `chat.delta` texts.
 */
export class Run implements RunSink {
  readonly runId: string;
  readonly prompt: string;
  readonly content: ContentBlock[] | undefined;
  readonly by: Actor;
  readonly from: MessageSender | undefined;
  private phaseValue: RunPhase = "queued";
  private answer = "";
  /** Swapped for a log that keeps nothing while {@link restore} replays the run's logged events. */
  private log: AppendableLog;
  private readonly permissions: PermissionBroker;
  private readonly elicitations: ElicitationBroker | undefined;
  private readonly deltas: DeltaPacer;
  private readonly thoughts: DeltaPacer;
  private readonly tools = new Map<string, ToolState>();
  /** Tool call and path of each write through the gateway in this run (a report of it is not logged again). */
  private readonly written = new Set<string>();
  private textBytes = 0;
  private readonly maxTextBytes: number;
  private readonly onTextLimit: ((run: Run, maxTextBytes: number) => void) | undefined;
  private readonly clock: Clock;
  private readonly stallNoticeMs: number;
  private stallTimer: Timer | undefined;
  private message: Message | undefined;

  constructor(options: RunOptions) {
    this.maxTextBytes = options.maxTextBytes ?? DEFAULT_RUN_TEXT_BYTES;
    this.onTextLimit = options.onTextLimit;
    this.clock = options.clock;
    this.stallNoticeMs = options.stallNoticeMs ?? DEFAULT_RUN_STALL_NOTICE_MS;
    this.runId = options.runId;
    this.prompt = options.text;
    this.content = options.content;
    this.by = options.by;
    this.from = options.from;
    this.log = options.log;
    this.permissions = options.permissions;
    this.elicitations = options.elicitations;
    const runId = this.runId;
    this.deltas = new DeltaPacer({
      clock: options.clock,
      throttleMs: options.throttleMs,
      emit: (text) => {
        this.answer += text;
        const messageId = this.message?.id;
        this.log.append({ type: "chat.delta", runId, text, ...(messageId !== undefined ? { messageId } : {}) });
      },
    });
    this.thoughts = new DeltaPacer({
      clock: options.clock,
      throttleMs: options.throttleMs,
      emit: (text) => {
        const messageId = this.message?.id;
        this.log.append({ type: "chat.thought", runId, text, ...(messageId !== undefined ? { messageId } : {}) });
      },
    });
  }

  /** The answer streamed so far (all of it once the run ended with `chat.final`). */
  get answerText(): string {
    return this.answer;
  }

  get phase(): RunPhase {
    return this.phaseValue;
  }

  get open(): boolean {
    return this.phaseValue === "active";
  }

  /** No text or thoughts wait in the pacers: everything the adapter gave is in the log. */
  get quiet(): boolean {
    return !this.deltas.pending && !this.thoughts.pending;
  }

  /**
   * Makes this the active run an earlier gateway left in flight, as it was once `events` (its
   * logged events, oldest first) were appended: its answer, messages and tool calls are rebuilt
   * by going through them again with nothing appended (held-turn.ts).
   */
  restore(events: readonly SessionEvent[]): void {
    if (this.phaseValue !== "queued") return;
    const log = this.log;
    this.log = { sessionId: log.sessionId, append: (event) => ({ ...event, seq: 0, ts: 0 }) as SessionEvent };
    try {
      this.phaseValue = "active";
      for (const event of events) this.replay(event);
      this.flush();
    } finally {
      this.log = log;
    }
    this.heard();
  }

  private replay(event: SessionEvent): void {
    switch (event.type) {
      case "chat.delta":
        return this.text(event.text, event.messageId);
      case "chat.thought":
        return this.thought(event.text, event.messageId);
      case "tool":
        return this.tool({
          toolCallId: event.toolCallId,
          status: event.status,
          ...(event.title !== undefined ? { title: event.title } : {}),
          ...(event.kind !== undefined ? { kind: event.kind } : {}),
          ...(event.terminalSessionIds !== undefined ? { terminalSessionIds: event.terminalSessionIds } : {}),
        });
      case "plan":
        return this.plan(event.entries);
      default:
        return;
    }
  }

  /** Appends `run.queued`. */
  queued(position: number): void {
    this.log.append({
      type: "run.queued",
      runId: this.runId,
      text: this.prompt,
      by: this.by,
      ...(this.from !== undefined ? { from: this.from } : {}),
      position,
      ...(this.content !== undefined ? { content: this.content } : {}),
    });
  }

  /** Appends `run.started`; from now on the adapter's calls become events. */
  start(): void {
    if (this.phaseValue !== "queued") return;
    this.phaseValue = "active";
    this.log.append({ type: "run.started", runId: this.runId });
    this.heard();
  }

  /** The agent said something: the stall notice waits `stallNoticeMs` from now. */
  private heard(): void {
    this.stallTimer?.cancel();
    this.stallTimer = undefined;
    if (this.stallNoticeMs <= 0 || !this.open) return;
    const armedAt = this.clock.monotonic();
    this.stallTimer = this.clock.setTimeout(() => {
      // Waiting for a person is not the agent's silence.
      if (this.permissions.openFor(this.runId) || this.elicitations?.openFor(this.runId) === true) return this.heard();
      const seconds = Math.round((this.clock.monotonic() - armedAt) / 1000);
      this.log.append({
        type: "run.notice",
        runId: this.runId,
        level: "warning",
        text: `no update from the agent for ${seconds} s: it may be retrying its model API or stuck (abort to stop it)`,
      });
      this.stallTimer = undefined;
    }, this.stallNoticeMs);
  }

  /**
   * The gateway stops while the agent runs on (held): what is buffered is logged, timers stop,
   * and no terminal event is appended — the gateway that adopts the agent appends it.
   */
  detach(): void {
    if (this.phaseValue === "ended") return;
    this.phaseValue = "ended";
    this.stallTimer?.cancel();
    this.stallTimer = undefined;
    this.flush();
    this.deltas.dispose();
    this.thoughts.dispose();
  }

  /**
   * Ends the run with its one terminal event: open permission requests are cancelled, buffered
   * text is flushed, then the terminal event is appended. Returns false if the run had already
   * ended (the later ending is dropped).
   */
  end(end: RunEnd): boolean {
    if (this.phaseValue === "ended") return false;
    this.phaseValue = "ended";
    this.stallTimer?.cancel();
    this.stallTimer = undefined;
    const endedBy = end.type === "chat.aborted" ? (end.by ?? null) : null;
    this.permissions.cancelRun(this.runId, endedBy);
    this.elicitations?.cancelRun(this.runId, endedBy);
    this.flush();
    this.deltas.dispose();
    this.thoughts.dispose();
    this.failOpenTools();
    const runId = this.runId;
    switch (end.type) {
      case "chat.final":
        this.log.append({ type: "chat.final", runId, text: this.answer, stopReason: end.stopReason });
        break;
      case "chat.error":
        this.log.append({ type: "chat.error", runId, code: end.code, message: end.message });
        break;
      case "chat.aborted":
        this.log.append({ type: "chat.aborted", runId, ...(end.by ? { by: end.by } : {}) });
        break;
    }
    return true;
  }

  /**
   * A call the agent never finished ends with its run: one last `tool` event, `failed`, so no
   * viewer shows it running forever (Claude Code leaves a call `pending` when its turn is cancelled).
   */
  private failOpenTools(): void {
    for (const [toolCallId, state] of this.tools) {
      if (isFinished(state.status)) continue;
      this.log.append({
        type: "tool",
        runId: this.runId,
        toolCallId,
        status: "failed",
        ...(state.title !== undefined ? { title: state.title } : {}),
        ...(state.kind !== undefined ? { kind: state.kind } : {}),
        ...(state.terminals.size > 0 ? { terminalSessionIds: [...state.terminals] } : {}),
      });
    }
    this.tools.clear();
  }

  // Answer text and thoughts are paced apart, but reach the log in the order they came: a switch
  // from one to the other first flushes what the other holds (exploratory test: a thought's last
  // piece was logged after the answer had begun, and the page showed two "Thinking" blocks).
  text(chunk: string, messageId?: string): void {
    if (!this.open || !this.withinLimit(chunk)) return;
    this.heard();
    this.enterMessage(messageId);
    if (this.thoughts.pending) this.thoughts.flush();
    this.deltas.push(chunk);
    if (this.message) {
      this.message.spoke = true;
      this.message.worked = false;
    }
  }

  thought(chunk: string, messageId?: string): void {
    if (!this.open || !this.withinLimit(chunk)) return;
    this.heard();
    this.enterMessage(messageId);
    if (this.deltas.pending) this.deltas.flush();
    this.thoughts.push(chunk);
  }

  /**
   * A chunk of message `id` comes (ACP `messageId`; none: the message goes on). A new id starts a
   * new message, after a flush, so no event holds two messages' text. When the message before it
   * had answer text and the agent did nothing else since, the new one starts over: the agent
   * abandoned it (Claude Code retries a cut model stream under a new id, from the start). Its text
   * leaves the answer and `chat.abandoned` says so (test/agents/acp-agent-state.test.ts).
   */
  private enterMessage(id: string | undefined): void {
    if (id === undefined || id === this.message?.id) return;
    this.flush();
    const before = this.message;
    if (before?.spoke === true && !before.worked) {
      this.log.append({
        type: "chat.abandoned",
        runId: this.runId,
        messageId: before.id,
        chars: this.answer.length - before.answerStart,
      });
      this.answer = this.answer.slice(0, before.answerStart);
    }
    this.message = { id, answerStart: this.answer.length, spoke: false, worked: false };
  }

  /** The agent did something besides talking: the message before it was not given up. */
  private worked(): void {
    if (this.message) this.message.worked = true;
  }

  /** Counts streamed text; past the limit, the run's owner is told (once: it ends the run). */
  private withinLimit(chunk: string): boolean {
    this.textBytes += Buffer.byteLength(chunk);
    if (this.textBytes <= this.maxTextBytes) return true;
    this.onTextLimit?.(this, this.maxTextBytes);
    return false;
  }

  tool(update: ToolUpdate): void {
    if (!this.open) return;
    this.heard();
    this.flush();
    this.worked();
    const prev = this.tools.get(update.toolCallId);
    const status = update.status ?? prev?.status ?? "pending";
    const state: ToolState = {
      status,
      title: update.title ?? prev?.title,
      kind: update.kind ?? prev?.kind,
      terminals: new Set([...(prev?.terminals ?? []), ...(update.terminalSessionIds ?? [])]),
      asked: isFinished(status) ? {} : mergeAsked(prev?.asked, update),
    };
    this.remember(update.toolCallId, state);
    this.log.append({
      type: "tool",
      runId: this.runId,
      toolCallId: update.toolCallId,
      status: state.status,
      ...(state.title !== undefined ? { title: state.title } : {}),
      ...(state.kind !== undefined ? { kind: state.kind } : {}),
      ...(state.terminals.size > 0 ? { terminalSessionIds: [...state.terminals] } : {}),
      ...(update.content !== undefined ? { content: update.content } : {}),
      ...(update.rawInput !== undefined ? { rawInput: update.rawInput } : {}),
      ...(update.rawOutput !== undefined ? { rawOutput: update.rawOutput } : {}),
      ...(update.locations !== undefined ? { locations: update.locations } : {}),
    });
  }

  /**
   * Keeps `state` as the call's latest, most recently updated last (a Map keeps insertion order).
   * A long run's calls are mostly finished: once there are too many, the oldest finished one goes
   * (the oldest of all if none has finished), not the new call (exploratory test: from the
   * 1001st call of a run on, every update lost its title and kind).
   */
  private remember(toolCallId: string, state: ToolState): void {
    this.tools.delete(toolCallId);
    if (this.tools.size >= MAX_TRACKED_TOOL_CALLS) {
      let forget: string | undefined;
      for (const [id, known] of this.tools) {
        forget ??= id;
        if (isFinished(known.status)) {
          forget = id;
          break;
        }
      }
      if (forget !== undefined) this.tools.delete(forget);
    }
    this.tools.set(toolCallId, state);
  }

  plan(entries: PlanEntry[]): void {
    if (!this.open) return;
    this.heard();
    this.flush();
    this.worked();
    this.log.append({ type: "plan", runId: this.runId, entries });
  }

  agentEvent(event: AgentEventInput): void {
    if (!this.open) return;
    this.heard();
    this.flush();
    this.log.append({ ...event, runId: this.runId });
  }

  notice(level: "info" | "warning" | "error", text: string): void {
    if (!this.open) return;
    this.heard();
    this.flush();
    this.log.append({ type: "run.notice", runId: this.runId, level, text });
  }

  child(info: { sessionId: string; command: string[] }): void {
    if (!this.open) return;
    this.heard();
    this.flush();
    this.worked();
    this.log.append({ type: "child", sessionId: info.sessionId, runId: this.runId, command: info.command });
  }

  fileChange(change: FileChange): void {
    if (!this.open) return;
    const toolCallId = change.toolCallId ?? this.makerOf(change.path);
    const key = `${toolCallId ?? ""}\0${change.path}`;
    // A call that wrote through the gateway and reports the same file's diff changed it once.
    if (change.source === "reported" && this.written.has(key)) return;
    if (change.source === "write" && this.written.size < MAX_TRACKED_TOOL_CALLS) this.written.add(key);
    this.heard();
    this.flush();
    this.worked();
    this.log.append({
      type: "file.change",
      runId: this.runId,
      ...change,
      ...(toolCallId !== undefined ? { toolCallId } : {}),
    });
  }

  /**
   * The open tool call that wrote `relative` through the gateway: the one updated last among those
   * whose locations end with it, else the one updated last (a Map keeps the latest last).
   */
  private makerOf(relative: string): string | undefined {
    let named: string | undefined;
    let latest: string | undefined;
    for (const [id, state] of this.tools) {
      if (isFinished(state.status)) continue;
      latest = id;
      const paths = state.asked.locations?.map((l) => l.path.replaceAll("\\", "/")) ?? [];
      if (paths.some((p) => p === relative || p.endsWith(`/${relative}`))) named = id;
    }
    return named ?? latest;
  }

  requestPermission(ask: PermissionAsk, signal?: AbortSignal): Promise<PermissionOutcome> {
    if (!this.open) return Promise.resolve({ outcome: "cancelled" });
    this.heard();
    this.flush();
    this.worked();
    const known = ask.toolCallId === undefined ? undefined : this.tools.get(ask.toolCallId);
    const title = ask.title !== "" ? ask.title : (known?.title ?? "Permission requested");
    // The request's own description wins; what earlier updates said of the call fills the rest
    // (Claude Code sends the command and diff in tool_call, Gemini only in the request).
    const toolCall = mergeAsked(
      known ? { ...known.asked, ...(known.kind !== undefined ? { kind: known.kind } : {}) } : undefined,
      ask.toolCall ?? {},
    );
    const withCall = Object.keys(toolCall).length > 0 ? { ...ask, title, toolCall } : { ...ask, title };
    return this.permissions.request(this.runId, withCall, signal);
  }

  requestElicitation(ask: ElicitationAsk, signal?: AbortSignal): Promise<ElicitationOutcome> {
    if (!this.open || this.elicitations === undefined) return Promise.resolve({ action: "cancel" });
    this.heard();
    this.flush();
    this.worked();
    return this.elicitations.request(this.runId, ask, signal);
  }

  completeElicitation(elicitationId: string): boolean {
    return this.elicitations?.complete(elicitationId) ?? false;
  }

  private flush(): void {
    this.thoughts.flush();
    this.deltas.flush();
  }
}

/** `prev` with what `update` says of the call's kind, input, content and locations laid over it. */
function mergeAsked(prev: PermissionToolCall | undefined, update: PermissionToolCall): PermissionToolCall {
  const kind = update.kind ?? prev?.kind;
  const rawInput = update.rawInput !== undefined && !isEmptyRecord(update.rawInput) ? update.rawInput : prev?.rawInput;
  // An update with empty content (a pending tool_call before its input streamed) says nothing new.
  const content = Array.isArray(update.content) && update.content.length > 0 ? update.content : prev?.content;
  const locations = update.locations !== undefined && update.locations.length > 0 ? update.locations : prev?.locations;
  return {
    ...(kind !== undefined ? { kind } : {}),
    ...(rawInput !== undefined ? { rawInput } : {}),
    ...(content !== undefined ? { content } : {}),
    ...(locations !== undefined ? { locations } : {}),
  };
}

function isEmptyRecord(v: unknown): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;
}
