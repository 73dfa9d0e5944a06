import { readFileSync, readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { api } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

/** The bound docs/operations.md states: an idle gateway's CPU, as a share of one core. */
const IDLE_CPU_MAX_SHARE = 0.002;
const MEASURE_MS = 30_000;
/** How often the CPU the gateway ran so far is read. */
const SAMPLE_MS = 1_000;
/**
 * For up to a minute after start V8 shrinks the heaps of the main thread and each worker (GCs of
 * 10–150 ms, seconds apart): start-up, not idling. So the figure is the first 30 s window, ending
 * on a sample, that stays within the bound; the least busy window when none does by this time.
 */
const SETTLE_MAX_MS = 150_000;

/** Time every thread of `pid` ran, in milliseconds (schedstat: nanoseconds, not clock ticks). */
function ranMs(pid: number): number {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
  }
  return ns / 1e6;
}

/** Times the main thread of `pid` was put on a core (schedstat's third field): its wake-ups. */
function wakeups(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, "utf8").split(" ")[2]);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("an idle gateway", () => {
  // Regression: with no session and no client, `switchboard serve` used 1.7% of a core (a 20 ms
  // screen feed, 5 s checks of descriptors, data directory and screens, 15 s pings, 1 s samples
  // of the event loop). Measured on the sources compiled as dist/ is (test/helpers/compiled-cli.ts).
  it(
    "uses at most 0.2% of a core over 30 s once started",
    { timeout: SETTLE_MAX_MS + MEASURE_MS + 60_000 },
    async () => {
      const gateway = await serveInChild({ dataDir: tempDir() });
      const pid = gateway.child.pid!;
      expect((await api(gateway.url).get("/v1/whoami")).status).toBe(200);

      const samples: Array<{ at: number; ran: number }> = [];
      let best = { used: Infinity, share: Infinity };
      for (const giveUp = performance.now() + SETTLE_MAX_MS + MEASURE_MS; performance.now() < giveUp;) {
        samples.push({ at: performance.now(), ran: ranMs(pid) });
        const last = samples.at(-1)!;
        const first = samples.findLast((s) => s.at <= last.at - MEASURE_MS);
        if (first !== undefined) {
          const used = last.ran - first.ran;
          if (used / (last.at - first.at) < best.share) best = { used, share: used / (last.at - first.at) };
          if (best.share <= IDLE_CPU_MAX_SHARE) break;
        }
        await sleep(SAMPLE_MS);
      }

      // Still a gateway that answers (a process that died costs nothing).
      expect(gateway.child.exitCode).toBeNull();
      expect((await api(gateway.url).get("/v1/whoami")).status).toBe(200);
      expect(best.share, `${best.used.toFixed(1)} ms of CPU in ${MEASURE_MS} ms`).toBeLessThanOrEqual(
        IDLE_CPU_MAX_SHARE,
      );
    },
  );

  // Regression: while any PTY session ran, the screen feed ran every 20 ms (SCREEN_FEED_MS)
  // whether or not it printed: 50 wake-ups a second beside terminals waiting for a key.
  it("sleeps beside terminals that print nothing, and wakes to keep their screens", { timeout: 60_000 }, async () => {
    const gateway = await serveInChild({ dataDir: tempDir() });
    const pid = gateway.child.pid!;
    const http = api(gateway.url);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const created = await http.post("/v1/sessions", { command: ["bash", "--norc", "--noprofile"], pty: true });
      expect(created.status).toBe(201);
      ids.push(created.json.id as string);
    }
    const prompt = async (id: string) =>
      (await http.get(`/v1/sessions/${id}/screen?format=text`)).json.screen as string;
    for (const id of ids)
      await waitFor(async () => (await prompt(id)).includes("$") || (await prompt(id)).includes("#"));

    // The prompts are on the screens; the descriptor count's last look (5 s) goes by.
    await sleep(6_000);
    const before = wakeups(pid);
    await sleep(10_000);
    const woke = wakeups(pid) - before;
    // 20 here on a quiet machine; the feed every 20 ms alone made 500.
    expect(woke).toBeLessThanOrEqual(100);

    // A line typed now reaches the screen as before.
    expect((await http.post(`/v1/sessions/${ids[1]}/input`, { data: "echo typed-$((6*7))\r" })).status).toBe(200);
    await waitFor(
      async () => (await prompt(ids[1]!)).includes("\ntyped-42"),
      5_000,
      "the typed line's output on the screen",
    );
  });
});
