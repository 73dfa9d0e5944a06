import type { ErrorCode } from "../protocol/index.js";
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
