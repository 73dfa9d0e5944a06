/**
 * Whether the run's log has room for more text: undefined when it has, else a promise that
 * resolves once it has again (the agent layer's `LogRoom`, e.g. `StoreBacklog.room`).
 */
export type RunRoom = () => Promise<void> | undefined;

export interface RunCreditOptions {
  /** The plugin's window: unacknowledged delta characters the runner keeps each run under. */
  windowChars: number;
  /** Largest frame the pipe carries: the runner may overshoot its window by one delta. */
  frameChars: number;
  room: RunRoom;
  /** Sends `agent.ack` for `chars` more characters of the run's deltas. */
  ack(chars: number): void;
  /** The log had no room (`held` true) and acks wait for it, or it has room again (`held` false). */
  onHold(held: boolean): void;
}

/**
 * The host's side of a plugin run's flow control against the runner's window
 * (`limits.agentDeltaWindowChars`): acks what it took, once per pipe read, only when the log has
 * room, so a slow log holds the run back in the plugin without stalling the pipe (heartbeats, other
 * runs), as HTTP/2's WINDOW_UPDATE does per stream. A plugin that sends past its window plus one
 * frame is reported by {@link take} and killed as a protocol violation.
 */
export class RunCredit {
  /** Characters received and not yet acknowledged. */
  private unacked = 0;
  /** Of those, the characters taken and due to be acknowledged at the next ack. */
  private due = 0;
  private scheduled = false;
  private held = false;
  private closed = false;

  constructor(private readonly options: RunCreditOptions) {}

  /** Characters the plugin sent and the host has not acknowledged. */
  get outstandingChars(): number {
    return this.unacked;
  }

  /**
   * Counts `chars` of delta text the plugin sent, to be acknowledged once the log has room.
   * False when the plugin has now sent more than its window allows without an ack.
   */
  take(chars: number): boolean {
    this.unacked += chars;
    if (this.unacked > this.options.windowChars + this.options.frameChars) return false;
    this.due += chars;
    if (!this.scheduled && !this.held && !this.closed) {
      this.scheduled = true;
      // After the frames of this read of the pipe: one ack for all of them.
      queueMicrotask(() => {
        this.scheduled = false;
        this.acknowledge();
      });
    }
    return true;
  }

  /** The run ended: nothing more is acknowledged and a wait for room is let go. Idempotent. */
  close(): void {
    this.closed = true;
  }

  private acknowledge(): void {
    if (this.closed || this.due === 0) return;
    const wait = this.options.room();
    if (wait !== undefined) {
      if (!this.held) {
        this.held = true;
        this.options.onHold(true);
      }
      void wait.then(() => this.acknowledge());
      return;
    }
    if (this.held) {
      this.held = false;
      this.options.onHold(false);
    }
    const chars = this.due;
    this.due = 0;
    this.unacked -= chars;
    this.options.ack(chars);
  }
}
