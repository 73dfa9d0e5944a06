import type { Clock } from "../core/clock.js";
import { SwitchboardError } from "../protocol/index.js";
import type { Limits } from "./config/config.js";
import { TokenBucket } from "./http/rate-limit.js";

/**
 * What one connection (or one token's HTTP calls) may send as input: bytes per second
 * (`limits.inputBytesPerSecond`) and messages per second (`limits.inputFramesPerSecond`), each
 * a token bucket with a burst of one second's worth. Each message costs its append to the log
 * and a write to the process however small it is: 100,000 one-byte frames in 3.5 s were within
 * the byte limit and held `/healthz` for over a second (docs/security.md, threat table).
 */
export class InputBudget {
  private readonly bytes: TokenBucket;
  private readonly frames: TokenBucket;

  /** `per`: whose budget it is, as the refusal names it. */
  constructor(
    limits: Pick<Limits, "inputBytesPerSecond" | "inputFramesPerSecond">,
    clock: Clock,
    private readonly per: "connection" | "token" = "connection",
    /** Told of each refusal (a connection stops reading for a while). */
    private readonly onRefused: () => void = () => {},
  ) {
    this.bytes = new TokenBucket(limits.inputBytesPerSecond, clock);
    this.frames = new TokenBucket(limits.inputFramesPerSecond, clock);
  }

  /** Charges one message of `bytes`; throws RATE_LIMITED (naming the limit) and charges nothing when either budget is spent. */
  take(bytes: number): void {
    if (!this.frames.take(1)) {
      this.onRefused();
      throw new SwitchboardError(
        "RATE_LIMITED",
        `input is limited to ${this.frames.ratePerSecond} messages per second per ${this.per} (limits.inputFramesPerSecond): send keystrokes together in one message`,
        { retryAfterSeconds: 1 },
      );
    }
    if (!this.bytes.take(bytes)) {
      this.frames.giveBack(1);
      this.onRefused();
      throw new SwitchboardError(
        "RATE_LIMITED",
        `input is limited to ${this.bytes.ratePerSecond} bytes per second per ${this.per} (limits.inputBytesPerSecond)`,
        { retryAfterSeconds: 1 },
      );
    }
  }

  /** Gives back what a refused message took: it wrote nothing, so it costs nothing. */
  giveBack(bytes: number): void {
    this.frames.giveBack(1);
    this.bytes.giveBack(bytes);
  }
}

/** Input budgets of HTTP callers, one per token name (the names come from the config, so the map is bounded by it). */
export class HttpInputBudgets {
  private readonly budgets = new Map<string, InputBudget>();

  constructor(
    private readonly limits: Pick<Limits, "inputBytesPerSecond" | "inputFramesPerSecond">,
    private readonly clock: Clock,
  ) {}

  of(identity: string): InputBudget {
    let budget = this.budgets.get(identity);
    if (budget === undefined) {
      budget = new InputBudget(this.limits, this.clock, "token");
      this.budgets.set(identity, budget);
    }
    return budget;
  }
}
