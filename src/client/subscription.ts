import { SwitchboardError, isSessionEnd } from "../protocol/index.js";
import type { AgentState, EventType, Ref, ResetReason, SessionEvent } from "../protocol/index.js";
import { abortReason, noAbortListener, onAbort } from "./abort.js";
import { handledDeferred } from "./deferred.js";
import { ConnectionError } from "./errors.js";
import type { SessionScreen } from "./screen.js";

export interface SubscribeOptions {
  /** The last seq you already have: delivery starts at `since + 1`. Default 0 (from the start of what is retained). */
  since?: number;
  /** Only these event types reach `onEvent`. The subscription still sees `exit`/`lost` to know when the session ended. */
  types?: readonly EventType[];
  /** Retention dropped events this subscription had not seen: it continues from `info.first`. */
  onReset?: (info: ResetInfo) => void;
  /** The gateway refused the subscription (e.g. SESSION_NOT_FOUND), or the client gave up. Also rejects `ready`/`done`. */
  onError?: (error: Error) => void;
  /**
   * The gateway confirmed the subscription: at first, and again after every reconnect. Events up
   * to `info.head` were in the log already (history: what a reconnect missed comes so), later
   * ones are live. A terminal that shows the output can tell that way which queries in it a
   * program is asking now.
   */
  onSubscribed?: (info: SubscribedInfo) => void;
  /**
   * A PTY session's screen first ({@link onScreen}), then the events after it, instead of its
   * whole history: `true` (at the PTY's size: the whole terminal, scrollback included), or the
   * viewer's size. Asked for while the subscription has seen nothing (no `since`); a reconnect
   * resumes by seq. A session without a PTY fails the subscription (WRONG_SESSION_KIND).
   */
  screen?: true | { cols: number; rows: number };
  /**
   * The screen `screen` asked for: write `data`, then the output events that follow, skipping
   * bytes before `offset` (the first may begin before it).
   */
  onScreen?: (screen: SubscriptionScreen) => void;
  /**
   * `"screen"`, for a human watching a PTY session: once the subscription trails the output by
   * more than LAG_SCREEN_BYTES, {@link onScreen} gets the screen with `skipped` (the bytes it
   * skips, kept in the log) instead of those events. Only for a subscription alone on its
   * session; without it every event comes. The client tells the gateway what reached `onEvent`
   * (`taken` frames), so output waiting in socket buffers counts as trailing too.
   */
  lag?: "screen";
  /**
   * Stops the subscription as `unsubscribe()` does (nothing more is delivered; the gateway is
   * told), except that `ready` and `done`, if still waiting, reject with the signal's reason.
   * `onError` does not hear of it: the caller aborted. An already-aborted signal subscribes nothing.
   */
  signal?: AbortSignal | undefined;
}

/** The screen subscribe's `screen` asked for. */
export type SubscriptionScreen = SessionScreen;

export interface ResetInfo {
  reason: ResetReason;
  /** The oldest seq still retained: delivery continues there. */
  first: number;
  head: number;
  /** The last seq this subscription had before the gap. */
  lastSeq: number;
}

export interface SubscribedInfo {
  /** The first seq the gateway will deliver. */
  from: number;
  /** The session's head when the subscription started. */
  head: number;
  /**
   * An agent session's state (modes, model, commands, usage, title) as of event `agentState.seq`;
   * keep it current with `reduceAgentState` over the `agent.*` events that follow.
   */
  agentState?: AgentState;
}

/**
 * One consumer's interest in one session's events. It remembers the last seq it saw, so the
 * client can resume it after a reconnect, and drops anything at or below it, so a replay
 * never produces a duplicate. Created by {@link SwitchboardClient.subscribe}.
 */
export class Subscription {
  readonly session: string;
  /** Resolves when the gateway confirmed the subscription (first time only). */
  readonly ready: Promise<SubscribedInfo>;
  /**
   * Resolves with the session's last event (`exit`/`lost`) once delivered — or, when `since`
   * was already at or past it (a saved position), as soon as the gateway confirms, without
   * delivering it again. Resolves with `undefined` after `unsubscribe()`.
   */
  readonly done: Promise<SessionEvent | undefined>;
  private readonly wanted: ReadonlySet<string> | undefined;
  private readonly onEvent: (event: SessionEvent) => void;
  private readonly options: SubscribeOptions;
  private readonly settleReady = handledDeferred<SubscribedInfo>();
  private readonly settleDone = handledDeferred<SessionEvent | undefined>();
  private readonly detach: (sub: Subscription) => void;
  private _lastSeq: number;
  /** The log's head when the gateway last confirmed: a `lost` below it has a resume after it. */
  private confirmedHead = 0;
  private _state: "live" | "ended" | "closed" = "live";
  private confirmed = false;
  private offAbort: () => void = noAbortListener;
  /**
   * The ref of the subscribe request this subscription waits for. Until the gateway answers
   * it, frames for the session still come from the gateway's previous position on this
   * connection (which may be past this subscription's `lastSeq`: a subscription that joined
   * later, from an earlier seq) and are not for this subscription.
   */
  private gate: Ref | undefined;
  /** The screen came, and the subscription's `from` has not yet: its position is set by it. */
  private screenCame = false;

  /** @internal Use {@link SwitchboardClient.subscribe}. */
  constructor(
    session: string,
    options: SubscribeOptions,
    onEvent: (event: SessionEvent) => void,
    detach: (sub: Subscription) => void,
  ) {
    this.session = session;
    this.options = options;
    this.onEvent = onEvent;
    this.detach = detach;
    this._lastSeq = options.since ?? 0;
    this.wanted = options.types && options.types.length > 0 ? new Set(options.types) : undefined;
    this.ready = this.settleReady.promise;
    this.done = this.settleDone.promise;
    const signal = options.signal;
    if (signal?.aborted) {
      // Never added to its channel: nothing to detach.
      this.abandon(abortReason(signal));
      return;
    }
    this.offAbort = onAbort(signal, (reason) => {
      if (this.abandon(reason)) this.detach(this);
    });
  }

  /** The screen to ask the gateway for: `screen` was asked and nothing was seen yet. */
  get wantsScreen(): true | { cols: number; rows: number } | undefined {
    return this._lastSeq === 0 && !this.screenCame && this._state === "live" ? this.options.screen : undefined;
  }

  /** The `lag` to ask the gateway for. */
  get wantsLag(): "screen" | undefined {
    return this.options.lag;
  }

  /** The gateway's `screen`, answering the subscribe request `ref` (or, with `lag`, skipping output). */
  screen(ref: Ref | undefined, screen: SubscriptionScreen): void {
    if (screen.skipped !== undefined) {
      if (this.gate === undefined && this._state === "live" && this.options.lag !== undefined)
        this.options.onScreen?.(screen);
      return;
    }
    if (this.gate === undefined || ref !== this.gate || this.options.screen === undefined) return;
    this.screenCame = true;
    this.options.onScreen?.(screen);
  }

  /** The last seq this subscription has seen: resume from here. */
  get lastSeq(): number {
    return this._lastSeq;
  }

  /** True once the session's last event (`exit`/`lost`) was delivered. */
  get ended(): boolean {
    return this._state === "ended";
  }

  /** Still following the session: not ended, not unsubscribed, not failed. */
  get live(): boolean {
    return this._state === "live";
  }

  /** The types the gateway must send for this subscription, or undefined for all. */
  get serverTypes(): readonly string[] | undefined {
    if (!this.wanted) return undefined;
    return [...new Set([...this.wanted, "exit", "lost"])];
  }

  /**
   * Stops delivery. `done` resolves with `undefined`; `ready`, if the gateway had not confirmed
   * the subscription yet, rejects with `ConnectionError` CLOSED. Idempotent.
   */
  unsubscribe(): void {
    this.stop("unsubscribed before the gateway confirmed the subscription");
  }

  /** @internal The client was closed: stops as `unsubscribe()` does, saying so. */
  clientClosed(): void {
    this.stop("the client was closed before the gateway confirmed the subscription");
  }

  private stop(why: string): void {
    if (this._state !== "live") return;
    this.end("closed");
    this.settleReady.reject(new ConnectionError("CLOSED", why));
    this.settleDone.resolve(undefined);
    this.detach(this);
  }

  /** The signal aborted: stops like `unsubscribe()`, with `reason` for `ready` and `done`. False when it had stopped already. */
  private abandon(reason: unknown): boolean {
    if (this._state !== "live") return false;
    this.end("closed");
    this.settleReady.reject(reason);
    this.settleDone.reject(reason);
    return true;
  }

  /** Leaves `live` for good; the abort listener goes with it. */
  private end(state: "ended" | "closed"): void {
    this._state = state;
    this.offAbort();
  }

  /** @internal A (re)subscribe with `ref` was sent: ignore frames until the gateway answers it. */
  awaitConfirmation(ref: Ref): void {
    this.gate = ref;
  }

  /**
   * @internal The gateway answered the subscribe request `ref`. `end` is the session's last
   * event when the session ended at or before the position asked for: this subscription has
   * seen it already (it is not delivered again) and is complete. Returns true when it ended.
   */
  confirm(ref: Ref | undefined, info: SubscribedInfo, end?: SessionEvent): boolean {
    if (this.gate === undefined || ref !== this.gate) return false;
    this.gate = undefined;
    // After a screen, the events it shows are seen.
    if (this.screenCame && this._lastSeq === 0) this._lastSeq = info.from - 1;
    if (this._lastSeq > info.head) {
      // The gateway checked the position of the session's earliest subscriber on this
      // connection, not this one's: refuse it as the gateway refuses such a `since` on its own,
      // rather than wait for events it will never get.
      this.fail(
        new SwitchboardError("BAD_REQUEST", `since=${this._lastSeq} is past the head (${info.head}) of this session`, {
          head: info.head,
        }),
      );
      return true;
    }
    this.confirmedHead = info.head;
    this.markReady(info);
    this.options.onSubscribed?.(info);
    if (end === undefined || this._state !== "live" || end.seq > this._lastSeq) return false;
    this.end("ended");
    this.settleDone.resolve(end);
    return true;
  }

  private markReady(info: SubscribedInfo): void {
    if (this.confirmed) return;
    this.confirmed = true;
    this.settleReady.resolve(info);
  }

  /**
   * @internal Offers an event. Returns true when it ended the subscription. Events at or
   * below the last seq are replays of what was already delivered and are dropped.
   */
  deliver(event: SessionEvent): boolean {
    if (this._state !== "live" || this.gate !== undefined || event.seq <= this._lastSeq) return false;
    this._lastSeq = event.seq;
    // A lost agent session may be resumed: a `lost` the log already went on past is no end.
    const last = isSessionEnd(event) && !(event.type === "lost" && event.seq < this.confirmedHead);
    if (last) {
      // Complete before onEvent sees the end: a callback that unsubscribes or closes the client
      // on the exit finds nothing left to stop, and `done` still gives the exit, not undefined.
      this.end("ended");
      this.markReady({ from: event.seq, head: event.seq });
      this.settleDone.resolve(event);
    }
    if (!this.wanted || this.wanted.has(event.type)) {
      try {
        this.onEvent(event);
      } catch (error) {
        // The caller's bug must not cost other subscribers this event or stop the batch:
        // surface it as an uncaught error on its own, outside the delivery loop.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
    return last;
  }

  /** @internal Retention dropped what this subscription still needed. */
  reset(reason: ResetReason, first: number, head: number): void {
    if (this._state !== "live" || this.gate !== undefined || this._lastSeq >= first - 1) return;
    const lastSeq = this._lastSeq;
    this._lastSeq = first - 1;
    this.options.onReset?.({ reason, first, head, lastSeq });
  }

  /** @internal The gateway refused it, or the client gave up or was closed. */
  fail(error: Error): void {
    if (this._state !== "live") return;
    this.end("closed");
    this.settleReady.reject(error);
    this.settleDone.reject(error);
    this.options.onError?.(error);
  }
}
