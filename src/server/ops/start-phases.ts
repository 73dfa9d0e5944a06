/**
 * The steps of a gateway's start, in order (gateway.ts, `openGateway`): `boot` is the process's
 * own start (Node, the modules) up to `startGateway`; `listen` ends when connections are accepted;
 * `screens` is what was left of the screen thread's boot once the rest had started.
 */
export type StartPhase =
  "boot" | "dataDir" | "log" | "restore" | "core" | "cluster" | "pruner" | "listen" | "plugins" | "screens";

/**
 * How long each step of a start took (ms, wall clock): logged with "gateway started", so a slow
 * start after a restart with many held sessions names its step (docs/benchmarks.md, "scale").
 */
export class StartPhases {
  private readonly ms: Partial<Record<StartPhase, number>> = {};
  private last: number;

  constructor() {
    // performance.now() counts from the process's start: what came before startGateway is `boot`.
    this.last = 0;
    this.done("boot");
  }

  /** `phase` ended now: it took the time since the previous one ended. */
  done(phase: StartPhase): void {
    const now = performance.now();
    this.ms[phase] = Math.round(now - this.last);
    this.last = now;
  }

  /** The steps so far, in ms, and `total` since the process started. */
  get summary(): Partial<Record<StartPhase | "total", number>> {
    return { ...this.ms, total: Math.round(this.last) };
  }
}
