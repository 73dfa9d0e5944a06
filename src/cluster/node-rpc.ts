import { randomUUID } from "node:crypto";
import type { Clock, Timer } from "../core/clock.js";
import { SwitchboardError, isErrorCode } from "../protocol/index.js";
import { REDIS_COMMAND_TIMEOUT_MS, duplicateClient, subscriberClient } from "./redis-client.js";
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
/**
 * How long the reader blocks in one `XREAD` (an idle node wakes at this pace), and waits after a
 * failed one. Under REDIS_COMMAND_TIMEOUT_MS, which bounds a read on a connection that went silent.
 */
const READ_BLOCK_MS = REDIS_COMMAND_TIMEOUT_MS - 2_000;
const READ_RETRY_MS = 250;
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
  /** Told of a request dropped or a read that failed (logged by the gateway). */
  onProblem: (what: string, detail: Record<string, unknown>) => void;
}

/** The stream other nodes append their requests to `nodeId` to (one hash tag per node). */
export function requestStreamKey(keyPrefix: string, nodeId: string): string {
  return `${keyPrefix}node:{${nodeId}}:requests`;
}

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
 * Requests from one node to another over Redis (docs/cluster.md, "Requests to the owner"): an
 * entry in the target's request stream (`XADD`), read there on a connection of its own (`XREAD
 * BLOCK`); the answer comes back on the requester's reply channel (`PUBLISH`) by request id.
 * Unanswered within the timeout: NODE_UNAVAILABLE. Requests to one node start in the order they
 * were made (`request` XADDs before it first awaits; the target starts them in stream order).
 * The target trusts whatever arrives in its stream: callers authenticate before they send.
 */
export class NodeRpc {
  private readonly pending = new Map<string, Pending>();
  private readonly timeoutMs: number;
  private subscriber: RedisClient | undefined;
  private reader: RedisClient | undefined;
  private reading: Promise<void> | undefined;
  private closed = false;
  /** Redis's clock minus this node's, in ms: entry ids carry Redis's time. */
  private clockOffset = 0;
  private offsetMeasuredAt = -Infinity;

  constructor(private readonly o: NodeRpcOptions) {
    this.timeoutMs = o.timeoutMs ?? NODE_REQUEST_TIMEOUT_MS;
  }

  /** Subscribes to this node's replies and starts reading its requests from now on. */
  async start(): Promise<void> {
    const subscriber = subscriberClient(this.o.redis);
    this.subscriber = subscriber;
    subscriber.on("error", () => undefined);
    subscriber.on("message", (_channel: string, message: string) => this.settle(message));
    await subscriber.subscribe(replyChannel(this.o.keyPrefix, this.o.nodeId));
    await this.measureClock();
    const reader = duplicateClient(this.o.redis);
    reader.on("error", () => undefined);
    this.reader = reader;
    // From the newest entry now: what comes after is read; older entries are dropped by age anyway.
    const key = requestStreamKey(this.o.keyPrefix, this.o.nodeId);
    const newest = (await this.o.redis.xrevrange(key, "+", "-", "COUNT", 1))[0];
    this.reading = this.readLoop(newest?.[0] ?? "0-0");
  }

  /**
   * Sends `request` to node `nodeId` and resolves with its answer; rethrows the SwitchboardError
   * it answered with, NODE_UNAVAILABLE when no answer came within the timeout.
   */
  async request(nodeId: string, request: unknown): Promise<unknown> {
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
        reject(unavailable(nodeId, `did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
    });
    // The answer (or the timeout) may come while the XADD below is still awaited: handled here so
    // an early refusal is not an unhandled rejection; the caller gets it from `return answer`.
    answer.catch(() => undefined);
    try {
      await this.o.redis.xadd(
        requestStreamKey(this.o.keyPrefix, nodeId),
        "MAXLEN",
        "~",
        NODE_REQUEST_BACKLOG,
        "*",
        "f",
        this.o.nodeId,
        "i",
        id,
        "t",
        String(this.timeoutMs),
        "b",
        body,
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

  private async readLoop(from: string): Promise<void> {
    const key = requestStreamKey(this.o.keyPrefix, this.o.nodeId);
    let last = from;
    while (!this.closed) {
      let batch: Array<[string, Array<[string, string[]]>]> | null;
      try {
        if (this.o.clock.now() - this.offsetMeasuredAt > CLOCK_OFFSET_REFRESH_MS) await this.measureClock();
        batch = (await this.reader!.xread("COUNT", 100, "BLOCK", READ_BLOCK_MS, "STREAMS", key, last)) as typeof batch;
      } catch (error) {
        if (this.closed) return;
        this.o.onProblem("reading this node's requests from Redis failed; retrying", {
          reason: (error as Error).message,
        });
        await new Promise<void>((resolve) => this.o.clock.setTimeout(resolve, READ_RETRY_MS));
        continue;
      }
      for (const [, entries] of batch ?? []) {
        for (const [entryId, fields] of entries) {
          last = entryId;
          this.take(entryId, fields);
        }
      }
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
  if (error instanceof SwitchboardError) return error.toJSON();
  return {
    code: "INTERNAL",
    message: "an unexpected error on the node that runs this session; its log has the details",
  };
}
