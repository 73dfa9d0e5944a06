/**
 * `logs -f` into a reader that stops reading (a paused `less`, a slow pipe): the CLI must not
 * hold a flooding session's output in memory; once the reader reads again, every byte arrives,
 * once and in order.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_ENV } from "../client/helpers.js";
import { tempDir } from "../helpers/tmp.js";
import { writeFileSync } from "node:fs";
import { sessionEnded, spawnCli, startCliGateway } from "./helpers.js";
import type { CliGateway } from "./helpers.js";
import { waitFor } from "../helpers/wait-for.js";

let cg: CliGateway;
beforeAll(async () => {
  cg = await startCliGateway();
});
afterAll(() => cg.close());

const FLOOD_BYTES = 64 * 1024 * 1024;

/** Resident memory of a process, in bytes. */
function rss(pid: number): number {
  const kib = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]!;
  return Number(kib) * 1024;
}

describe("logs -f into a reader that stopped reading", () => {
  it("does not hold the output in memory, and gives every byte once the reader reads again", async () => {
    const gate = join(tempDir(), "go");
    const session = await cg.http.createSession({
      command: [
        "sh",
        "-c",
        `while [ ! -e "$1" ]; do sleep 0.02; done; head -c ${FLOOD_BYTES} /dev/zero | tr '\\0' a`,
        "sh",
        gate,
      ],
      env: TEST_ENV,
    });
    const run = spawnCli(["logs", "-f", session.id], cg.env);
    await waitFor(async () => (await cg.http.getSession(session.id)).viewers === 1, 20_000);
    // The reader stops: nothing more is read from the CLI's stdout.
    run.child.stdout.pause();
    let received = 0;
    let wrong = 0;
    run.child.stdout.removeAllListeners("data");
    const before = rss(run.child.pid!);
    writeFileSync(gate, "");
    await sessionEnded(cg.http, session.id);
    // Let the CLI take whatever it is going to take.
    let most = before;
    for (let i = 0; i < 20; i++) {
      most = Math.max(most, rss(run.child.pid!));
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(most - before, `the CLI grew by ${((most - before) / 2 ** 20).toFixed(1)} MiB`).toBeLessThan(
      FLOOD_BYTES / 4,
    );
    run.child.stdout.on("data", (d: Buffer) => {
      received += d.length;
      for (const b of d) if (b !== 0x61) wrong++;
    });
    run.child.stdout.resume();
    expect(await run.exit).toBe(0);
    expect({ received, wrong }).toEqual({ received: FLOOD_BYTES, wrong: 0 });
  }, 120_000);

  it("--json: does not hold the events in memory, and gives every event once, in order, once the reader reads again", async () => {
    const s = await cg.http.createSession({ kind: "stream" });
    const run = spawnCli(["logs", "--json", "-f", s.id], cg.env);
    await waitFor(async () => (await cg.http.getSession(s.id)).viewers === 1, 20_000);
    run.child.stdout.pause();
    run.child.stdout.removeAllListeners("data");
    const before = rss(run.child.pid!);
    const EVENTS = 24_000;
    const pad = "x".repeat(2000);
    for (let i = 0; i < EVENTS; i += 400) {
      const batch = Array.from({ length: 400 }, (_, j) => ({ type: "bench.line", data: { i: i + j, pad } }));
      await cg.http.appendEvents(s.id, batch);
    }
    await cg.http.appendEvents(s.id, { type: "exit", data: { exitCode: 0 } });
    let most = before;
    for (let i = 0; i < 20; i++) {
      most = Math.max(most, rss(run.child.pid!));
      await new Promise((r) => setTimeout(r, 100));
    }
    // 24,000 events of ~2 KB: ~50 MB of JSON lines.
    expect(most - before, `the CLI grew by ${((most - before) / 2 ** 20).toFixed(1)} MiB`).toBeLessThan(16 * 2 ** 20);
    let text = "";
    run.child.stdout.setEncoding("utf8");
    run.child.stdout.on("data", (d: string) => (text += d));
    run.child.stdout.resume();
    expect(await run.exit).toBe(0);
    const events = text
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line) as { seq: number; type: string; data?: { i?: number } });
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: EVENTS + 1 }, (_, i) => i + 1));
    expect(events.slice(0, -1).every((e, i) => e.data?.i === i)).toBe(true);
    expect(events.at(-1)?.type).toBe("exit");
  }, 120_000);
});
