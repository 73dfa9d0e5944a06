import type { Timer } from "../../core/clock.js";
import { LAG_SCREEN_BYTES } from "../../protocol/index.js";
import type { Session } from "../../sessions/session.js";
import type { GatewayCore } from "../context.js";
import { viewerScreen } from "./screen-frame.js";
import type { ViewerScreen } from "./screen-frame.js";

/** What a connection does for its `lag=screen` viewer's jumps (see {@link LagJump}). */
export interface LagTarget {
  /** Stop sending output: a screen is being made. */
  hold(): void;
  /** Send the screen (`skipped`: bytes it skips) and go on from its offset; output is held. */
  apply(screen: ViewerScreen, skipped: number): void;
  /** Send output again from `sentUpTo`, where it was held (the screen is late, or failed). */
  resume(): void;
}

/** What became of one jump, for the logs and tests: a screen, or bytes. */
export type JumpEnd = "screen" | "late-screen" | "bytes-late" | "bytes-failed" | "dropped";

/**
 * One `lag=screen` viewer: counts the output sent or queued to it and, once it trails the log by
 * more than LAG_SCREEN_BYTES, asks for the screen while its output is held. Every jump ends in
 * the screen and output from its offset, or in output from where it was held: at once when the
 * screen fails, after `limits.lagScreenWaitMs` when it is slow. A screen that comes after that is still
 * sent if nothing past its offset was sent meanwhile (else dropped: no byte is shown twice). One
 * screen is asked for at a time, so a starved screen thread is not sent a pile of requests.
 */
export class LagJump {
  /** Output before this byte was sent or queued to the viewer (or skipped by a screen). */
  sentUpTo: number;
  private state: "idle" | "holding" | "late" | "off" = "idle";
  private timer: Timer | undefined;
  private closed = false;

  constructor(
    private readonly core: GatewayCore,
    private readonly session: Session,
    private readonly size: { cols: number | undefined; rows: number | undefined },
    private readonly target: LagTarget,
    sentUpTo: number,
    /** Told how each jump ended (tests). */
    private readonly onEnd: (end: JumpEnd) => void = () => undefined,
  ) {
    this.sentUpTo = sentUpTo;
  }

  /** Output is held for a screen: nothing may be sent. */
  get holding(): boolean {
    return this.state === "holding";
  }

  /** Whether the viewer fell behind and a jump began (output is then held: send nothing). */
  check(): boolean {
    if (this.state !== "idle" || this.closed) return false;
    if (this.session.log.outputBytes - this.sentUpTo <= LAG_SCREEN_BYTES) return false;
    this.state = "holding";
    this.target.hold();
    this.timer = this.core.clock.setTimeout(() => this.late(), this.core.limits.lagScreenWaitMs);
    viewerScreen(this.core, this.session, this.size)
      .then(
        (screen) => this.arrived(screen),
        (error: unknown) => this.failed(error),
      )
      .catch((error: unknown) => {
        // The connection failed to apply it: it sends bytes from where it stopped.
        this.core.logger.error({ err: error, session: this.session.id }, "lag=screen: jump failed");
        this.state = "off";
        if (!this.closed) this.target.resume();
      });
    return true;
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  private late(): void {
    this.timer = undefined;
    if (this.closed || this.state !== "holding") return;
    this.state = "late";
    this.target.resume();
    this.onEnd("bytes-late");
  }

  private arrived(screen: ViewerScreen): void {
    this.timer?.cancel();
    this.timer = undefined;
    if (this.closed) return;
    const was = this.state;
    this.state = "idle";
    const skipped = screen.frame.offset - this.sentUpTo;
    if (was === "holding") {
      this.sentUpTo = Math.max(this.sentUpTo, screen.frame.offset);
      this.target.apply(screen, Math.max(0, skipped));
      this.onEnd("screen");
    } else if (skipped > 0) {
      // Late, and the bytes sent since have not reached its offset: it still saves the rest.
      this.target.hold();
      this.sentUpTo = screen.frame.offset;
      this.target.apply(screen, skipped);
      this.onEnd("late-screen");
    } else {
      this.onEnd("dropped");
    }
  }

  private failed(error: unknown): void {
    this.timer?.cancel();
    this.timer = undefined;
    if (this.closed) return;
    // No screen (the screen thread failed): this viewer gets every byte from now on.
    this.core.logger.warn({ err: error, session: this.session.id }, "lag=screen: no screen, sending every byte");
    const was = this.state;
    this.state = "off";
    if (was === "holding") this.target.resume();
    this.onEnd("bytes-failed");
  }
}
