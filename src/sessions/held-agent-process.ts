import { Readable, Writable } from "node:stream";
import type { AgentChild, AnswerHook, ProcessEnd } from "../agents/index.js";
import { KILL_GRACE_MS, STDERR_TAIL_BYTES } from "../agents/index.js";
import type { SwitchboardError } from "../protocol/index.js";
import type { PeerRefusal } from "./holder-peer.js";
import { HolderTransport } from "./holder-transport.js";
import { signalProcess } from "./processes.js";

/** Longest stdout line whose start is remembered while it is read (an agent's requests are far shorter). */
export const AGENT_LINE_SCAN_BYTES = 1024 * 1024;
/** How long a gateway stop waits for its last frames (a `session/cancel`, an answer) to reach the holder. */
const DETACH_FLUSH_MS = 1000;

export interface HeldAgentOptions {
  socketPath: string;
  holderPid: number;
  /** The holder's start time on record: the socket's peer must be that process (holder-peer.ts). */
  holderStart: number | null;
  childPid: number;
  command: string;
  /** The socket's peer was not the holder on record: refused, the process is lost. */
  onRefused?: (refusal: PeerRefusal) => void;
  /** The holder answered (an adopted process): said in the log and the metrics. */
  onGreeted?: () => void;
  /** The process ended and its holder with it. */
  onEnded?: () => void;
  /**
   * Stdout before this holder offset was applied by an earlier gateway (its kept cursor): not
   * given again. The owner acknowledges ({@link HeldAgentProcess.ackTo}) from then on.
   */
  skipTo?: number;
  /** The newest answer mark the kept turn has (held-turn.ts): the holder writes held answers up to it, drops the rest. */
  committedMark?: number;
  /** The agent's requests answered before (JSON of their ids): read again, they are not waited on. */
  answered?: ReadonlySet<string>;
}

/**
 * An ACP agent's process under its holder (native/holder.c), as the ACP adapter speaks to it:
 * stdin and stdout as streams, stderr kept as a tail. The holder keeps stdout until the gateway
 * acknowledges it; this acknowledges whole lines only (JSON-RPC messages), and never past the
 * start of a request of the agent's not yet answered, so the gateway that adopts the process
 * reads from a message boundary and gets every request still waiting for an answer
 * (docs/agents.md, "Agents across gateway restarts").
 */
export class HeldAgentProcess implements AgentChild {
  readonly pid: number;
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly spawnFailure: Promise<SwitchboardError> | null = null;
  readonly closed: Promise<ProcessEnd>;
  private readonly options: HeldAgentOptions;
  private readonly transport: HolderTransport;
  private tail = Buffer.alloc(0);
  private exit: ProcessEnd | undefined;
  private lostReason: string | undefined;
  private outputDone = false;
  private resolveClosed!: (end: ProcessEnd) => void;
  private killing: Promise<ProcessEnd> | undefined;
  private detached = false;
  /** Holder offset after the last byte read, and where the stdout line being read began. */
  private offset = 0;
  private lineStart = 0;
  /** The current stdout line's first bytes, to tell a request (bounded by {@link AGENT_LINE_SCAN_BYTES}). */
  private line: Buffer[] = [];
  private lineBytes = 0;
  /** The agent's requests not answered yet: id → offset of their line. */
  private readonly pending = new Map<string, number>();
  private acked = 0;
  private ackQueued = false;
  /** What the owner allowed the holder to forget ({@link ackTo}); undefined: whole lines as read. */
  private allowed: number | undefined;
  /** The holder offset of the first byte {@link stdout} gives. */
  private first = 0;
  /** Bytes {@link stdout} gave so far, and where its pieces not yet mapped past lie in holder offsets. */
  private given = 0;
  private pieces: Array<{ position: number; offset: number; length: number }> = [];
  private answerHook: AnswerHook | undefined;

  constructor(options: HeldAgentOptions) {
    this.options = options;
    this.pid = options.childPid;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.stdout = new Readable({
      read: () => this.transport.resumeOutput(),
      // Its reader let go (the ACP connection closed before a kill): the holder's frames must
      // still be read, held back or not, or the exit and end that resolve `closed` never are.
      destroy: (error, callback) => {
        this.transport.resumeOutput();
        callback(error);
      },
    });
    this.stdin = new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        if (!this.detached && this.running) {
          const hook = this.answerHook;
          const prompt = hook !== undefined && isPrompt(chunk);
          const id = prompt ? undefined : answerOf(chunk);
          if (hook !== undefined && (prompt || id !== undefined)) {
            // Held for its mark until the record naming it (the answer's request id, or the
            // prompt's) is durable: delivered once the record says so, dropped by the holder
            // otherwise (docs/agents.md, "Agents across gateway restarts"). Recorded only once
            // the held input has left this process, so a record never names input that died in
            // this process's socket buffer; meanwhile the answers wait (answersHeld).
            const mark = hook.next();
            this.transport.write(chunk, mark);
            this.holding++;
            this.transport.whenFlushed(() => {
              this.holding--;
              if (id !== undefined) this.answered(chunk);
              hook.recorded(id, mark);
              // What the record made durable is acknowledged before the input is released, not at
              // the next turn of the loop: the holder forgets the turn before first (acp-held-turn.ts).
              this.acknowledge();
              this.transport.commitInput(mark);
              callback();
            });
            return;
          }
          this.answered(chunk);
          this.transport.write(chunk);
        }
        callback();
      },
      final: (callback) => {
        if (!this.detached && this.running) this.transport.endInput();
        callback();
      },
    });
    this.transport = new HolderTransport(
      {
        socketPath: options.socketPath,
        holderPid: options.holderPid,
        holderStart: options.holderStart,
        childPid: options.childPid,
        pty: false,
        ...(options.onRefused !== undefined ? { onRefused: options.onRefused } : {}),
        resumeFrom: "kept",
        committedSeq: options.committedMark ?? 0,
        onGreeted: (resumedFrom) => {
          // Holder offsets: what it resends starts where the last gateway acknowledged.
          this.offset = resumedFrom;
          this.lineStart = resumedFrom;
          this.acked = resumedFrom;
          this.first = Math.max(resumedFrom, options.skipTo ?? 0);
          options.onGreeted?.();
        },
      },
      {
        output: (stream, chunk) => this.output(stream, chunk),
        childExited: (exit) => {
          this.exit = exit;
          this.ended();
        },
        outputEnded: () => {
          this.outputDone = true;
          this.stdout.push(null);
          this.ended();
        },
        lost: (reason) => {
          this.lostReason = reason;
          this.exit ??= { exitCode: null, signal: null };
          this.outputDone = true;
          this.stdout.push(null);
          this.ended();
        },
      },
    );
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  stderrTail(): string {
    return this.tail.toString("utf8").trim();
  }

  describeEnd(end: ProcessEnd, outputClosed = false): string {
    if (this.lostReason !== undefined) return `${this.options.command}: ${this.lostReason}`;
    const how =
      outputClosed && end.signal !== null
        ? `closed its output (the ACP connection) while still running, so the gateway stopped it (${end.signal})`
        : end.signal !== null
          ? `was killed by ${end.signal}`
          : `exited with code ${end.exitCode}`;
    const lastLines = this.stderrTail().split("\n").slice(-3).join(" | ");
    return `${this.options.command} ${how}${lastLines ? `: ${lastLines}` : ""}`;
  }

  /** TERM to the agent's process group (it leads one: the holder starts it with setsid), KILL after {@link KILL_GRACE_MS}. */
  kill(): Promise<ProcessEnd> {
    if (this.detached) return this.closed;
    this.killing ??= (async () => {
      if (this.running) {
        signalProcess(-this.pid, "SIGTERM");
        const timer = setTimeout(() => signalProcess(-this.pid, "SIGKILL"), KILL_GRACE_MS);
        const end = await this.closed;
        clearTimeout(timer);
        return end;
      }
      return this.closed;
    })();
    return this.killing;
  }

  /**
   * The owner (the ACP adapter, for a held turn) says what the holder may forget: stdout before
   * `offset`, whose events are durable. From the first call on, only that is acknowledged.
   */
  ackTo(offset: number): void {
    this.allowed = Math.max(this.allowed ?? 0, offset);
    this.queueAck();
  }

  firstOffset(): number {
    return this.first;
  }

  /**
   * The holder offset of stdout position `position`: the holder numbers stderr's bytes among
   * stdout's, so a stdout line end is a holder offset only through the pieces it came in
   * (test/agents/real-held-turn.test.ts: the real agents write stderr mid-answer).
   */
  holderOffset(position: number): number {
    while (this.pieces.length > 1 && this.pieces[0]!.position + this.pieces[0]!.length < position) this.pieces.shift();
    const piece = this.pieces[0];
    if (piece === undefined || position < piece.position) return this.first + position;
    return piece.offset + (position - piece.position);
  }

  holdAnswers(hook: AnswerHook): void {
    this.answerHook = hook;
  }

  /** Held answers and prompts written and not yet recorded (they wait to leave this process). */
  private holding = 0;

  answersHeld(): boolean {
    return this.holding > 0;
  }

  /** Acknowledges what may be, lets the last frames reach the holder, and lets go of it: the process runs on. */
  async detach(): Promise<void> {
    if (this.detached) return;
    this.acknowledge();
    this.detached = true;
    const flushed = this.transport.detach({ flush: true });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([flushed, new Promise<void>((resolve) => (timer = setTimeout(resolve, DETACH_FLUSH_MS)))]);
    clearTimeout(timer);
  }

  private output(stream: "stdout" | "stderr" | "pty", chunk: Uint8Array): void {
    const at = this.offset;
    this.offset += chunk.length;
    if (stream === "stderr") {
      const joined = Buffer.concat([this.tail, chunk]);
      this.tail = joined.subarray(Math.max(0, joined.length - STDERR_TAIL_BYTES));
    } else {
      // Copied: the transport's buffer is reused after this call.
      let bytes = Buffer.from(chunk);
      this.scanLines(bytes, at);
      // Applied by an earlier gateway (its kept cursor, a line boundary): not given again.
      const skip = Math.min(bytes.length, Math.max(0, this.first - at));
      if (skip > 0) bytes = bytes.subarray(skip);
      if (bytes.length === 0) return this.queueAck();
      this.pieces.push({ position: this.given, offset: at + skip, length: bytes.length });
      this.given += bytes.length;
      // Nobody reads a destroyed stdout (a push there answers false): what the agent printed
      // before it died is dropped, not waited for, so the frames after it are read.
      if (!this.stdout.destroyed && !this.stdout.push(bytes)) this.transport.pauseOutput();
    }
    this.queueAck();
  }

  /** Acknowledges at most once a turn of the event loop. */
  private queueAck(): void {
    if (this.ackQueued) return;
    this.ackQueued = true;
    setImmediate(() => {
      this.ackQueued = false;
      this.acknowledge();
    });
  }

  /** Finds the lines `bytes` ends (offset `at`) and notes each request of the agent's among them. */
  private scanLines(bytes: Buffer, at: number): void {
    let from = 0;
    for (let nl = bytes.indexOf(0x0a); nl !== -1; nl = bytes.indexOf(0x0a, from)) {
      this.keep(bytes.subarray(from, nl));
      const line = this.lineBytes <= AGENT_LINE_SCAN_BYTES ? Buffer.concat(this.line).toString("utf8") : "";
      const id = requestId(line);
      if (id !== undefined && this.options.answered?.has(id) !== true) this.pending.set(id, this.lineStart);
      this.line = [];
      this.lineBytes = 0;
      from = nl + 1;
      this.lineStart = at + from;
    }
    this.keep(bytes.subarray(from));
  }

  private keep(piece: Buffer): void {
    if (piece.length === 0) return;
    if (this.lineBytes + piece.length <= AGENT_LINE_SCAN_BYTES) this.line.push(piece);
    this.lineBytes += piece.length;
  }

  /** What the gateway writes: an answer to a request of the agent's (its id, returned) lets the holder forget that request. */
  /** The agent's requests `chunk` answers are answered: the holder may forget their lines. */
  private answered(chunk: Buffer): void {
    for (const line of chunk.toString("utf8").split("\n")) {
      const id = responseId(line);
      if (id !== undefined && this.pending.delete(id)) this.queueAck();
    }
  }

  /** Up to the last whole line read, but not past a request still waiting for its answer. */
  private acknowledge(): void {
    if (this.detached || !this.running) return;
    let upTo = this.allowed ?? (this.options.skipTo !== undefined ? this.acked : this.lineStart);
    for (const start of this.pending.values()) upTo = Math.min(upTo, start);
    if (upTo <= this.acked) return;
    this.acked = upTo;
    this.transport.acknowledge(upTo);
  }

  private ended(): void {
    if (this.exit === undefined || !this.outputDone) return;
    this.resolveClosed(this.exit);
    // The holder waits for this before it ends (agents log no exit it must wait for).
    if (this.lostReason === undefined && !this.detached) this.transport.done();
    this.options.onEnded?.();
  }
}

/** Whether `chunk` (one message the SDK writes) is a `session/prompt` request. */
function isPrompt(chunk: Buffer): boolean {
  return chunk.includes('"session/prompt"') && parse(chunk.toString("utf8").trim())?.["method"] === "session/prompt";
}

/** The id of a JSON-RPC request in `line` (as a map key), or undefined. */
function requestId(line: string): string | undefined {
  const message = parse(line);
  if (message === undefined || typeof message["method"] !== "string" || !("id" in message)) return undefined;
  return JSON.stringify(message["id"]);
}

/** The id of the last JSON-RPC response in `chunk` (as a map key), or undefined: what an answer answers. */
function answerOf(chunk: Buffer): string | undefined {
  let answer: string | undefined;
  for (const line of chunk.toString("utf8").split("\n")) answer = responseId(line) ?? answer;
  return answer;
}

function responseId(line: string): string | undefined {
  const message = parse(line);
  if (message === undefined || "method" in message || !("id" in message)) return undefined;
  return JSON.stringify(message["id"]);
}

function parse(line: string): Record<string, unknown> | undefined {
  // Notifications (most of an agent's output) are told without parsing: they have no id.
  if (!line.includes('"id"')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    // Not JSON: a line an agent printed by mistake (acp-stdout-noise.ts skips it too).
    return undefined;
  }
}
