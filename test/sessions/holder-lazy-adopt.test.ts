import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { TEST_TOKEN, api, createSession, testGateway } from "../helpers/gateway.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

/*
 * A restarted gateway listens before it takes its held sessions over (src/sessions/adoption-queue.ts):
 * their holders are connected to in background slices, and one a viewer asks for first. Content,
 * not timing: the viewer's screen shows what its shell printed before the restart, and typing
 * reaches the shell.
 */
const SESSIONS = 50;
const CONFIG = {
  sessions: { holders: true, onStop: "keep" as const },
  limits: { sessions: SESSIONS, sessionsPerToken: SESSIONS },
};

/** The first frame of `/ws/session/:id?since=screen`: the screen. */
function screenFrame(url: string, id: string): Promise<{ type: string; data: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace("http", "ws")}/ws/session/${id}?since=screen`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    ws.once("message", (data: Buffer) => {
      ws.close();
      resolve(JSON.parse(data.toString()) as { type: string; data: string });
    });
    ws.once("error", reject);
  });
}

describe("a restart with many held sessions", () => {
  it(`listens before its ${SESSIONS} held bash sessions are taken over, and a viewer gets its screen whole`, async () => {
    const dataDir = tempDir();
    const first = await testGateway({ dataDir, config: CONFIG });
    const ids = (
      await Promise.all(
        Array.from({ length: SESSIONS }, () =>
          createSession(first, { command: ["bash", "--norc", "--noprofile", "-i"], pty: true }),
        ),
      )
    ).map((s) => s.id);
    // Each shell prints a line of its own (6*7: the echo of the command line is not the answer).
    for (const [i, id] of ids.entries()) {
      const typed = await api(first.url).post(`/v1/sessions/${id}/input`, { data: `echo marker-${i}-$((6*7))\r` });
      expect(typed.status).toBe(200);
    }
    for (const [i, id] of ids.entries())
      await waitFor(
        async () => (await api(first.url).get(`/v1/sessions/${id}/output`)).text.includes(`marker-${i}-42`),
        20_000,
        `the marker of shell ${i}`,
      );
    await first.close();

    const second = await testGateway({ dataDir, config: CONFIG });
    // Listening, with every held session still to take over.
    expect(second.core.sessions.adoptionsPending).toBe(SESSIONS);
    expect((await fetch(`${second.url}/healthz`)).status).toBe(200);
    const listed = await api(second.url).get("/v1/sessions");
    expect(listed.json.sessions.map((s: { state: string }) => s.state)).toEqual(Array(SESSIONS).fill("running"));

    // The last in the queue, asked for first: its screen shows what it printed before the restart.
    const last = SESSIONS - 1;
    const frame = await screenFrame(second.url, ids[last]!);
    expect(frame.type).toBe("screen");
    expect(frame.data).toContain(`marker-${last}-42`);
    // Taken over: what is typed reaches the shell.
    const typed = await api(second.url).post(`/v1/sessions/${ids[last]}/input`, { data: "echo typed-$((1+1))\r" });
    expect(typed.status).toBe(200);
    await waitFor(
      async () => (await api(second.url).get(`/v1/sessions/${ids[last]}/output`)).text.includes("typed-2"),
      10_000,
      "the typed line's answer",
    );
    // The rest are taken over in the background.
    await waitFor(
      async () => ((await second.core.metrics.sessionsAdopted.get()).values[0]?.value ?? 0) === SESSIONS,
      20_000,
      "every take-over",
    );
    expect(second.core.sessions.adoptionsPending).toBe(0);
    await second.close();

    // A stop that ends the sessions before any is taken over ends every program all the same.
    const third = await testGateway({ dataDir, config: CONFIG });
    expect(third.core.sessions.adoptionsPending).toBe(SESSIONS);
    const pids = third.core.sessions.list().map((s) => s.record.pid!);
    await third.close({ sessions: "end" });
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        // ESRCH: gone.
        return false;
      }
    };
    await waitFor(() => pids.every((pid) => !alive(pid)), 20_000, "every program ended");
  }, 90_000);
});
