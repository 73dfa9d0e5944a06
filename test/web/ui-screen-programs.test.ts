/**
 * The web page (Chromium) opening real full-screen programs after 20 MB of earlier output shows
 * the rows a terminal that saw every byte shows (the programs: test/screen/programs.ts).
 */
import { describe, expect, it } from "vitest";
import { CASE_MS, PROGRAMS, openProgram } from "../screen/programs.js";
import { debugView } from "./harness.js";
import type { DebugView } from "./harness.js";
import { VIEWER_TOKEN, sharedPage, sharedStack, useBrowser } from "./ui-helpers.js";

useBrowser();

// One gateway for the programs, each in a session of its own. The page is a viewer's: it does
// not steer, so it shows the PTY at its size and never resizes it.
const shared = sharedStack({
  auth: { tokens: [{ name: "vera", token: VIEWER_TOKEN, role: "viewer", sessions: ["*"] }] },
});
/** The viewer's page, moved from one program's session to the next (see sharedPage). */
const viewer = sharedPage({ token: VIEWER_TOKEN });

/**
 * The page's rows on screen, trailing blanks trimmed as GET .../screen's text has them (the page
 * keeps the spaces a program printed): the whole buffer's last lines on the normal screen.
 */
function shownRows(view: DebugView | null, expected: string): string {
  const lines = (view?.text ?? "").split("\n").map((line) => line.trimEnd());
  return view?.screen === "alternate" ? lines.join("\n") : lines.slice(-expected.split("\n").length).join("\n");
}

describe("web UI: full-screen programs opened after 20 MB of output", () => {
  for (const c of PROGRAMS) {
    it(
      `shows ${c.name} as a terminal that saw everything`,
      async () => {
        const s = shared();
        const { p, expected } = await openProgram(s.gateway.url, c);
        const page = await viewer(s, { hash: `#/s/${p.id}` });
        await page.waitForSelector(".terminal-view[data-restored=true]");
        const deadline = Date.now() + CASE_MS / 3;
        let view = await debugView(page);
        while (shownRows(view, expected) !== expected && Date.now() < deadline) {
          await page.waitForTimeout(100);
          view = await debugView(page);
        }
        expect(view).toMatchObject({ control: "viewer", cols: c.size.cols, rows: c.size.rows });
        expect(view!.screen).toBe(c.alternate ? "alternate" : "normal");
        expect(shownRows(view, expected)).toBe(expected);
      },
      CASE_MS,
    );
  }
});
