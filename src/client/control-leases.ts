import type { ErrorCode, SessionEvent } from "../protocol/index.js";
import { isSwitchboardError } from "./errors.js";
import type { RequestTracker } from "./requests.js";

export interface ControlLost {
  session: string;
  code: ErrorCode;
  message: string;
  /** Who holds control now, when the gateway said (taken over, or held by someone on reconnect). */
  holder?: string;
  /** CONTROL_LOST: taken over, or expired after this client's silence. */
  reason?: "taken-over" | "expired";
}

/**
 * An acquire on its way (see {@link ControlLeases.asking}): what the session's log said of it
 * before its answer came.
 */
export interface PendingAcquire {
  /**
   * The log's control event named this client's connection as the holder while the acquire was
   * on its way: the gateway granted it, whether or not its answer arrives.
   */
  readonly granted: { holder: string; connId: string } | undefined;
  /** It was answered, or given up: the log's events no longer concern it. */
  done(): void;
}

/**
 * How long after a reconnect a lease held by this client's own name is asked for again: past the
 * gateway's dead-peer detection (two missed pings 15 s apart: 30–45 s), with room to spare.
 */
export const RECLAIM_WINDOW_MS = 50_000;
/** How often it is asked for meanwhile. */
export const RECLAIM_RETRY_MS = 5_000;

/**
 * The control leases a client holds, by session. A lease belongs to a connection, so after a
 * reconnect each is asked for again (without force); one that cannot be had back, or that
 * the gateway reports lost (taken over, expired), is reported through `onLost`, unless its
 * session ended.
 */
export class ControlLeases {
  /**
   * Held leases by session, with the connection each was granted to (its `hello.connId`): the
   * one the gateway keeps it for until it finds that connection dead, however many reconnects
   * came since.
   */
  private readonly held = new Map<string, string | undefined>();
  /** Asks again for leases held by this client's own earlier connection (see {@link reacquireAll}). */
  private readonly retries = new Map<string, ReturnType<typeof setTimeout>>();
  /** Acquires sent and not yet settled, by session (see {@link asking}). */
  private readonly pending = new Map<string, Set<{ granted: PendingAcquire["granted"] }>>();

  constructor(
    private readonly requests: Pick<RequestTracker, "sendDetached">,
    private readonly onLost: (lost: ControlLost) => void,
    /** Sent with each acquire again (see ClientOptions.clientKey). */
    private readonly clientKey?: string,
  ) {}

  /** Whether any lease is held (and so the connection is needed). */
  get any(): boolean {
    return this.held.size > 0;
  }

  /**
   * The gateway granted (`acquire`) or released (`release`) the session's lease. `connId`: the
   * connection whose request it answered (its `hello.connId`), which now holds the lease.
   */
  update(session: string, action: "acquire" | "release", connId: string | undefined): void {
    if (action === "acquire") this.held.set(session, connId);
    else this.held.delete(session);
  }

  /**
   * An acquire of `session` goes out. The gateway publishes its control event before it answers,
   * so a connection that drops between the two took a granted lease with it unanswered: the
   * acquire's {@link PendingAcquire.granted} says so (see {@link controlEvent}), for the caller
   * to hold the lease as if answered, and take it back after the reconnect
   * (ui-reconnect.test.ts, "does not say control was lost when the session ended in a gateway restart").
   */
  asking(session: string): PendingAcquire {
    const entry: { granted: PendingAcquire["granted"] } = { granted: undefined };
    const entries = this.pending.get(session) ?? new Set();
    entries.add(entry);
    this.pending.set(session, entries);
    return {
      get granted() {
        return entry.granted;
      },
      done: () => {
        entries.delete(entry);
        if (entries.size === 0 && this.pending.get(session) === entries) this.pending.delete(session);
      },
    };
  }

  /**
   * The session's log says who holds control now, seen on the connection `connId`: an acquire on
   * its way was granted if it names that connection, and is not if a later one names another
   * holder (the log's last word counts). Only acquires on their way learn from it: the held
   * leases change with answers and `control-lost` alone, since an old event read again (a
   * subscription from the start) may name a lease given back long ago.
   */
  controlEvent(session: string, event: Extract<SessionEvent, { type: "control" }>, connId: string | undefined): void {
    const entries = this.pending.get(session);
    if (entries === undefined) return;
    const holder = event.holder;
    const granted =
      holder !== null && connId !== undefined && holder.connId === connId ? { holder: holder.name, connId } : undefined;
    for (const entry of entries) entry.granted = granted;
  }

  /** The lease on `session` is gone. */
  lost(lost: ControlLost): void {
    this.held.delete(lost.session);
    this.onLost(lost);
  }

  /**
   * The session ended: its lease ended with it (the gateway says nothing then). Forgotten
   * without a `control-lost`, so that it neither keeps the connection wanted nor is asked for
   * again after a reconnect.
   */
  ended(session: string): void {
    this.held.delete(session);
  }

  /**
   * A new connection is open: asks for every held lease again. `connId`: the new connection's
   * `hello.connId`, which holds a lease once the gateway grants it.
   */
  reacquireAll(connId: string): void {
    this.cancelRetries();
    const since = performance.now();
    for (const session of this.held.keys()) this.reacquire(session, since, connId);
  }

  private reacquire(session: string, since: number, connId: string): void {
    this.requests.sendDetached(
      {
        op: "control",
        session,
        action: "acquire",
        ...(this.clientKey !== undefined ? { clientKey: this.clientKey } : {}),
      },
      (error) => {
        // Dropped again: the next reconnect retries, against the connection it was granted to.
        if (!isSwitchboardError(error)) return;
        // The session ended (or was removed) while the client was away: the lease ended with
        // it, as when its end is seen while connected. That is no control lost.
        if (error.code === "SESSION_NOT_RUNNING" || error.code === "SESSION_NOT_FOUND") {
          this.ended(session);
          return;
        }
        // Held by this client's own old connection: after a network drop that nobody closed, the
        // gateway finds it dead and releases its leases within 45 s (missed pings), while this
        // client gave up on it after 25–40 s. Asked again until then, and only then reported lost.
        // That is the connection the lease was granted to, not the one before this reconnect: after
        // two drops in a row the gateway may still hold it for the first.
        const grantedTo = this.held.get(session);
        if (
          error.code === "CONTROL_HELD" &&
          grantedTo !== undefined &&
          error.details?.["holderConnId"] === grantedTo &&
          performance.now() - since < RECLAIM_WINDOW_MS &&
          this.held.has(session)
        ) {
          const timer = setTimeout(() => {
            this.retries.delete(session);
            if (this.held.has(session)) this.reacquire(session, since, connId);
          }, RECLAIM_RETRY_MS);
          (timer as { unref?: () => void }).unref?.();
          this.retries.set(session, timer);
          return;
        }
        const holder = error.details?.["holder"];
        this.lost({
          session,
          code: error.code,
          message: `could not take control back after reconnecting: ${error.message}`,
          ...(typeof holder === "string" ? { holder } : {}),
        });
      },
      // Granted: this connection holds it now (unless it was released or its session ended meanwhile).
      () => {
        if (this.held.has(session)) this.held.set(session, connId);
      },
    );
  }

  private cancelRetries(): void {
    for (const timer of this.retries.values()) clearTimeout(timer);
    this.retries.clear();
  }

  clear(): void {
    this.cancelRetries();
    this.held.clear();
  }
}
