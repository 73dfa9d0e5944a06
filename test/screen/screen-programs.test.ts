/**
 * Real full-screen programs in a PTY, opened after 20 MB of earlier output: the gateway's screen
 * (GET .../screen) and `switchboard attach` in a tmux pane (it starts from `?since=screen`) show
 * what a terminal that saw every byte shows (see ./programs.ts).
 */
import { afterAll, describe, expect, it } from "vitest";
import { TEST_TOKEN, api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { CLI, Tmux, shellQuote } from "../cli/helpers.js";
import { CASE_MS, PROGRAMS, openProgram, openTui, quiet, reference, text } from "./programs.js";
import type { Program } from "./programs.js";

const terminals: Tmux[] = [];
afterAll(() => {
  for (const t of terminals.splice(0)) t.kill();
});

/** `switchboard attach --read-only` in a tmux pane of `cols`×`rows`. */
function attach(p: Program, cols: number, rows: number): Tmux {
  const t = new Tmux({ SWITCHBOARD_URL: p.url, SWITCHBOARD_TOKEN: TEST_TOKEN }, cols, rows);
  terminals.push(t);
  t.start();
  t.type(`${CLI.map(shellQuote).join(" ")} attach --read-only -- ${p.id}`);
  return t;
}

/** Polls the pane until it shows `expected` (or the time is up), then compares. */
async function paneShows(t: Tmux, expected: string): Promise<void> {
  const deadline = Date.now() + CASE_MS / 3;
  while (t.screen() !== expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  expect(t.screen()).toBe(expected);
}

describe("full-screen programs after 20 MB of output: GET .../screen and attach (tmux) show the whole output's screen", () => {
  for (const c of PROGRAMS) {
    it(
      c.name,
      async () => {
        const { p, expected } = await openProgram((await testGateway()).url, c);
        await paneShows(attach(p, c.size.cols, c.size.rows), expected);
      },
      CASE_MS,
    );
  }
});

describe("a viewer smaller than the PTY", () => {
  it(
    "attach in an 80×24 pane shows a 120×40 TUI's rows clipped, never wrapped",
    async () => {
      const p = await openTui((await testGateway()).url, { cols: 120, rows: 40 });
      await quiet(p);
      // The cursor is at the top-left: the window is the top-left 80×24 of the 120×40 screen.
      const clipped = (await reference(p, 120, 40)).slice(0, 24).map((row) => row.slice(0, 80));
      expect(clipped.every((row) => row.length === 80)).toBe(true);
      const small = (await p.http.get(`/v1/sessions/${p.id}/screen?cols=80&rows=24`)).json.screen as string;
      expect(small).toBe(text(clipped));
      const t = attach(p, 80, 24);
      // attach says once that the sizes differ, over the last row of a full-screen program.
      await t.waitFor(/the session's terminal is 120×40 and this one 80×24/);
      const deadline = Date.now() + CASE_MS / 3;
      const shown = () => t.screen().split("\n");
      while (shown().slice(0, 23).join("\n") !== clipped.slice(0, 23).join("\n") && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      const rows = shown();
      expect(rows).toHaveLength(24);
      expect(rows.slice(0, 23)).toEqual(clipped.slice(0, 23));
      expect(rows[23]).toMatch(/^\[switchboard\] the session's terminal is 120×40/);
    },
    CASE_MS,
  );
});

describe("a gateway restart", () => {
  it(
    "serves an ended program's screen from the log",
    async () => {
      const gw = await testGateway();
      const p = await openTui(gw.url, { cols: 80, rows: 24 });
      // Killed on the alternate screen: the session ends with the TUI's last frame showing.
      process.kill(p.pid, "SIGKILL");
      await waitFor(async () => (await p.http.get(`/v1/sessions/${p.id}`)).json.state !== "running", 10_000, "its end");
      const before = (await p.http.get(`/v1/sessions/${p.id}/screen`)).json as { screen: string };
      expect(before.screen).toBe(text(await reference(p, 80, 24)));
      await gw.close();
      const again = await testGateway({ dataDir: gw.dataDir });
      expect((await api(again.url).get(`/v1/sessions/${p.id}/screen`)).json).toEqual(before);
    },
    CASE_MS,
  );
});
