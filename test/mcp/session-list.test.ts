import { describe, expect, it } from "vitest";
import { mcpStack } from "./helpers.js";
import { waitFor } from "../helpers/wait-for.js";

const s = mcpStack();

describe("list_sessions and remove_session", () => {
  // Regression (exploratory test): 500 sessions came back in one answer of about 260 KB.
  it("lists at most limit sessions, the running ones first, and says how to see the others", async () => {
    const ended: string[] = [];
    for (let i = 0; i < 6; i++)
      ended.push((await s.mcp.ok("start_session", { command: ["true"], name: `e${i}` })).data.session.id);
    const running: string[] = [];
    for (let i = 0; i < 2; i++)
      running.push((await s.mcp.ok("start_session", { command: ["sleep", "60"] })).data.session.id);
    // Created before the running ones, it ends after them: the newest by creation are listed.
    await waitFor(async () => (await s.http.listSessions({ state: "exited" })).length === 6, 20_000);

    const first = await s.mcp.ok("list_sessions", { limit: 4 });
    expect(first.data).toMatchObject({ total: 8, offset: 0, next_offset: 4 });
    // The two running ones and the two newest ended ones, listed oldest first.
    expect(first.data.sessions.map((s: any) => s.id)).toEqual([ended[4], ended[5], running[0], running[1]]);
    expect(first.text).toMatch(/^8 sessions \(2 running\); listed: 1-4 of them, the running first, then the newest/);
    expect(first.text).toContain('4 more (older): list_sessions {"offset": 4} lists the next 4');

    const next = await s.mcp.ok("list_sessions", { limit: 4, offset: 4 });
    expect(next.data.sessions.map((s: any) => s.id)).toEqual(ended.slice(0, 4));
    expect(next.data.next_offset).toBeUndefined();

    const live = await s.mcp.ok("list_sessions", { state: "running" });
    expect(live.data.sessions.map((s: any) => s.id)).toEqual(running);
    expect(live.text.split("\n")[0]).toBe("2 running sessions:");
    const gone = await s.mcp.ok("list_sessions", { state: ["lost"] });
    expect(gone.text).toBe("No lost sessions.");
    const all = await s.mcp.ok("list_sessions");
    expect(all.data.sessions).toHaveLength(8);
    expect(all.text.split("\n")[0]).toBe("8 sessions:");

    const bad = await s.mcp.call("list_sessions", { state: "sleeping" });
    expect(bad.text).toMatch(/^VALIDATION_FAILED: state/);
  }, 60_000);

  // Regression (exploratory test): a 60 KB command (a script given with sh -c) was printed whole
  // in start_session's text and in every line list_sessions gave for it.
  it("shortens a long command in the text and keeps it whole in the structured content", async () => {
    const script = `true # ${"x".repeat(60_000)}`;
    const started = await s.mcp.ok("start_session", { command: ["sh", "-c", script] });
    const id = started.data.session.id as string;
    expect(started.data.session.command).toEqual(["sh", "-c", script]);
    const quoted = `sh -c ${JSON.stringify(script)}`;
    const shown = `${quoted.slice(0, 200)}… (${quoted.length - 200} more characters)`;
    expect(started.text.length).toBeLessThan(600);
    expect(started.text.split("\n")[0]).toMatch(new RegExp(`: ${shown.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`));

    const listed = await s.mcp.ok("list_sessions");
    const line = listed.text.split("\n").find((l) => l.startsWith(id))!;
    expect(line.endsWith(`: ${shown}`)).toBe(true);
    expect(listed.data.sessions.find((s: any) => s.id === id).command).toEqual(["sh", "-c", script]);
    await s.mcp.ok("remove_session", { id, force: true });
  }, 60_000);

  it("refuses to remove a running session and names the tools that do it", async () => {
    const id = (await s.mcp.ok("start_session", { command: ["sleep", "60"] })).data.session.id as string;
    const refused = await s.mcp.call("remove_session", { id });
    expect(refused).toMatchObject({ isError: true, code: "SESSION_RUNNING" });
    expect(refused.text).toContain(`session ${id} is running: stop_session stops it`);
    expect(refused.text).toContain("force: true");
    expect(refused.text).not.toMatch(/switchboard|DELETE/);
    await s.mcp.ok("remove_session", { id, force: true });
  }, 60_000);
});
