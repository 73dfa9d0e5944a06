import type { ResetInfo, Subscription, SubscriptionScreen } from "../../src/client/index.js";
import type { SessionEvent } from "../../src/protocol/index.js";
import type { AppContext } from "./context.js";

export interface SessionFeedHandlers {
  onEvent(event: SessionEvent): void;
  /** Retention dropped events the page had not seen. */
  onReset(info: ResetInfo): void;
  /** The session cannot be followed (not found, not allowed, the client closed). */
  onError(error: Error): void;
  /** The gateway confirmed the subscription: from now on `replayed` can become true. */
  onReady(): void;
  /** A PTY session's screen, before the events after it (see {@link SessionFeed}'s `screen`). */
  onScreen?(screen: SubscriptionScreen): void;
}

/**
 * A session page's events: one subscription from seq 0, so the replay rebuilds the page and
 * live events follow on. It remembers the session's head when the subscription started, so
 * it knows when the replay is through (`replayed`); events past that head are news, and also
 * go to the session store, which keeps the list's rows current (and is refreshed once the
 * subscription is confirmed, so that the viewer counts include this page).
 */
export class SessionFeed {
  private readonly sub: Subscription;
  private subscribedHead: number | null = null;
  /** The head when the gateway last confirmed the subscription (after a reconnect: what it missed ends there). */
  private confirmedHead = 0;
  private _lastSeq = 0;

  /**
   * `screen`: a PTY session's screen first (handlers.onScreen), then the events after it, instead of all of them;
   * and a new screen instead of the output whenever the page trails it past LAG_SCREEN_BYTES (`skipped`).
   * `since`: the events after that seq only (a resumed session, followed again past its `lost`).
   */
  constructor(
    ctx: AppContext,
    sessionId: string,
    handlers: SessionFeedHandlers,
    screen = false,
    since = 0,
    lag = screen,
  ) {
    this.sub = ctx.client.subscribe(
      sessionId,
      {
        ...(screen
          ? {
              screen: true as const,
              ...(lag ? { lag: "screen" as const } : {}),
              onScreen: (s: SubscriptionScreen) => handlers.onScreen?.(s),
            }
          : { since }),
        onReset: (info) => handlers.onReset(info),
        onError: (error) => handlers.onError(error),
        onSubscribed: (info) => (this.confirmedHead = info.head),
      },
      (event) => {
        this._lastSeq = event.seq;
        if (this.subscribedHead !== null && event.seq > this.subscribedHead) ctx.store.applyEvent(sessionId, event);
        handlers.onEvent(event);
      },
    );
    this.sub.ready.then(
      (info) => {
        this.subscribedHead = info.head;
        // After a screen, the events before `from` are on it.
        this._lastSeq = Math.max(this._lastSeq, info.from - 1);
        // The list's viewer count now includes this page.
        void ctx.store.refresh();
        handlers.onReady();
      },
      () => undefined, // onError reports it.
    );
  }

  /** The seq of the last event delivered. */
  get lastSeq(): number {
    return this._lastSeq;
  }

  /** Whether event `seq` was in the log when the subscription was last confirmed: history, not live. */
  isHistory(seq: number): boolean {
    return seq <= this.confirmedHead;
  }

  /** Every event up to the head at subscription time has been delivered. */
  get replayed(): boolean {
    return this.subscribedHead !== null && this._lastSeq >= this.subscribedHead;
  }

  dispose(): void {
    this.sub.unsubscribe();
  }
}
