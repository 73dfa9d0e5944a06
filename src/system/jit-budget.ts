import { setFlagsFromString } from "node:v8";

/**
 * The bytecode V8 lets a function run between two looks at whether to optimise it
 * (`--interrupt-budget`) in a gateway: an eighth of V8's default (66 KiB). A keystroke runs each
 * function on its way once, so at V8's default much of that way stays in the baseline tier for
 * thousands of keys, some of it for good; optimised sooner, a running gateway's echo is some 5%
 * faster (docs/benchmarks.md, "A gateway's keys optimised sooner"). `serve` sets it once it
 * listens: its start runs once and would only pay for compiles.
 */
export const SERVE_INTERRUPT_BUDGET = 8192;

/**
 * Gives this process {@link SERVE_INTERRUPT_BUDGET}, unless node's command line names a budget of
 * its own (`node --interrupt-budget=N`), which wins. V8 reads the flag each time it refills a
 * function's budget, so code loaded before this call gets it too (test/system/jit-budget.test.ts).
 * True when set.
 */
export function quickenOptimisation(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((arg) => /^--interrupt[-_]budget(=|$)/.test(arg))) return false;
  setFlagsFromString(`--interrupt-budget=${SERVE_INTERRUPT_BUDGET}`);
  return true;
}
