/**
 * How long output takes from the gateway to this page's script during a flood, beyond the
 * quickest round trip seen: past this the page asks for the screen (TerminalOutput's `behind`).
 * The gateway sees only what waits in its own queue; output it has written can still wait in
 * socket buffers (tens of MB where TCP buffers grow large), seconds away at xterm's pace, and the
 * page's queue holds only what reached the script.
 */
export const PAGE_LAG_MS = 300;
/** Output taken since the last probe ended before the next starts: only a flood is probed, not echoes. */
export const PROBE_BYTES = 256 * 1024;

/**
 * Measures how far output reaching the page trails the gateway: while output floods in, one
 * ping at a time (the gateway answers it after everything it sent before), and `onBehind` once
 * a pong is PAGE_LAG_MS later than the quickest yet (at once, not when it comes).
 */
export class LagProbe {
  private sinceProbe = 0;
  private probing = false;
  /** The quickest round trip measured, ms. */
  private fastest = Infinity;
  private disposed = false;

  constructor(
    private readonly ping: () => Promise<number>,
    private readonly onBehind: () => void,
  ) {}

  /** `bytes` of live output were taken. */
  taken(bytes: number): void {
    this.sinceProbe += bytes;
    if (this.probing || this.disposed || this.sinceProbe < PROBE_BYTES) return;
    this.probing = true;
    this.sinceProbe = 0;
    const limit = (this.fastest === Infinity ? 0 : this.fastest) + PAGE_LAG_MS;
    const timer = setTimeout(() => {
      if (!this.disposed) this.onBehind();
    }, limit);
    this.ping()
      .then((ms) => (this.fastest = Math.min(this.fastest, ms)))
      .catch(() => undefined) // the connection dropped: the reconnect brings the screen
      .finally(() => {
        clearTimeout(timer);
        this.probing = false;
      });
  }

  dispose(): void {
    this.disposed = true;
  }
}
