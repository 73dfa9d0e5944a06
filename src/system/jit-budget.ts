import { setFlagsFromString } from "node:v8";

/**
 * The bytecode V8 lets a function run between two looks at whether to optimise it
 * (`--interrupt-budget`), when SWITCHBOARD_V8_INTERRUPT_BUDGET asks for a smaller one than V8's
 * default (66 KiB). A keystroke runs each function on its way once, so at V8's default much of
 * that way stays in the baseline tier for thousands of keys; at 8,192 a running gateway's echo
 * was some 5% faster, at the cost of compiles in its first minutes (docs/benchmarks.md, "A
 * gateway's keys optimised sooner"). Off by default: that CPU, beside a loaded host's other
 * work, was enough to stall a cluster test's node past a short lease (docs/operations.md,
 * "Keystroke latency").
 */
export const INTERRUPT_BUDGET_ENV = "SWITCHBOARD_V8_INTERRUPT_BUDGET";

/** The smallest budget taken: below it V8 would spend more on looking than on running. */
export const INTERRUPT_BUDGET_MIN = 1024;

/**
 * Gives this process the budget `env` names, unless node's command line names one of its own
 * (`node --interrupt-budget=N`), which wins. V8 reads the flag each time it refills a function's
 * budget, so code loaded before this call gets it too (test/system/jit-budget.test.ts). Returns
 * the budget set, undefined when none was, or a problem to report for a value that is not a whole
 * number of at least {@link INTERRUPT_BUDGET_MIN}.
 */
export function quickenOptimisation(
  env: NodeJS.ProcessEnv = process.env,
  execArgv: readonly string[] = process.execArgv,
): { budget?: number; problem?: string } {
  const asked = env[INTERRUPT_BUDGET_ENV];
  if (asked === undefined || asked === "") return {};
  const budget = Number(asked);
  if (!Number.isInteger(budget) || budget < INTERRUPT_BUDGET_MIN)
    return {
      problem: `${INTERRUPT_BUDGET_ENV}=${asked} is not a whole number of bytes of at least ${INTERRUPT_BUDGET_MIN}; V8's default is kept`,
    };
  if (execArgv.some((arg) => /^--interrupt[-_]budget(=|$)/.test(arg))) return {};
  setFlagsFromString(`--interrupt-budget=${budget}`);
  return { budget };
}
