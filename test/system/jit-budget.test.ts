import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { INTERRUPT_BUDGET_ENV, quickenOptimisation } from "../../src/system/jit-budget.js";

const MODULE = fileURLToPath(new URL("../../src/system/jit-budget.ts", import.meta.url));

/**
 * In a node of its own: quickens V8 (or not), then calls a function until V8 has optimised it.
 * Compiled on the main thread (`--no-concurrent-recompilation`), the call it happens at is exact.
 */
const CHILD = `
const { quickenOptimisation } = await import(${JSON.stringify(MODULE)});
const status = new Function("f", "return %GetOptimizationStatus(f)");
const f = new Function("o", "let s = 0; for (const k of Object.keys(o)) s += String(o[k]).length; return s + (o.a ?? 0) * 2;");
const obj = { a: 1, b: 2, c: "three", d: [4] };
// Run some before, as the gateway's modules loaded before the call are.
for (let i = 0; i < 10; i++) f(obj);
const set = process.env.QUICKEN === "1" ? quickenOptimisation().budget ?? false : null;
let optimisedAt = -1;
// Bit 4 (kOptimized) of %GetOptimizationStatus.
for (let i = 0; i < 5000 && optimisedAt < 0; i++) { f(obj); if (status(f) & 16) optimisedAt = i; }
console.log(JSON.stringify({ set, optimisedAt }));
`;

async function child(
  quicken: boolean,
  nodeArgs: string[] = [],
): Promise<{ set: number | false | null; optimisedAt: number }> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      ...nodeArgs,
      "--allow-natives-syntax",
      "--no-concurrent-recompilation",
      "--import",
      "tsx",
      "--input-type=module",
      "-e",
      CHILD,
    ],
    { env: { ...process.env, QUICKEN: quicken ? "1" : "0", [INTERRUPT_BUDGET_ENV]: "8192" }, timeout: 30_000 },
  );
  return JSON.parse(stdout.trim()) as { set: number | false | null; optimisedAt: number };
}

describe("quickenOptimisation", () => {
  it("given SWITCHBOARD_V8_INTERRUPT_BUDGET=8192, has V8 optimise a function run once per key several times sooner, code loaded before it too", async () => {
    const [quick, plain] = await Promise.all([child(true), child(false)]);
    expect(plain.set).toBeNull();
    expect(quick.set).toBe(8192);
    // V8's default optimises this function after some 700 calls; the gateway's budget, an
    // eighth of it, after its first refill at the old budget and a few ticks at the new one.
    expect(plain.optimisedAt).toBeGreaterThan(500);
    expect(quick.optimisedAt).toBeGreaterThan(0);
    expect(quick.optimisedAt * 2).toBeLessThan(plain.optimisedAt);
  });

  it("leaves a budget named on node's command line, in either spelling", async () => {
    for (const flag of ["--interrupt-budget=67584", "--interrupt_budget=67584"]) {
      const [named, plain] = await Promise.all([child(true, [flag]), child(false)]);
      expect(named.set).toBe(false);
      // As at V8's default, within V8's own jitter of a call or so; the budget asked for would
      // optimise it at under half that.
      expect(Math.abs(named.optimisedAt - plain.optimisedAt)).toBeLessThanOrEqual(plain.optimisedAt / 10);
    }
  });

  it("sets nothing unless asked, and says what is wrong with a bad value", () => {
    expect(quickenOptimisation({}, [])).toEqual({});
    expect(quickenOptimisation({ [INTERRUPT_BUDGET_ENV]: "" }, [])).toEqual({});
    for (const bad of ["8k", "100", "-8192", "8192.5"])
      expect(quickenOptimisation({ [INTERRUPT_BUDGET_ENV]: bad }, []).problem).toMatch(
        new RegExp(
          `^${INTERRUPT_BUDGET_ENV}=${bad.replace(".", "\\.")} is not a whole number of bytes of at least 1024`,
        ),
      );
  });
});
