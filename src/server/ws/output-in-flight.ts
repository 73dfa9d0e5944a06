/**
 * A `lag=screen` viewer's output on its way: sent (or skipped by a screen) up to byte `sent`, and
 * what the client said it took (`taken` frames, on `/v1/ws` and `/ws/session`). What lies between
 * counts as queued: tens of MB can wait in socket buffers, where neither the outbox nor the lag
 * check sees them, and a Ctrl-C's prompt would wait behind them (test/delivery/lag-taken.test.ts).
 * A client that never says `taken` is counted by the outbox alone.
 */
export class OutputInFlight {
  sent: number | undefined;
  private takenUpTo: number | undefined;

  get bytes(): number {
    return this.sent === undefined || this.takenUpTo === undefined ? 0 : Math.max(0, this.sent - this.takenUpTo);
  }

  /** The client took output up to byte `offset`: true when that lowered what is in flight (pump the viewer). */
  taken(offset: number): boolean {
    const before = this.bytes;
    this.takenUpTo = Math.max(this.takenUpTo ?? 0, offset);
    return this.bytes < before;
  }
}
