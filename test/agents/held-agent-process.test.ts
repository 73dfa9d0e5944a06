import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ProcessEnd } from "../../src/agents/index.js";
import { HeldAgentProcess } from "../../src/sessions/held-agent-process.js";
import { Holders, holderBinary } from "../../src/sessions/holders.js";
import { waitFor } from "../helpers/wait-for.js";

const BINARY = holderBinary();
/** How long `closed` may take once the agent has ended: far more than it needs, far less than the test's timeout. */
const END_MS = 5_000;

let dataDir = "";
let holders: Holders;
const started: HeldAgentProcess[] = [];

beforeEach(() => {
  if (BINARY === null) throw new Error("build/Release/holder is missing: run npm run build");
  dataDir = mkdtempSync(join(tmpdir(), "switchboard-held-agent-process-"));
  holders = new Holders({ dataDir, binary: BINARY, onStop: "keep" });
});

afterEach(async () => {
  await Promise.all(started.splice(0).map((p) => Promise.race([p.kill(), new Promise((r) => setTimeout(r, END_MS))])));
  holders.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** `script` (sh) as an agent under a holder, as agent-gateway-session.ts starts one. */
function held(name: string, script: string): HeldAgentProcess {
  const env = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", LANG: "C.UTF-8" };
  const { holderPid, holderStart, childPid } = holders.launchSync(name, {
    command: ["sh", "-c", script],
    cwd: dataDir,
    env,
    pty: false,
    cols: 80,
    rows: 24,
    drainTimeoutMs: 2_000,
  });
  const proc = new HeldAgentProcess({
    socketPath: holders.socketPath(name),
    holderPid,
    holderStart,
    childPid,
    command: "sh",
  });
  started.push(proc);
  return proc;
}

/** `end` as it comes, or a failure naming what never came. */
function within(end: Promise<ProcessEnd>, what: string): Promise<ProcessEnd> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not come within ${END_MS} ms`)), END_MS);
    void end.then((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

describe("an agent process under its holder, once its stdout is let go of", () => {
  // The ACP adapter closes its connection before it kills the agent (a replacement, a dispose):
  // the connection's end destroys stdout. What the agent printed before it died still comes.
  it("still sees the exit when the agent prints after stdout was destroyed", async () => {
    const proc = held("late", "printf 'a\\n'; read go; printf 'b\\n'; sleep 0.2; exit 7");
    const first = await new Promise<Buffer>((resolve) => proc.stdout.once("data", resolve));
    expect(first.toString()).toBe("a\n");
    proc.stdout.destroy();
    // "b" comes after the destroy, and the exit in a later read.
    proc.stdin.write("go\n");
    expect(await within(proc.closed, "the end")).toEqual({ exitCode: 7, signal: null });
  });

  it("still sees the end of a kill when stdout is destroyed while output is held back", async () => {
    const proc = held("full", "head -c 262144 /dev/zero | tr '\\0' x; exec sleep 600");
    // Nobody reads: output is held back once stdout's buffer is full.
    await waitFor(() => proc.stdout.readableLength >= proc.stdout.readableHighWaterMark, 10_000, "stdout full");
    proc.stdout.destroy();
    expect(await within(proc.kill(), "the end of the kill")).toEqual({ exitCode: null, signal: "SIGTERM" });
  });
});

describe("an agent process under its holder, its stdout's offsets", () => {
  // The holder numbers stderr's bytes among stdout's: a held turn's cursor (a stdout line end) is
  // a holder offset only through holderOffset (test/agents/real-held-turn.test.ts shows why).
  it("maps a stdout line end past stderr to its holder offset", async () => {
    const proc = held(
      "offsets",
      "printf 'a\\n'; sleep 0.1; printf 'errr\\n' >&2; sleep 0.1; printf 'bb\\n'; sleep 0.1; printf 'e\\n' >&2; sleep 0.1; printf 'ccc\\n'; exec sleep 600",
    );
    let out = "";
    proc.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    await waitFor(() => out === "a\nbb\nccc\n", 10_000, "the three lines");
    // Holder offsets: "a\n" 0-2, "errr\n" 2-7, "bb\n" 7-10, "e\n" 10-12, "ccc\n" 12-16.
    expect([2, 5, 9].map((position) => proc.holderOffset(position))).toEqual([2, 10, 16]);
  });
});
