/**
 * The right answer while stopping: input sent 10 ms into a SIGTERM stop got `409
 * SESSION_NOT_RUNNING "process N has exited"` for a shell that was alive and adopted by the next
 * gateway (red team, hardening round 4); a client that believes it drops a live session. Now a
 * stopping gateway answers every request that would change something with 503 SHUTTING_DOWN.
 */
import { readdirSync, readlinkSync } from "node:fs";
import WebSocket from "ws";
import { describe, expect, it, onTestFinished } from "vitest";
import { procStat, signalGroup } from "../../src/sessions/processes.js";
import { api, testGateway } from "../helpers/gateway.js";
import { authHeaders, opened, wsUrl } from "../delivery/helpers.js";
import { waitFor } from "../helpers/wait-for.js";

/** The Unix sockets process `pid` has open: a holder's listening one, and one per gateway connected. */
function sockets(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:");
    } catch {
      return false; // closed since it was listed
    }
  }).length;
}

/** The first frame `ws` receives that matches `test`. */
function frame(ws: WebSocket, test: (f: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const onMessage = (raw: WebSocket.RawData) => {
      const f = JSON.parse(String(raw)) as Record<string, unknown>;
      if (!test(f)) return;
      ws.off("message", onMessage);
      resolve(f);
    };
    ws.on("message", onMessage);
  });
}

describe("a gateway that is stopping", () => {
  it("answers input for a held session with 503 SHUTTING_DOWN, not SESSION_NOT_RUNNING, and the session runs on", async () => {
    const gw = await testGateway({ holders: true });
    const http = api(gw.url);
    const { json: shell } = await http.post("/v1/sessions", { command: ["cat"] });
    const holderPid = Number(procStat(shell.pid as number)?.[1]);
    onTestFinished(() => {
      signalGroup(holderPid, "SIGKILL");
      signalGroup(shell.pid as number, "SIGKILL");
    });
    // The stop is held at a known point: the sessions' part waits for this agent's run, whose
    // process ignores TERM, until its KILL (KILL_GRACE_MS, 2 s), long after the held shell was let go.
    const { json: agent } = await http.post("/v1/sessions", {
      kind: "agent",
      agent: {
        adapter: "command",
        command: ["sh", "-c", "trap '' TERM; echo started; exec sleep 30", "sh", "{prompt}"],
      },
    });
    await http.post(`/v1/sessions/${agent.id}/prompt`, { text: "go" });
    await waitFor(async () => (await http.get(`/v1/sessions/${agent.id}/events`)).text.includes("started"));

    const mux = await opened(new WebSocket(wsUrl(gw, "/v1/ws"), { headers: authHeaders(gw) }));
    const terminal = await opened(new WebSocket(wsUrl(gw, `/ws/session/${shell.id}`), { headers: authHeaders(gw) }));
    onTestFinished(() => {
      mux.terminate();
      terminal.terminate();
    });
    expect(sockets(holderPid)).toBe(2);

    const stopped = gw.close();
    // The held shell was let go (its holder has no gateway any more) while the stop waits for the agent.
    await waitFor(() => sockets(holderPid) === 1, 5_000, "the holder let go of");
    const muxAnswer = frame(mux, (f) => f["ref"] === 1);
    mux.send(JSON.stringify({ op: "input", session: shell.id, data: "late\n", ref: 1 }));
    const terminalAnswer = frame(terminal, (f) => f["type"] === "error");
    terminal.send(JSON.stringify({ type: "stdin", data: "late\n" }));
    expect(await muxAnswer).toMatchObject({ op: "error", code: "SHUTTING_DOWN", session: shell.id });
    expect((await muxAnswer)["message"]).toMatch(/stopping: nothing of this request was applied; send it again/);
    expect(await terminalAnswer).toMatchObject({ type: "error", code: "SHUTTING_DOWN" });
    await stopped;

    // The shell runs on, and the next gateway adopts it.
    expect(procStat(shell.pid as number)?.[0]).not.toBe("Z");
    const next = await testGateway({ holders: true, dataDir: gw.dataDir });
    expect((await api(next.url).get(`/v1/sessions/${shell.id}`)).json).toMatchObject({ state: "running" });
  });
});
