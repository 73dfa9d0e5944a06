/**
 * A gateway that stops gracefully ends its sessions while their viewers are still connected:
 * each viewer gets the output up to the end and the session's exit, then the close. (Exploratory
 * test: the WebSocket servers closed first, so a follower, e.g. the MCP server's
 * wait_for_output, never learned that the session ended and reported it still running.)
 */
import WebSocket from "ws";
import { describe, expect, it, onTestFinished } from "vitest";
import { authHeaders, opened, startTestGateway, wsUrl } from "../delivery/helpers.js";
import type { Defer } from "../delivery/helpers.js";
import { createSession } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";

const defer: Defer = (fn) => onTestFinished(async () => void (await fn()));

describe("graceful stop", () => {
  it("delivers a session's last output and its exit to /ws/session and /v1/ws followers before closing them", async () => {
    const gw = await startTestGateway(defer);
    const script = 'trap "echo got TERM; exit 3" TERM; echo ready; while :; do sleep 0.05; done';
    const { id } = await createSession(gw, { command: ["sh", "-c", script] });

    const terminal = new WebSocket(wsUrl(gw, `/ws/session/${id}?since=0`), { headers: authHeaders(gw) });
    const terminalFrames: Array<Record<string, unknown>> = [];
    terminal.on("message", (raw) => terminalFrames.push(JSON.parse(String(raw)) as Record<string, unknown>));
    const terminalClosed = new Promise<number>((resolve) => terminal.once("close", (code) => resolve(code)));

    const mux = new WebSocket(wsUrl(gw, "/v1/ws"), { headers: authHeaders(gw) });
    const muxEvents: Array<{ type: string; data?: string; exitCode?: number }> = [];
    mux.on("message", (raw) => {
      const f = JSON.parse(String(raw)) as { op: string; event?: never; events?: never[] };
      if (f.op === "event") muxEvents.push(f.event!);
      if (f.op === "events") muxEvents.push(...f.events!);
    });
    await Promise.all([opened(terminal), opened(mux)]);
    mux.send(JSON.stringify({ op: "subscribe", session: id, since: 0 }));
    const text = () =>
      terminalFrames
        .filter((f) => f["type"] === "stdout" || f["type"] === "replay")
        .map((f) => f["data"])
        .join("");
    await waitFor(() => text().includes("ready"));
    await waitFor(() => muxEvents.some((e) => e.type === "output") === true);

    await gw.close();
    expect(await terminalClosed).toBeDefined();
    expect(text()).toContain("got TERM");
    expect(terminalFrames.at(-1)).toMatchObject({ type: "exit", exit_code: 3 });
    expect(muxEvents.at(-1)).toMatchObject({ type: "exit", exitCode: 3 });
  });
});
