import { Script, createContext } from "node:vm";
import { SwitchboardError } from "../protocol/errors.js";

/**
 * CPU time one match of a caller's pattern may use. A pattern is the caller's code: one with
 * catastrophic backtracking (`^(a+)+$`) would otherwise hold the server's only thread, so no
 * timeout, cancel or other tool call could run again.
 */
export const MATCH_TIME_LIMIT_MS = 100;
/**
 * Wall time after which a match is refused however little CPU time it got: the longest a match
 * holds the server's thread on a machine so loaded that the process hardly runs.
 */
export const MATCH_WALL_LIMIT_MS = 5_000;

/** Runs `pattern.exec(text)` (V8 interrupts a regex on a vm timeout). */
const EXEC = new Script("pattern.exec(text)");

/** A caller's pattern took too long on the output: the wait ends with this. */
export class PatternTooSlow extends SwitchboardError {
  override readonly name: string = "PatternTooSlow";
  constructor(message: string) {
    super("VALIDATION_FAILED", message);
  }
}

/** CPU time this process has used, in milliseconds. */
function processCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/**
 * A caller's regular expression with a bound on its CPU time. vm's `timeout` counts wall time, so
 * on a loaded machine an easy match "timed out" (test/mcp/tools.test.ts failed 1 run in 10); a run
 * that timed out on less CPU is retried with what is left, up to {@link MATCH_TIME_LIMIT_MS} of CPU
 * (or {@link MATCH_WALL_LIMIT_MS} of wall time).
 */
export class BoundedPattern {
  private readonly context: { pattern: RegExp; text: string };

  constructor(pattern: RegExp) {
    this.context = createContext({ pattern, text: "" }) as { pattern: RegExp; text: string };
  }

  /** What the pattern matches in `text` (the first match), or undefined. Throws {@link PatternTooSlow}. */
  exec(text: string): string | undefined {
    return this.find(text)?.match;
  }

  /** The first match in `text` and where it starts, or undefined. Throws {@link PatternTooSlow}. */
  find(text: string): { match: string; index: number } | undefined {
    this.context.text = text;
    const started = performance.now();
    let cpuMs = 0;
    for (;;) {
      const before = processCpuMs();
      let match: RegExpExecArray | null;
      try {
        // The vm wants whole milliseconds, at least 1.
        const timeout = Math.max(1, Math.ceil(MATCH_TIME_LIMIT_MS - cpuMs));
        match = EXEC.runInContext(this.context, { timeout }) as RegExpExecArray | null;
      } catch (error) {
        if ((error as { code?: unknown }).code !== "ERR_SCRIPT_EXECUTION_TIMEOUT") throw error;
        cpuMs += processCpuMs() - before;
        if (cpuMs < MATCH_TIME_LIMIT_MS && performance.now() - started < MATCH_WALL_LIMIT_MS) continue;
        throw new PatternTooSlow(
          `the pattern ran over ${MATCH_TIME_LIMIT_MS} ms on the output (nested repetition like (a+)+ backtracks without end); simplify it`,
        );
      }
      return match === null ? undefined : { match: match[0], index: match.index };
    }
  }
}
