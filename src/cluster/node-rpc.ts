import { randomUUID } from "node:crypto";
import type { Clock, Timer } from "../core/clock.js";
import { SwitchboardError, isErrorCode } from "../protocol/index.js";
import { isPublicError } from "../protocol/errors.js";
import { untilAligned } from "../core/clock.js";
import { duplicateClient, oneWriteThisTurn, subscriberClient } from "./redis-client.js";
import type { RedisClient } from "./redis-client.js";

/**
 * How long a node waits for another node's answer to a forwarded request before it answers
 * NODE_UNAVAILABLE; the owner drops a request it reads later than this (see docs/cluster.md,
 * "Requests to the owner"), so a client told NODE_UNAVAILABLE was not acted on by a stalled owner.
 */
export const NODE_REQUEST_TIMEOUT_MS = 5_000;
/** What a request may add to its body (the route, identity, ids) within the request size limit. */
export const NODE_REQUEST_OVERHEAD_BYTES = 64 * 1024;
/** Largest answer a node sends back (forwarded routes answer a session object or less). */
export const NODE_REPLY_MAX_BYTES = 1024 * 1024;
/** Entries a node's request stream keeps (`XADD … MAXLEN ~`): requests nobody reads stay bounded. */
export const NODE_REQUEST_BACKLOG = 1_000;
/** Entries one `XREAD` takes; a full batch is followed by another at once. */
const READ_COUNT = 100;
/** How long the reader waits after a failed read before it reads again. */
const READ_RETRY_MS = 250;
/**
 * How often the reader reads its stream without being told to, by default: a request whose
 * notice was lost (the reader's channel reconnecting as it was published) waits at most this.
 */
export const NODE_REQUEST_SWEEP_MS = 3_333;
/** How often the offset between this node's clock and Redis's is measured again. */
const CLOCK_OFFSET_REFRESH_MS = 60_000;

/** What a node answers a request with: a JSON value, or a SwitchboardError thrown. */
export type NodeRequestHandler = (request: unknown) => Promise<unknown>;

export interface NodeRpcOptions {
  redis: RedisClient;
  keyPrefix: string;
  nodeId: string;
  clock: Clock;
  /** Answers the requests other nodes send to this one. */
  handle: NodeRequestHandler;
  /** Largest request (its JSON) this node sends or takes: PAYLOAD_TOO_LARGE past it. */
  maxRequestBytes: number;
  /** Default {@link NODE_REQUEST_TIMEOUT_MS}; `cluster.requestTimeoutMs` sets it. */
  timeoutMs?: number;
  /**
   * How often the stream is read without a notice (default {@link NODE_REQUEST_SWEEP_MS}); the
   * gateway passes its lease's idle renewal period, so that the two share an idle node's wake-ups.
   */
  sweepMs?: number;
  /** Whether this node shows no session: then its sweeps read on the main connection (see sweepSoon). */
  idle?: () => boolean;
  /** Told of a request dropped or a read that failed (logged by the gateway). */
  onProblem: (what: string, detail: Record<string, unknown>) => void;
}

/** The stream other nodes append their requests to `nodeId` to (one hash tag per node). */
export function requestStreamKey(keyPrefix: string, nodeId: string): string {
  return `${keyPrefix}node:{${nodeId}}:requests`;
}

/** The channel `nodeId` is told on that its request stream has a new entry. */
export function requestChannel(keyPrefix: string, nodeId: string): string {
  return `${keyPrefix}node:{${nodeId}}:requested`;
}

/**
 * Appends a request to the target's stream and tells the target, in one step: the notice never
 * arrives before the entry can be read (with Redis Cluster, the two would go to different nodes).
 */
const SEND = `local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'f', ARGV[2], 'i', ARGV[3], 't', ARGV[4], 'b', ARGV[5])
redis.call('PUBLISH', ARGV[6], id)
return id`;

/** The channel `nodeId` hears the answers to its own requests on. */
export function replyChannel(keyPrefix: string, nodeId: string): string {
  return `${keyPrefix}node:{${nodeId}}:replies`;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: unknown): void;
  timer: Timer;
}

/**
 * Requests between nodes over Redis (docs/cluster.md, "Requests to the owner"): an entry in the
 * target's request stream and a notice on its channel, in one script; the target reads its
 * stream when told, and every `sweepMs`. The answer comes back on the requester's reply channel
 * by request id; none within the timeout is NODE_UNAVAILABLE. Requests to one node start in the
 * order they were made. The target trusts its stream: callers authenticate before they send.
 */
export class NodeRpc {
  private readonly pending = new Map<string, Pending>();
  private readonly timeoutMs: number;
  private readonly sweepMs: number;
  private subscriber: RedisClient | undefined;
  private reader: RedisClient | undefined;
  /** The last entry of this node's stream it read (and started, or dropped). */
  private last = "0-0";
  /** A read is under way; `readAgain`: told of more during it, so it reads once more. */
  private reading: Promise<void> | undefined;
  private readAgain = false;
  private sweepTimer: Timer | undefined;
  private retryTimer: Timer | undefined;
  private closed = false;
  /** Redis's clock minus this node's, in ms: entry ids carry Redis's time. */
  private clockOffset = 0;
  private offsetMeasuredAt = -Infinity;

  constructor(private readonly o: NodeRpcOptions) {
    this.timeoutMs = o.timeoutMs ?? NODE_REQUEST_TIMEOUT_MS;
    this.sweepMs = o.sweepMs ?? NODE_REQUEST_SWEEP_MS;
  }

  /** Subscribes to this node's replies and starts reading its requests from now on. */
  async start(): Promise<void> {
    const requested = requestChannel(this.o.keyPrefix, this.o.nodeId);
    const subscriber = subscriberClient(this.o.redis);
    this.subscriber = subscriber;
    subscriber.on("error", () => undefined);
    subscriber.on("message", (channel: string, message: string) =>
      channel === requested ? this.read() : this.settle(message),
    );
    await subscriber.subscribe(replyChannel(this.o.keyPrefix, this.o.nodeId), requested);
    // Back after a drop: what was notified meanwhile is read once the channels are subscribed
    // again (ioredis resubscribes right after "ready"; the PING answers behind that).
    subscriber.on("ready", () => {
      this.read();
      subscriber.ping().then(
        () => this.read(),
        () => undefined,
      );
    });
    await this.measureClock();
    const reader = duplicateClient(this.o.redis);
    reader.on("error", () => undefined);
    // From the newest entry now: what comes after is read; older entries are dropped by age anyway.
    const key = requestStreamKey(this.o.keyPrefix, this.o.nodeId);
    this.last = (await this.o.redis.xrevrange(key, "+", "-", "COUNT", 1))[0]?.[0] ?? "0-0";
    this.reader = reader;
    this.read();
    await this.reading;
    // A read in flight when its connection drops fails (failSentOnDrop): read again once back.
    reader.on("ready", () => this.read());
    this.sweepSoon();
  }

  /**
   * Sends `request` to node `nodeId` and resolves with its answer; rethrows the SwitchboardError
   * it answered with, NODE_UNAVAILABLE when no answer came within the timeout (this node's, or
   * `o.timeoutMs` for this request: a search fan-out waits less than a change does).
   */
  async request(nodeId: string, request: unknown, o: { timeoutMs?: number } = {}): Promise<unknown> {
    const timeoutMs = o.timeoutMs ?? this.timeoutMs;
    if (this.closed) throw new SwitchboardError("SHUTTING_DOWN", "the gateway is shutting down");
    const body = JSON.stringify(request);
    if (Buffer.byteLength(body) > this.o.maxRequestBytes) {
      throw new SwitchboardError(
        "PAYLOAD_TOO_LARGE",
        `the request is larger than ${this.o.maxRequestBytes} bytes, the most one node forwards to another (limits.bodyBytes)`,
      );
    }
    const id = randomUUID();
    const answer = new Promise<unknown>((resolve, reject) => {
      const timer = this.o.clock.setTimeout(() => {
        this.pending.delete(id);
        reject(unavailable(nodeId, `did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
    });
    // The answer (or the timeout) may come while the XADD below is still awaited: handled here so
    // an early refusal is not an unhandled rejection; the caller gets it from `return answer`.
    answer.catch(() => undefined);
    try {
      await this.o.redis.eval(
        SEND,
        1,
        requestStreamKey(this.o.keyPrefix, nodeId),
        NODE_REQUEST_BACKLOG,
        this.o.nodeId,
        id,
        String(timeoutMs),
        body,
        requestChannel(this.o.keyPrefix, nodeId),
      );
    } catch (error) {
      this.drop(id);
      throw unavailable(nodeId, `could not be reached through Redis (${(error as Error).message})`);
    }
    return answer;
  }

  /** Stops reading, fails what waits (SHUTTING_DOWN) and closes both connections; idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [id, p] of this.pending) {
      this.drop(id);
      p.reject(new SwitchboardError("SHUTTING_DOWN", "the gateway is shutting down"));
    }
    this.sweepTimer?.cancel();
    this.retryTimer?.cancel();
    this.subscriber?.disconnect();
    this.reader?.disconnect();
    await this.reading;
  }

  private drop(id: string): void {
    this.pending.get(id)?.timer.cancel();
    this.pending.delete(id);
  }

  private async measureClock(): Promise<void> {
    const before = this.o.clock.now();
    const [seconds, micros] = (await this.o.redis.time()) as [number | string, number | string];
    const after = this.o.clock.now();
    this.clockOffset = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - (before + after) / 2;
    this.offsetMeasuredAt = after;
  }

  /**
   * Reads the stream every `sweepMs`, on instants aligned with the lease's renewals. While the node
   * is idle, on the main connection in the same write as the renewal, so that one answer wakes it
   * for both (docs/benchmarks.md, "Idle cluster node"); otherwise on the reader's own, since on the
   * main one a sweep could wait behind a flood's appends, and every notice's read behind it.
   */
  private sweepSoon(): void {
    if (this.closed) return;
    this.sweepTimer = this.o.clock.setTimeout(
      () => {
        const alongside = this.o.idle?.() === true;
        if (alongside) oneWriteThisTurn(this.o.redis);
        this.read(alongside ? this.o.redis : undefined);
        this.sweepSoon();
      },
      untilAligned(this.o.clock, this.sweepMs),
    );
  }

  /**
   * Reads what the stream holds past the last entry read; told during a read, it reads again after
   * it. `via`: the connection of the first read (reads again go on the reader's own).
   */
  private read(via?: RedisClient): void {
    if (this.closed || this.reader === undefined) return;
    if (this.reading !== undefined) {
      this.readAgain = true;
      return;
    }
    this.reading = this.readAll(via ?? this.reader);
  }

  private async readAll(via: RedisClient): Promise<void> {
    const key = requestStreamKey(this.o.keyPrefix, this.o.nodeId);
    try {
      do {
        this.readAgain = false;
        let batch: Array<[string, Array<[string, string[]]>]> | null;
        try {
          if (this.o.clock.now() - this.offsetMeasuredAt > CLOCK_OFFSET_REFRESH_MS) await this.measureClock();
          batch = (await via.xread("COUNT", READ_COUNT, "STREAMS", key, this.last)) as typeof batch;
          via = this.reader!;
        } catch (error) {
          if (this.closed) return;
          this.o.onProblem("reading this node's requests from Redis failed; retrying", {
            reason: (error as Error).message,
          });
          this.retryTimer ??= this.o.clock.setTimeout(() => {
            this.retryTimer = undefined;
            this.read();
          }, READ_RETRY_MS);
          return;
        }
        let read = 0;
        for (const [, entries] of batch ?? []) {
          for (const [entryId, fields] of entries) {
            this.last = entryId;
            read++;
            this.take(entryId, fields);
          }
        }
        if (read >= READ_COUNT) this.readAgain = true;
      } while (this.readAgain && !this.closed);
    } finally {
      // Before any await: a notice from now on starts a read of its own.
      this.reading = undefined;
    }
  }

  /** Starts answering one request; requests are started in stream order, each answered when done. */
  private take(entryId: string, fields: string[]): void {
    // Names at even positions only: a value may equal a name (a node called "b").
    const field = (name: string) => {
      for (let at = 0; at + 1 < fields.length; at += 2) if (fields[at] === name) return fields[at + 1];
      return undefined;
    };
    const from = field("f");
    const id = field("i");
    const body = field("b");
    const timeoutMs = Number(field("t"));
    if (from === undefined || id === undefined || body === undefined || !Number.isFinite(timeoutMs)) {
      this.o.onProblem("a malformed request in this node's request stream was dropped", { entryId });
      return;
    }
    const age = this.o.clock.now() + this.clockOffset - Number(entryId.split("-")[0]);
    if (age > timeoutMs) {
      // Its sender has answered NODE_UNAVAILABLE already: acting on it now would contradict that.
      this.o.onProblem("a request read after its sender stopped waiting was dropped", { from, ageMs: Math.round(age) });
      return;
    }
    let answering: Promise<unknown>;
    if (Buffer.byteLength(body) > this.o.maxRequestBytes) {
      answering = Promise.reject(
        new SwitchboardError("PAYLOAD_TOO_LARGE", `the request is larger than ${this.o.maxRequestBytes} bytes`),
      );
    } else {
      try {
        answering = this.o.handle(JSON.parse(body));
      } catch (error) {
        answering = Promise.reject(error);
      }
    }
    void answering
      .then(
        (value) => ({ i: id, v: value }),
        (error: unknown) => ({ i: id, e: wireError(error) }),
      )
      .then((reply) => {
        let text = JSON.stringify(reply);
        if (Buffer.byteLength(text) > NODE_REPLY_MAX_BYTES) {
          text = JSON.stringify({
            i: id,
            e: { code: "INTERNAL", message: `the owner's answer is larger than ${NODE_REPLY_MAX_BYTES} bytes` },
          });
        }
        return this.o.redis.publish(replyChannel(this.o.keyPrefix, from), text);
      })
      .catch((error: unknown) =>
        this.o.onProblem("an answer to another node could not be sent; it answers NODE_UNAVAILABLE", {
          from,
          reason: (error as Error).message,
        }),
      );
  }

  /** An answer on this node's reply channel: settles the request waiting for it, if one still does. */
  private settle(message: string): void {
    let reply: { i?: unknown; v?: unknown; e?: { code?: unknown; message?: unknown; [k: string]: unknown } };
    try {
      reply = JSON.parse(message) as typeof reply;
    } catch {
      // Only nodes publish here; a malformed answer is reported and its request times out.
      this.o.onProblem("a malformed answer on this node's reply channel was dropped", { bytes: message.length });
      return;
    }
    if (typeof reply.i !== "string") return;
    const p = this.pending.get(reply.i);
    if (p === undefined) return;
    this.drop(reply.i);
    if (reply.e === undefined) {
      p.resolve(reply.v);
      return;
    }
    const { code, message: text, ...details } = reply.e;
    p.reject(
      typeof code === "string" && isErrorCode(code) && typeof text === "string"
        ? new SwitchboardError(code, text, Object.keys(details).length > 0 ? details : undefined)
        : new SwitchboardError("INTERNAL", "another node answered with an error this node cannot read"),
    );
  }
}

function unavailable(nodeId: string, why: string): SwitchboardError {
  return new SwitchboardError(
    "NODE_UNAVAILABLE",
    `node ${nodeId}, which runs this session, ${why}; retry later, or check that node (its process, its link to Redis)`,
    { node: nodeId },
  );
}

/** An error as it crosses to the requesting node: a SwitchboardError as is, anything else as INTERNAL. */
function wireError(error: unknown): Record<string, unknown> {
  if (isPublicError(error)) return error.toJSON();
  return {
    code: "INTERNAL",
    message: "an unexpected error on the node that runs this session; its log has the details",
  };
}
