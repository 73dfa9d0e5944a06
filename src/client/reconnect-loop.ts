import type { ErrorCode } from "../protocol/index.js";
import { backoffDelay, INITIAL_CONNECT_ATTEMPTS, RECONNECT_MAX_ATTEMPTS } from "./backoff.js";
import type { BackoffOptions } from "./backoff.js";
import { ConnectionError, isConnectionError, isSwitchboardError } from "./errors.js";

/** A WebSocket that has not said `hello` within this long is given up and retried. */
export const CONNECT_TIMEOUT_MS = 10_000;

/**
 * - `connecting`: the first connection (or the first after `idle`) is being opened;
 * - `open`: connected, `hello` received;
 * - `reconnecting`: the connection dropped and the client will try again after a backoff;
 * - `idle`: disconnected and not trying, because nothing needs the connection (every
 *   subscription has ended); the next subscribe or request reconnects;
 * - `closed`: `close()` was called, or a fatal error (bad token) ended the client.
 */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "idle" | "closed";

export interface StateChange {
  state: ConnectionState;
  previous: ConnectionState;
  /** `reconnecting`: which attempt comes next (1 for the first) and after how long. */
  attempt?: number;
  delayMs?: number;
  /** Why the connection dropped or the client closed, when known. */
  error?: Error;
}

/**
 * A client's connection state and its reconnect loop, shared by `SwitchboardClient` and
 * `TerminalClient`. Every change is reported to `onChange`; nothing changes any more once the
 * state is `closed`. A dropped connection is retried after a jittered exponential backoff
 * until `reconnect.maxAttempts` attempts in a row have failed.
 */
export class ReconnectLoop {
  private _state: ConnectionState = "connecting";
  private attempt = 0;
  private everOpened = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** What the waiting timer runs: kept so that {@link retryNow} can run it early. */
  private pending: (() => void) | undefined;

  constructor(
    private readonly reconnect: BackoffOptions | undefined,
    private readonly onChange: (change: StateChange) => void,
  ) {}

  get state(): ConnectionState {
    return this._state;
  }

  /** Whether a connection was ever open. */
  get hasOpened(): boolean {
    return this.everOpened;
  }

  setState(state: ConnectionState, extra: Omit<StateChange, "state" | "previous"> = {}): void {
    const previous = this._state;
    if (previous === "closed") return;
    this._state = state;
    this.onChange({ state, previous, ...extra });
  }

  /** The connection is open: the count of failed attempts starts over. */
  opened(): void {
    this.everOpened = true;
    this.attempt = 0;
    this.setState("open");
  }

  /** Connecting afresh (from `idle`): the count of failed attempts starts over. */
  restart(): void {
    this.attempt = 0;
    this.setState("connecting");
  }

  /**
   * Whether a failed upgrade ends the client instead of being retried: always for the
   * gateway's refusals in `fatal`; before the first open also when nothing answers at all, or
   * when this was the last of {@link INITIAL_CONNECT_ATTEMPTS}.
   */
  givesUp(why: Error, fatal: readonly ErrorCode[]): boolean {
    return (
      isSwitchboardError(why, ...fatal) ||
      (!this.everOpened && (isConnectionError(why, "UNREACHABLE") || this.attempt + 1 >= INITIAL_CONNECT_ATTEMPTS))
    );
  }

  /**
   * Moves to `reconnecting` and runs `reopen` after the backoff (unless the state changed
   * meanwhile), or calls `giveUp` with UNREACHABLE once `reconnect.maxAttempts` attempts have
   * failed. An error thrown by `reopen` goes to `giveUp` too.
   */
  schedule(error: Error, reopen: () => void, giveUp: (error: Error) => void): void {
    this.attempt++;
    const maxAttempts = this.reconnect?.maxAttempts ?? RECONNECT_MAX_ATTEMPTS;
    if (this.attempt > maxAttempts) {
      giveUp(
        new ConnectionError("UNREACHABLE", `gave up after ${maxAttempts} reconnect attempts: ${error.message}`, {
          cause: error,
        }),
      );
      return;
    }
    const delayMs = backoffDelay(this.attempt, this.reconnect);
    this.setState("reconnecting", { attempt: this.attempt, delayMs, error });
    this.pending = () => {
      this.cancel();
      if (this._state !== "reconnecting") return;
      try {
        reopen();
      } catch (openError) {
        giveUp(openError instanceof Error ? openError : new Error(String(openError)));
      }
    };
    this.timer = setTimeout(this.pending, delayMs);
  }

  /**
   * Runs the waiting attempt now rather than after the rest of its backoff: for a caller that
   * learned the gateway is back (an HTTP request got through). Returns whether one was waiting.
   */
  retryNow(): boolean {
    const pending = this.pending;
    if (pending === undefined || this._state !== "reconnecting") return false;
    pending();
    return true;
  }

  /** Cancels the attempt `schedule` is waiting for, if any. */
  cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
  }
}
