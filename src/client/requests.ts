import { ClientFrame, SwitchboardError } from "../protocol/index.js";
import type { Ref } from "../protocol/index.js";
import { abortReason, onAbort } from "./abort.js";
import type { AbortOptions } from "./abort.js";
import { ConnectionError } from "./errors.js";

/** A steering request not answered (`ack`/`error`) within this long rejects with TIMEOUT. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** Requests waiting for the connection to come back; more reject with QUEUE_FULL. */
export const MAX_QUEUED_REQUESTS = 1_000;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A `/v1/ws` frame without its `ref` (the client assigns refs). */
export type RequestFrame = DistributiveOmit<Exclude<ClientFrame, { op: "subscribe" | "unsubscribe" | "ping" }>, "ref">;

/** How the client's parts reach its current connection. */
export interface ConnectionLink {
  /** Connected and greeted: a frame sent now reaches the gateway. */
  isOpen(): boolean;
  /** Sends a frame on the current connection, if there is one. */
  send(text: string): void;
}

export interface RequestLink extends ConnectionLink {
  /** A request is waiting: connect if the client is idle. */
  connect(): void;
}

export interface RequestOptions extends AbortOptions {
  /**
   * Runs on the gateway's `ack`, also when the caller has stopped waiting (aborted after the
   * request was sent): for the client's own record of what the gateway applied.
   */
  onAck?: ((result: unknown) => void) | undefined;
}

interface PendingRequest {
  frame: RequestFrame;
  text: string;
  sent: boolean;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  onAck: ((result: unknown) => void) | undefined;
  /** Clears the request's timeout and its abort listener. */
  dispose: () => void;
}

/**
 * Requests on `/v1/ws` matched to their `ack` or `error` by ref, each within the request timeout.
 * Made while disconnected they queue (at most {@link MAX_QUEUED_REQUESTS}) and go out in order on
 * reconnect; one already sent when the link drops rejects with DISCONNECTED (it may have been
 * applied). Aborted: a queued one is never sent, a sent one's answer is dropped.
 */
export class RequestTracker {
  private nextRef = 1;
  private readonly pending = new Map<Ref, PendingRequest>();
  /**
   * Frames whose answer nobody waits for (unsubscribe, aborted requests), with what still runs
   * on their `ack`. Cleared when the connection drops: no answer comes after that.
   */
  private readonly ignored = new Map<Ref, ((result: unknown) => void) | undefined>();

  constructor(
    private readonly link: RequestLink,
    private readonly timeoutMs: number,
  ) {}

  /** A fresh ref for a frame of this client. */
  ref(): Ref {
    return this.nextRef++;
  }

  /** A fresh ref whose `ack` or `error` is dropped. */
  ignoredRef(): Ref {
    const ref = this.ref();
    this.ignored.set(ref, undefined);
    return ref;
  }

  /** Whether requests wait for the connection. */
  get hasQueued(): boolean {
    for (const p of this.pending.values()) if (!p.sent) return true;
    return false;
  }

  /** Requests waiting for their answer or for the connection, and answers that will be dropped. */
  get size(): { pending: number; ignored: number } {
    return { pending: this.pending.size, ignored: this.ignored.size };
  }

  /** Validates and sends (or queues) a request; resolves with its `ack` result. */
  request(frame: RequestFrame, options: RequestOptions = {}): Promise<unknown> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const ref = this.ref();
    const parsed = ClientFrame.safeParse({ ...frame, ref });
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
      return Promise.reject(new SwitchboardError("VALIDATION_FAILED", `${where}${issue?.message ?? "invalid frame"}`));
    }
    if (!this.link.isOpen()) {
      let queued = 0;
      for (const p of this.pending.values()) if (!p.sent) queued++;
      if (queued >= MAX_QUEUED_REQUESTS) {
        return Promise.reject(
          new ConnectionError(
            "QUEUE_FULL",
            `${queued} requests are already waiting for the connection (MAX_QUEUED_REQUESTS)`,
          ),
        );
      }
    }
    return new Promise((resolve, reject) => {
      const entry: PendingRequest = {
        frame,
        text: JSON.stringify(parsed.data),
        sent: false,
        resolve,
        reject,
        onAck: options.onAck,
        dispose: () => {
          clearTimeout(timer);
          offAbort();
        },
      };
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        entry.dispose();
        reject(new ConnectionError("TIMEOUT", `no answer to ${frame.op} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      const offAbort = onAbort(signal, (reason) => {
        this.pending.delete(ref);
        entry.dispose();
        // Already sent, it may still be applied: its answer is dropped, but the client's own
        // record of what the gateway applied (onAck) is kept.
        if (entry.sent) this.ignored.set(ref, entry.onAck);
        reject(reason);
      });
      this.pending.set(ref, entry);
      if (this.link.isOpen()) {
        entry.sent = true;
        this.link.send(entry.text);
      } else {
        this.link.connect();
      }
    });
  }

  /**
   * Sends a request now that no caller awaits: an `error` answer, or the connection dropping
   * or the client closing first, goes to `onError`; an `ack` runs `onAck`; no answer within the
   * timeout is forgotten.
   */
  sendDetached(frame: RequestFrame, onError: (error: Error) => void, onAck?: (result: unknown) => void): void {
    const ref = this.ref();
    const text = JSON.stringify({ ...frame, ref });
    const timer = setTimeout(() => this.pending.delete(ref), this.timeoutMs);
    this.pending.set(ref, {
      frame,
      text,
      sent: true,
      resolve: () => undefined,
      reject: onError,
      onAck,
      dispose: () => clearTimeout(timer),
    });
    this.link.send(text);
  }

  /** The connection is open: sends the queued requests, in order. */
  flush(): void {
    for (const p of this.pending.values()) {
      if (p.sent) continue;
      p.sent = true;
      this.link.send(p.text);
    }
  }

  /** The gateway's `ack` for `ref`. */
  ack(ref: Ref, result: unknown): void {
    if (this.ignored.has(ref)) {
      const onAck = this.ignored.get(ref);
      this.ignored.delete(ref);
      onAck?.(result);
      return;
    }
    const p = this.pending.get(ref);
    if (!p) return;
    this.pending.delete(ref);
    p.dispose();
    p.onAck?.(result);
    p.resolve(result);
  }

  /** The gateway's `error` for `ref`; false when `ref` is no request of this tracker. */
  fail(ref: Ref, error: Error): boolean {
    if (this.ignored.delete(ref)) return true;
    const p = this.pending.get(ref);
    if (!p) return false;
    this.pending.delete(ref);
    p.dispose();
    p.reject(error);
    return true;
  }

  /** The connection dropped: what was sent will not be answered; what waits stays queued. */
  disconnected(cause: Error): void {
    for (const [ref, p] of this.pending) {
      if (!p.sent) continue;
      this.pending.delete(ref);
      p.dispose();
      p.reject(
        new ConnectionError(
          "DISCONNECTED",
          `the connection dropped before the gateway answered ${p.frame.op}; it may or may not have been applied`,
          { cause },
        ),
      );
    }
    this.ignored.clear();
  }

  /** The client closed: every request rejects with `reason`. */
  close(reason: Error): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      p.dispose();
      p.reject(reason);
    }
  }
}
