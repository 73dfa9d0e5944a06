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

/** The first frame `ws` receives that matches `test`; rejects if the connection closes first. */
function frame(ws: WebSocket, test: (f: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const onClose = (code: number) => {
      ws.off("message", onMessage);
      reject(new Error(`closed (${code}) before the frame came`));
    };
    const onMessage = (raw: WebSocket.RawData) => {
      const f = JSON.parse(String(raw)) as Record<string, unknown>;
      if (!test(f)) return;
      ws.off("message", onMessage);
      ws.off("close", onClose);
      resolve(f);
    };
    ws.on("message", onMessage);
    ws.on("close", onClose);
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
    // The stop is held at a known point until the test lets it go on: the sessions' part waits for
    // this agent's run to end, and its output to close, which a process in a session of its own
    // (out of reach of the run's TERM and KILL) holds open. Held so by the test, not by a grace
    // period: on a loaded machine the held shell's let-go can come late in a 2 s grace.
    const { json: agent } = await http.post("/v1/sessions", {
      kind: "agent",
      agent: {
        adapter: "command",
        command: ["sh", "-c", "setsid sleep 60 & echo holding:$!; exec sleep 30", "sh", "{prompt}"],
      },
    });
    await http.post(`/v1/sessions/${agent.id}/prompt`, { text: "go" });
    const holding = await waitFor(async () =>
      /holding:(\d+)/.exec((await http.get(`/v1/sessions/${agent.id}/events`)).text),
    );
    const outputHolder = Number(holding[1]);
    const letStopGoOn = () => {
      try {
        process.kill(outputHolder, "SIGKILL");
      } catch {
        // ESRCH: gone already (the test let the stop go on before this cleanup).
      }
    };
    onTestFinished(letStopGoOn);

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
    letStopGoOn();
    await stopped;

    // The shell runs on, and the next gateway adopts it.
    expect(procStat(shell.pid as number)?.[0]).not.toBe("Z");
    const next = await testGateway({ holders: true, dataDir: gw.dataDir });
    expect((await api(next.url).get(`/v1/sessions/${shell.id}`)).json).toMatchObject({ state: "running" });
  });
});
