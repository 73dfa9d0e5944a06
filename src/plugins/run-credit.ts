/**
 * Whether the run's log has room for more text: undefined when it has, else a promise that
 * resolves once it has again (the agent layer's `LogRoom`, e.g. `SessionLog.room`).
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
 * The host's side of one plugin agent run's flow control, the counterpart of the runner's
 * window (`limits.agentDeltaWindowChars`). The runner sends delta text while the run's
 * unacknowledged characters are under the window and queues it in the plugin's process
 * beyond; this acks what the host took — at the end of the current read of the pipe, in one
 * ack — as soon as the run's log has room, and not before. So while the log's store is behind,
 * the run is held back in the plugin without stalling the pipe, which carries heartbeats and
 * the plugin's other runs (HTTP/2 does the same per stream with WINDOW_UPDATE, RFC 9113 §6.9).
 *
 * Nothing from the plugin is trusted: a plugin that bypasses the runner and sends more than its
 * window (plus one frame, the runner's largest overshoot) without acks is reported by
 * {@link take}, and its owner kills it as a protocol violation.
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
