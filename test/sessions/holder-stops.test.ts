/**
 * Stops that always stop: a program that stops its own holder (`kill -STOP $PPID`) held a DELETE
 * (even `?purge=true&force=true`) unanswered, and a stop that ends sessions kept gateway.lock,
 * until someone sent the holder SIGCONT (red team, hardening round 4). Now the holder's process
 * group gets SIGKILL once it has not reported the exit HOLDER_EXIT_WAIT_MS after the KILL.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { procStat, signalGroup } from "../../src/sessions/processes.js";
import { TERMINATE_GRACE_MS } from "../../src/sessions/session-manager.js";
import { HOLDER_EXIT_WAIT_MS } from "../../src/sessions/terminal-process.js";
import { api } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

/** What a DELETE or a stop may take: the grace, the stuck holder's bound, and room for a loaded machine. */
const BOUND_MS = TERMINATE_GRACE_MS + HOLDER_EXIT_WAIT_MS + 4_000;
const TEST_MS = 60_000;

/**
 * A PTY session whose shell stops its holder and ignores the hangup; resolves once the holder is
 * stopped. (After a moment: a holder stopped before it answered its start would fail the create.)
 */
async function stuckSession(http: ReturnType<typeof api>): Promise<{ id: string; holderPid: number }> {
  const created = await http.post("/v1/sessions", {
    command: ["bash", "-c", "sleep 0.5; kill -STOP $PPID; trap '' HUP TERM; while :; do sleep 1; done"],
    pty: true,
  });
  expect(created.status, created.text).toBe(201);
  const { id, pid } = created.json as { id: string; pid: number };
  // The holder is the program's parent (native/holder.c forks it).
  const holderPid = Number(procStat(pid)?.[1]);
  expect(holderPid).toBeGreaterThan(1);
  onTestFinished(() => void signalGroup(holderPid, "SIGKILL"));
  await waitFor(() => procStat(holderPid)?.[0] === "T", 10_000, "the holder stopped");
  return { id, holderPid };
}

/** Dead: no such process, or a zombie (a container's init may be slow to reap what it inherits). */
function gone(pid: number): boolean {
  const state = procStat(pid)?.[0];
  return state === undefined || state === "Z";
}

describe("a session whose program stops its holder", () => {
  it(
    "is deleted within the bound, and a stop that ends sessions exits and frees the data directory",
    async () => {
      const dataDir = tempDir();
      const config = join(tempDir(), "config.json");
      writeFileSync(config, JSON.stringify({ sessions: { onStop: "end" } }));
      const first = await serveInChild({ dataDir, holders: true, config });
      const http = api(first.url);

      const deleted = await stuckSession(http);
      let started = Date.now();
      const del = await http.del(`/v1/sessions/${deleted.id}?purge=true&force=true`);
      expect(Date.now() - started).toBeLessThan(BOUND_MS);
      expect(del.status).toBe(200);
      expect((await http.get(`/v1/sessions/${deleted.id}`)).status).toBe(404);
      // The holder was killed, not left stopped.
      await waitFor(() => gone(deleted.holderPid), 5_000, "the holder gone");

      const kept = await stuckSession(http);
      const exited = new Promise<number | null>((resolve) => first.child.once("exit", resolve));
      started = Date.now();
      first.child.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(Date.now() - started).toBeLessThan(BOUND_MS);
      await waitFor(() => gone(kept.holderPid), 5_000, "the holder gone");
      expect(first.log.find((l) => l["msg"] === "gateway stopped")).toBeDefined();

      // The lock is free: the next gateway starts on the directory and finds the session ended.
      const second = await serveInChild({ dataDir, holders: true });
      const info = await api(second.url).get(`/v1/sessions/${kept.id}`);
      expect(info.json).toMatchObject({ state: "lost" });
      const events = await api(second.url).get(`/v1/sessions/${kept.id}/events`);
      expect(events.text).toMatch(/did not report the program's exit within \d+ ms of its KILL \(stopped or stuck\)/);
    },
    TEST_MS,
  );
});
