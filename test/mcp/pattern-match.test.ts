import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it, onTestFinished } from "vitest";
import { BoundedPattern, MATCH_TIME_LIMIT_MS, PatternTooSlow } from "../../src/mcp/pattern-match.js";
import { REPO } from "../cli/helpers.js";
import { sleep } from "../helpers/sleep.js";
import { waitFor } from "../helpers/wait-for.js";

const MATCH_LOOP = fileURLToPath(new URL("./fixtures/match-loop.ts", import.meta.url));
/** Matches that a stop must catch in the middle. */
const STOPPED_MATCHES = 5;

describe("BoundedPattern", () => {
  it("returns the first match, or undefined", () => {
    const pattern = new BoundedPattern(/^ready on port (\d+)$/m);
    expect(pattern.exec("starting\nready on port 1234\nready on port 5678\n")).toBe("ready on port 1234");
    expect(pattern.exec("starting\n")).toBeUndefined();
  });

  it("refuses a pattern that backtracks without end once it has had its CPU time", () => {
    const pattern = new BoundedPattern(/^(a+)+$/);
    const before = process.cpuUsage();
    expect(() => pattern.exec(`${"a".repeat(40)}b`)).toThrow(PatternTooSlow);
    const used = process.cpuUsage(before);
    const cpuMs = (used.user + used.system) / 1000;
    // CPU time, not wall time: the same on a loaded machine. Not left to run on once it is spent.
    expect(cpuMs).toBeGreaterThanOrEqual(MATCH_TIME_LIMIT_MS);
    expect(cpuMs).toBeLessThan(2 * MATCH_TIME_LIMIT_MS);
  });

  // Regression (test/mcp/tools.test.ts under CPU load, 1 run in 9): the limit counted wall time, so
  // a process not scheduled for 100 ms saw `^3000$` refused as "ran over 100 ms".
  it("does not refuse a quick pattern because its process was not running for a while (a loaded machine)", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", MATCH_LOOP, String(STOPPED_MATCHES)], {
      cwd: REPO,
      stdio: ["ignore", "pipe", "inherit"],
    });
    onTestFinished(() => {
      child.kill("SIGKILL");
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    await waitFor(() => out.includes("ready\n"), 20_000);
    // Stopped for longer than the limit, again and again, while it matches nearly all the time,
    // until enough of its matches were caught by a stop.
    while (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGSTOP");
      await sleep(1.5 * MATCH_TIME_LIMIT_MS);
      child.kill("SIGCONT");
      await sleep(50);
    }
    expect(await exited).toBe(0);
    const result = JSON.parse(out.split("\n")[1]!) as { matches: number; stopped: number; refused: number };
    expect(result.stopped).toBe(STOPPED_MATCHES);
    expect(result.refused).toBe(0);
  }, 60_000);
});
