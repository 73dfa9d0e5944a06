import type { AnyMessage, AnyResponse, JsonRpcId, Stream } from "@agentclientprotocol/sdk";
import { REQUEST_ID_BLOCK } from "./held-turn.js";

/**
 * Applies an ACP agent's messages in wire order. The SDK runs handlers without waiting for the
 * previous one, so a `session/prompt` response can overtake the last chunk and a permission
 * request its `tool_call` (docs/architecture.md, "A prompt to an agent and back"). Between stdout
 * and the SDK: updates and watched responses (still passed on) are applied here in order, each
 * request is a barrier until its handler `enter()`ed and released (or it was refused), end of
 * output comes last. Applying is synchronous, so a message's events are logged before the next's.
 */
export interface AcpWireHandlers {
  /** A `session/update` notification's params. */
  update(params: unknown, seq: number): void;
  /** The response to a request of a watched method. */
  response(message: AnyResponse, seq: number): void;
  /** The agent's output ended (after everything before it was applied). Called once. */
  end(): void;
  /** An apply function threw: a bug, reported, and the queue goes on. */
  failed(err: unknown): void;
  /**
   * A response to no request of this connection's: an earlier gateway's, to an agent process
   * adopted from its holder. Not passed to the SDK (its ids may equal this connection's).
   */
  stray?(message: AnyResponse): void;
  /**
   * Everything the agent wrote before stdout offset `offset` has been applied (its message read
   * by an {@link AcpWireOptions.endOf} that knows offsets); `answering`: requests of the agent's
   * among them wait for their answer.
   */
  applied?(offset: number, answering: number): void;
  /** A request of the agent's answered before a restart was read again: not handled (see {@link AcpWireOptions.answeredBefore}). */
  skipped?(method: string): void;
  /** A request of ours went out with `wireId` (after the id block is added). */
  sent?(method: string, wireId: number): void;
}

export interface AcpWireOptions {
  /** Methods whose responses go to {@link AcpWireHandlers.response}. */
  watchResponsesTo: string[];
  /**
   * Added to the id of every request sent, and taken off the answers: a connection to an adopted
   * agent speaks past the ids an earlier gateway used (held-turn.ts). Default 0.
   */
  idBase?: number;
  /** The stdout offset after a message's line (acp-line-reader.ts). */
  endOf?: (message: AnyMessage) => number | undefined;
  /** The agent's requests (JSON of their ids) answered by an earlier gateway: read again, they are dropped. */
  answeredBefore?: ReadonlySet<string>;
}

type Entry =
  | { kind: "apply"; seq: number; fn: () => void }
  | { kind: "barrier"; seq: number; key: string; released: boolean; enter: (() => void) | undefined };

const keyOf = (id: JsonRpcId): string => JSON.stringify(id);

/** A JSON object (what ACP's params, results and updates are), not an array or null. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export class AcpWire {
  /** What the SDK connects to. */
  readonly stream: Stream;
  private readonly handlers: AcpWireHandlers;
  private readonly watchedMethods: ReadonlySet<string>;
  private readonly watchedIds = new Set<string>();
  /** Requests sent and not answered (what tells a stray response). */
  private readonly sentIds = new Set<string>();
  /** Called whenever a request is answered (see {@link whenAnswered}). */
  private readonly answerWaiters = new Set<() => void>();
  private readonly barriers = new Map<string, Extract<Entry, { kind: "barrier" }>>();
  private queue: Entry[] = [];
  private seq = 0;
  private pauses = 0;
  private draining = false;
  private ended = false;
  private readonly idBase: number;
  private readonly endOf: ((message: AnyMessage) => number | undefined) | undefined;
  /** The agent's requests read and not answered yet. */
  private readonly answering = new Set<string>();
  private readonly answeredBefore: ReadonlySet<string>;

  constructor(raw: Stream, handlers: AcpWireHandlers, options: AcpWireOptions) {
    this.handlers = handlers;
    this.watchedMethods = new Set(options.watchResponsesTo);
    this.idBase = options.idBase ?? 0;
    this.endOf = options.endOf;
    this.answeredBefore = options.answeredBefore ?? new Set();
    const inbound = new TransformStream<AnyMessage, AnyMessage>({
      transform: (read, controller) => {
        const end = this.endOf?.(read);
        const message = this.ownId(read);
        if (this.answeredEarlier(message)) this.handlers.skipped?.((message as { method: string }).method);
        else if (this.take(message)) controller.enqueue(message);
        if (end !== undefined) this.enqueue(() => this.handlers.applied?.(end, this.answering.size));
      },
      flush: () => this.enqueue(() => this.end()),
    });
    const writer = raw.writable.getWriter();
    const outbound = new WritableStream<AnyMessage>({
      write: (message) => {
        this.observeOutgoing(message);
        return writer.write(this.wireId(message));
      },
      close: () => writer.close(),
      abort: (reason: unknown) => writer.abort(reason),
    });
    this.stream = { readable: raw.readable.pipeThrough(inbound), writable: outbound };
  }

  /** The requests sent to the agent and not answered yet (what `$/cancel_request` names when the gateway gives up). */
  pendingRequests(): JsonRpcId[] {
    return [...this.sentIds].map((key) => {
      const id = JSON.parse(key) as JsonRpcId;
      return typeof id === "number" ? id + this.idBase : id;
    });
  }

  private answeredEarlier(message: AnyMessage): boolean {
    const m: unknown = message;
    return (
      isRecord(m) && typeof m.method === "string" && "id" in m && this.answeredBefore.has(keyOf(m.id as JsonRpcId))
    );
  }

  /** An answer to one of this connection's requests, with the id the SDK gave it. */
  private ownId(message: AnyMessage): AnyMessage {
    const m: unknown = message;
    if (this.idBase === 0 || !isRecord(m) || "method" in m || typeof m.id !== "number") return message;
    const id = m.id - this.idBase;
    if (id < 0 || id >= REQUEST_ID_BLOCK) return message;
    return { ...m, id } as AnyMessage;
  }

  /** A request of ours with its id in this connection's block. */
  private wireId(message: AnyMessage): AnyMessage {
    const m: unknown = message;
    if (!isRecord(m) || typeof m.method !== "string" || typeof m.id !== "number") return message;
    const id = m.id + this.idBase;
    this.handlers.sent?.(m.method, id);
    return this.idBase === 0 ? message : ({ ...m, id } as AnyMessage);
  }

  /** Resolves once the agent has answered every request of `ids` (or the connection is gone: {@link close}). */
  whenAnswered(ids: readonly JsonRpcId[]): Promise<void> {
    const keys = ids.map(keyOf);
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.ended || keys.every((k) => !this.sentIds.has(k))) {
          this.answerWaiters.delete(check);
          resolve();
        }
      };
      this.answerWaiters.add(check);
      check();
    });
  }

  /** Messages numbered so far. */
  get received(): number {
    return this.seq;
  }

  /**
   * Called first by every request handler: resolves when everything that arrived before the
   * request has been applied. Later messages wait until the returned release is called —
   * call it (in `finally`) as soon as the handler's ordered part (appending its events) is done.
   */
  enter(requestId: JsonRpcId): Promise<() => void> {
    const barrier = this.barriers.get(keyOf(requestId));
    if (!barrier) return Promise.resolve(() => undefined);
    return new Promise((resolve) => {
      barrier.enter = () => resolve(() => this.release(barrier.key));
      this.drain();
    });
  }

  /**
   * Holds every later message until the returned release is called: for an apply function that
   * must finish async work (reading a file) before the messages after it are applied.
   */
  pause(): () => void {
    const key = `pause:${++this.pauses}`;
    this.barriers.set(key, { kind: "barrier", seq: this.seq, key, released: false, enter: undefined });
    this.queue.unshift(this.barriers.get(key)!);
    this.drain();
    return () => this.release(key);
  }

  /** Applies `fn` after everything received so far (a local event in wire order). */
  enqueue(fn: () => void): void {
    this.queue.push({ kind: "apply", seq: this.seq, fn });
    this.drain();
  }

  /**
   * The connection is gone: no handler will enter any more, so open barriers are released and
   * the end is applied (once) after whatever is still queued.
   */
  close(): void {
    for (const key of [...this.barriers.keys()]) this.release(key);
    this.enqueue(() => this.end());
  }

  /** Numbers one incoming message; returns whether the SDK should see it. */
  private take(incoming: AnyMessage): boolean {
    const seq = ++this.seq;
    const message: unknown = incoming;
    if (!isRecord(message)) return true;
    const hasId = "id" in message;
    if (typeof message.method === "string") {
      if (!hasId) {
        if (message.method !== "session/update") return true;
        const params = message.params;
        this.queue.push({ kind: "apply", seq, fn: () => this.handlers.update(params, seq) });
        this.drain();
        return false;
      }
      const key = keyOf(message.id as JsonRpcId);
      this.answering.add(key);
      const barrier = { kind: "barrier" as const, seq, key, released: false, enter: undefined };
      this.barriers.set(key, barrier);
      this.queue.push(barrier);
      return true;
    }
    if (hasId) {
      const key = keyOf(message.id as JsonRpcId);
      const answered = this.sentIds.delete(key);
      if (answered) for (const waiter of [...this.answerWaiters]) waiter();
      if (!answered && this.handlers.stray !== undefined) {
        const stray = incoming as AnyResponse;
        this.queue.push({ kind: "apply", seq, fn: () => this.handlers.stray?.(stray) });
        this.drain();
        return false;
      }
      if (this.watchedIds.delete(key)) {
        const response = incoming as AnyResponse;
        this.queue.push({ kind: "apply", seq, fn: () => this.handlers.response(response, seq) });
        this.drain();
      }
    }
    return true;
  }

  private observeOutgoing(outgoing: AnyMessage): void {
    const message: unknown = outgoing;
    if (!isRecord(message) || !("id" in message)) return;
    const key = keyOf(message.id as JsonRpcId);
    if (typeof message.method === "string") {
      this.sentIds.add(key);
      if (this.watchedMethods.has(message.method)) this.watchedIds.add(key);
    } else {
      // Our response to an incoming request: if its handler never entered (the SDK answered
      // by itself, e.g. invalid params), the barrier must not hold the queue any longer.
      this.answering.delete(key);
      this.release(key);
    }
  }

  private release(key: string): void {
    const barrier = this.barriers.get(key);
    if (!barrier) return;
    this.barriers.delete(key);
    barrier.released = true;
    this.drain();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const waiter of [...this.answerWaiters]) waiter();
    this.handlers.end();
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0]!;
        if (head.kind === "apply") {
          this.queue.shift();
          try {
            head.fn();
          } catch (err) {
            this.handlers.failed(err);
          }
          continue;
        }
        if (head.released) {
          this.queue.shift();
          continue;
        }
        // A barrier at the head: let its handler in (once), and wait for its release.
        const enter = head.enter;
        head.enter = undefined;
        enter?.();
        break;
      }
    } finally {
      this.draining = false;
    }
  }
}
