import fc from "fast-check";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { fed, visibleText } from "../helpers/headless-terminal.js";
import { tempDir } from "../helpers/tmp.js";
import { RED_LINES, flood, slowMuxViewer, slowViewer } from "./lag-viewers.js";

/** Pieces a program prints: text, wide characters, line ends, colours, moves, erases, a scroll region, the title. */
const PIECES = [
  "line of text ",
  "漢字",
  "\r\n",
  "\r",
  "\x1b[31m",
  "\x1b[0m",
  "\x1b[5;10H",
  "\x1b[K",
  "\x1b[2J",
  "\x1b[3;12r",
  "\x1b[r",
  "\x1b]2;title\x07",
  "\t",
];

/**
 * For the tests of what a screen shows: the gateway waits as long as the screen takes. Under the
 * default wait a starved screen thread (nice 10, a loaded CI machine) sends bytes instead, which
 * the regression tests of test/screen/screen-lag-bytes.test.ts cover.
 */
const WAITS_FOR_SCREENS = { config: { limits: { lagScreenWaitMs: 60_000 } } };

// These need the screen thread to get a core, so the file runs alone (vitest.config.ts). A screen
// that never comes, and a viewer without lag=screen, need no screen thread: those tests run in
// the pool (test/screen/screen-lag-bytes.test.ts).
describe("/ws/session/:id?lag=screen", () => {
  it("property: a viewer that falls behind a flood is sent screens and ends on the screen GET .../screen shows", async () => {
    const gw = await testGateway(WAITS_FOR_SCREENS);
    const http = api(gw.url);
    const dir = tempDir();
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom(...PIECES), { minLength: 4, maxLength: 40 }),
        fc.constantFrom("", "&output=binary", "&since=0", "&since=screen"),
        async (pieces, extra) => {
          const { id, session, resume } = await flood(gw, join(dir, `text-${run++}`), `${pieces.join("")}\r\n`);
          const w = await slowViewer(gw.url, id, `lag=screen${extra}`, resume);
          expect(w.screens.length).toBeGreaterThan(0);
          const jumps = extra === "&since=screen" ? w.screens.slice(1) : w.screens;
          expect(jumps.length).toBeGreaterThan(0);
          expect(jumps.every((s) => (s.skipped ?? 0) > 0)).toBe(true);
          // Far fewer bytes than the flood reached the viewer.
          expect(w.received).toBeLessThan(session.log.outputBytes);
          const last = w.screens.at(-1)!;
          const term = await fed(80, 24, last.data, w.output);
          const res = await http.get(`/v1/sessions/${id}/screen?format=text`);
          expect(visibleText(term)).toBe((res.json as { screen: string }).screen);
          term.dispose();
        },
      ),
      { numRuns: 2 },
    );
    await gw.close();
  }, 400_000);

  it("on /v1/ws, subscribe lag: screen sends a subscription that falls behind the screen, and it ends on GET .../screen's", async () => {
    const gw = await testGateway(WAITS_FOR_SCREENS);
    const { id, session, resume } = await flood(gw, join(tempDir(), "text"), RED_LINES);
    const w = await slowMuxViewer(gw.url, id, resume);
    expect(w.screens.length).toBeGreaterThan(0);
    expect(w.screens.every((s) => (s.skipped ?? 0) > 0)).toBe(true);
    expect(w.received).toBeLessThan(session.log.outputBytes);
    const term = await fed(80, 24, w.screens.at(-1)!.data, w.output);
    const res = await api(gw.url).get(`/v1/sessions/${id}/screen?format=text`);
    expect(visibleText(term)).toBe((res.json as { screen: string }).screen);
    term.dispose();
    await gw.close();
  }, 200_000);

  it("on /v1/ws, a subscription that jumps to the screen once the session ended still gets its exit (regression)", async () => {
    const gw = await testGateway(WAITS_FOR_SCREENS);
    const { id, session } = await flood(gw, join(tempDir(), "text"), RED_LINES);
    // The exit is the log's last event when the screen is asked for: the jump must not pass it.
    const ended = waitFor(async () => !session.running && session.log.settled, 60_000, "the exit");
    const w = await slowMuxViewer(gw.url, id, ended);
    expect(w.screens.length).toBeGreaterThan(0);
    expect(w.exited).toBe(true);
    await gw.close();
  }, 60_000);
});
