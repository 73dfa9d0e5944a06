/**
 * The web UI in a real browser (Chromium driven by playwright-core; set-up in ./ui-helpers.ts).
 * Phones and touch screens: the key bar, the text sheet, layouts and the prompt box.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { waitFor } from "../helpers/wait-for.js";
import { tempDir } from "../helpers/tmp.js";
import { waitForTerminal } from "./harness.js";
import {
  PHONE,
  PHONE_LANDSCAPE,
  SCREENSHOTS,
  createAgent,
  createShell,
  runStatus,
  sharedPage,
  sharedStack,
  stack,
  useBrowser,
  waitForPrompt,
} from "./ui-helpers.js";

useBrowser();
// Each test opens its own sessions; only the one with a short control lease has a gateway of its own.
const shared = sharedStack();
/** The phone's page and the desktop's of the tests that need no page of their own (see sharedPage). */
const phonePage = sharedPage({ viewport: PHONE, touch: true });
const deskPage = sharedPage();

describe("web UI", () => {
  it("opens a phone's terminal at the cursor and follows it while live, unless scrolled up", async () => {
    const s = shared();
    const id = await createShell(s.http, "tall-screen", { rows: 50 });
    await waitForPrompt(s.http, id);
    await s.http.post(`/v1/sessions/${id}/input`, { data: "seq 1 60; echo done-$((6*7))\r" });
    await waitFor(
      async () => /done-42[\s\S]*\/app/.test((await s.http.get(`/v1/sessions/${id}/output`)).text),
      10_000,
      "seq",
    );
    const page = await phonePage(s, { hash: `#/s/${id}`, take: false });
    /** Whether the cursor's row (the prompt) is inside the terminal frame's visible area. */
    const cursorShown = () =>
      page.evaluate(() => {
        const wrap = document.querySelector(".term-wrap")!.getBoundingClientRect();
        const cursor = document.querySelector(".xterm-rows .xterm-cursor, .xterm-rows [class*=cursor]");
        const row = cursor?.closest(".xterm-rows > div") ?? null;
        if (!row) return "no cursor";
        const r = row.getBoundingClientRect();
        // A pixel of rounding either way: the last row ends where the frame does, give or take a fraction.
        return r.top >= wrap.top - 1 && r.bottom <= wrap.bottom + 1
          ? "shown"
          : `row ${r.top}-${r.bottom} outside ${wrap.top}-${wrap.bottom}`;
      });
    let seen = "";
    await waitFor(async () => (seen = await cursorShown()) === "shown", 5_000, "the cursor in sight on open").catch(
      (error: Error) => {
        throw new Error(`${error.message}: ${seen}`);
      },
    );
    expect(await page.textContent(".xterm-rows")).toContain("dev@switchboard");
    await page.screenshot({ path: `${SCREENSHOTS}phone-terminal.png` });

    // Scrolled up by the user: left there as output comes; back down: followed again.
    // As a finger would: a touch in the frame, then its scroll (headless Chromium has no fling to drive).
    const scrollTo = (end: "top" | "bottom") =>
      page.$eval(
        ".term-wrap",
        (w, to) => {
          w.dispatchEvent(new Event("touchstart"));
          w.scrollTop = to === "top" ? 0 : w.scrollHeight;
        },
        end,
      );
    // The page has taken the scroll (its scroll event ran, a follow it had scheduled too) once
    // two frames have passed: only then does output test what the scroll decided.
    const settled = () =>
      page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
    await scrollTo("top");
    await settled();
    if ((await page.$eval(".term-wrap", (w) => w.scrollTop)) !== 0) await scrollTo("top").then(settled);
    await s.http.post(`/v1/sessions/${id}/input`, { data: "echo more\r" });
    await waitFor(async () => (await page.textContent(".xterm-rows"))!.includes("more"), 5_000, "the echo");
    expect(await page.$eval(".term-wrap", (w) => w.scrollTop)).toBe(0);
    await scrollTo("bottom");
    await settled();
    await s.http.post(`/v1/sessions/${id}/input`, { data: "clear; seq 1 45\r" });
    await waitFor(async () => (await cursorShown()) === "shown", 5_000, "the cursor followed");
  });

  it("says what the second tap of Stop and Remove does on a phone, and gives Stop its own icon (exploratory test: only the icon turned red)", async () => {
    const s = shared();
    const res = await s.http.post("/v1/sessions", { command: ["sh", "-c", "echo working; sleep 300"], name: "doomed" });
    const id = res.json.id as string;
    const page = await phonePage(s, { hash: `#/s/${id}` });
    const icon = (test: string): Promise<string | null> =>
      page.getAttribute(`[data-test=${test}] svg path`, "d") as Promise<string | null>;
    expect(await icon("stop")).not.toBe(await icon("remove"));
    expect(await page.isVisible("[data-test=stop] span")).toBe(false); // icons only on a phone

    await page.tap("[data-test=stop]");
    expect(await page.isVisible("[data-test=stop] span:has-text('Really stop?')")).toBe(true);
    await page.tap("[data-test=stop]");
    await page.waitForSelector("[data-test=exit-summary]");
    await page.waitForSelector("[data-test=remove]", { state: "visible" });
    expect(await page.isVisible("[data-test=remove] span")).toBe(false);
    await page.tap("[data-test=remove]");
    expect(await page.isVisible("[data-test=remove] span:has-text('Remove for good?')")).toBe(true);
    // The header still shows which session it is.
    const title = await page.$eval(".view-title", (el) => ({ shown: el.clientWidth, needed: el.scrollWidth }));
    expect(title.shown).toBeGreaterThanOrEqual(title.needed);
  });

  it("keeps a phone's session title readable next to Abort all (exploratory test: it shrank to 3 px)", async () => {
    const s = shared();
    const id = await createAgent(s.http, "refactor-bot");
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: "/permission Apply the patch" });
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: "queued behind it" });
    const page = await phonePage(s, { hash: `#/s/${id}` });
    await page.waitForSelector(".view-actions button:has-text('Abort all')");
    const title = await page.$eval(".view-title", (el) => ({ shown: el.clientWidth, needed: el.scrollWidth }));
    expect(title.shown).toBeGreaterThanOrEqual(title.needed);
  });

  it("shows a terminal's text in a sheet on a touch screen, to select and copy (exploratory test: a phone could not select terminal output)", async () => {
    const s = shared();
    const long = "x".repeat(150);
    const res = await s.http.post("/v1/sessions", {
      command: ["sh", "-c", `for i in 1 2 3; do echo "line $i"; done; echo 'a  b'; echo ${long}; sleep 300`],
      pty: true,
      name: "phone-copy",
      cols: 40,
      rows: 20,
    });
    const id = res.json.id as string;
    const page = await phonePage(s, { hash: `#/s/${id}` });
    await waitForTerminal(page, (t) => t.includes("xxxxxxxx"));
    await page.waitForSelector(".terminal-view[data-restored=true]");
    await page.tap("[data-test=show-text]");
    const sheet = page.locator("dialog.text-sheet[open]");
    await sheet.waitFor();
    expect(await sheet.locator("h2").textContent()).toBe("phone-copy");
    const text = (await sheet.locator("[data-test=sheet-text]").textContent())!;
    // The 150 characters wrapped onto several rows of 40 come back as one line.
    expect(text.split("\n").slice(0, 5)).toEqual(["line 1", "line 2", "line 3", "a  b", long]);
    // Selectable by the system: the text is in the page, not on a canvas.
    expect(await sheet.locator("[data-test=sheet-text]").evaluate((el) => getComputedStyle(el).userSelect)).not.toBe(
      "none",
    );
    await page.tap("[data-test=sheet-done]");
    await page.waitForSelector("dialog.text-sheet", { state: "detached" });
    // A mouse selects the canvas itself: no such button on a desktop.
    const desk = await deskPage(s, { hash: `#/s/${id}` });
    await desk.waitForSelector(".terminal-view[data-restored=true]");
    expect(await desk.isVisible("[data-test=show-text]")).toBe(false);
  });

  it("keeps the focus in the terminal when a phone key-bar key is tapped (audit: typing after Tab went nowhere)", async () => {
    const s = shared();
    const cwd = tempDir();
    writeFileSync(join(cwd, "tab-completed-42.txt"), "");
    const id = await createShell(s.http, "phone-keys", { cwd });
    await waitForPrompt(s.http, id);
    const page = await phonePage(s, { hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=mine]");
    await page.tap(".term-host");
    await page.keyboard.type("echo tab-com");
    await page.tap(".keybar .key:has-text('Tab')");
    await page.keyboard.type("then-typed\n");
    // Tab reached the shell (it completed the file name) and so did the keys typed after it.
    await waitForTerminal(page, (t) => /^tab-completed-42\.txt then-typed$/m.test(t), 5_000, "the completed line");
    expect(await page.evaluate(() => document.activeElement?.className)).toContain("xterm-helper-textarea");
  });

  it("sends the phone key bar's arrows as ESC O A in application cursor mode, as xterm's own keys (exploratory test: ESC [ A, which htop and vim ignore there)", async () => {
    const s = shared();
    const id = await createShell(s.http, "phone-arrows");
    await waitForPrompt(s.http, id);
    const page = await phonePage(s, { hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=mine]");
    await page.tap(".term-host");
    // Sets DECCKM (as vim and htop do), then shows the bytes of each arrow the program reads.
    await page.keyboard.type(
      `printf '\\e[?1h'; echo app''mode; for i in 1 2; do read -rsn3 k; printf 'got:%q\\n' "$k"; done; printf '\\e[?1l'\n`,
    );
    await waitForTerminal(page, (t) => /^appmode$/m.test(t), 5_000, "application cursor mode");
    await page.tap(".keybar .key[aria-label=Up]");
    await waitForTerminal(page, (t) => /^got:/m.test(t), 5_000, "the key bar's arrow");
    await page.keyboard.press("ArrowLeft");
    const text = await waitForTerminal(page, (t) => (t.match(/^got:/gm) ?? []).length === 2, 5_000, "xterm's arrow");
    expect(text.match(/^got:.*$/gm)).toEqual(["got:$'\\EOA'", "got:$'\\EOD'"]);
    // Out of the mode, the arrows are ESC [ again.
    await waitForPrompt(s.http, id);
    await page.keyboard.type(`read -rsn3 k; printf 'normal:%q\\n' "$k"\n`);
    await page.waitForTimeout(300);
    await page.tap(".keybar .key[aria-label=Down]");
    await waitForTerminal(page, (t) => /^normal:\$'\\E\[B'$/m.test(t), 5_000, "ESC [ B out of the mode");
  });

  it("shows the phone key bar while nobody is in control, and a key takes control (audit: it hid after the lease lapsed)", async () => {
    const s = await stack({ control: { autoReleaseAfterMs: 1_000 } });
    const id = await createShell(s.http, "phone-free");
    await waitForPrompt(s.http, id);
    const page = await s.page({ hash: `#/s/${id}`, viewport: PHONE, touch: true });
    await page.waitForSelector(".terminal-view[data-control=mine]");
    await page.tap(".term-host");
    await page.waitForSelector(".terminal-view[data-control=free]", { timeout: 5_000 });
    expect(await page.isVisible(".keybar")).toBe(true);
    await page.tap(".keybar .key:has-text('Tab')");
    await page.waitForSelector(".terminal-view[data-control=mine]", { timeout: 5_000 });
    await page.keyboard.type("echo keybar-$((40+2))\n");
    await waitForTerminal(page, (t) => /^keybar-42$/m.test(t), 5_000, "the line typed after the key");
  });

  it("fits every key of the phone key bar on a 390 px screen (exploratory test: the last one was cut off)", async () => {
    const s = shared();
    const id = await createShell(s.http, "phone-fit");
    const page = await phonePage(s, { hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=mine]");
    const keys = await page.$$eval(".keybar .key", (els) =>
      els.map((el) => {
        const box = el.getBoundingClientRect();
        return { left: box.left, right: box.right, width: box.width };
      }),
    );
    expect(keys).toHaveLength(8);
    for (const key of keys) {
      expect(key.left).toBeGreaterThanOrEqual(0);
      expect(key.right).toBeLessThanOrEqual(PHONE.width);
      expect(key.width).toBeGreaterThanOrEqual(36);
    }
    // Each key is read out as what it does (exploratory test: "^C" was read "caret C").
    const names = await page
      .locator(".keybar")
      .getByRole("button")
      .evaluateAll((els) => els.map((el) => el.getAttribute("aria-label")));
    expect(names).toEqual([
      "Escape",
      "Tab",
      "Ctrl-C (interrupt)",
      "Ctrl-D (end of input)",
      "Up",
      "Down",
      "Left",
      "Right",
    ]);
    await page.getByRole("button", { name: "Ctrl-C (interrupt)" }).tap();
  });

  it("gives a phone in landscape the one-column layout (exploratory test: next to the sidebar its terminal showed two lines)", async () => {
    const s = shared();
    const id = await createShell(s.http, "landscape");
    const phone = await s.page({ hash: `#/s/${id}`, viewport: PHONE_LANDSCAPE, touch: true });
    await phone.waitForSelector(".terminal-view[data-control=mine]");
    expect(await phone.isVisible(".sidebar")).toBe(false);
    expect(await phone.isVisible(".view-head .back")).toBe(true);
    expect(await phone.isVisible(".keybar")).toBe(true);
    const width = await phone.$eval(".term-wrap", (el) => el.getBoundingClientRect().width);
    expect(width).toBeGreaterThan(PHONE_LANDSCAPE.width - 20);
    // A desktop window as short keeps its sidebar: the mouse has room to spare.
    const desktop = await s.page({ hash: `#/s/${id}`, viewport: PHONE_LANDSCAPE });
    expect(await desktop.isVisible(".sidebar")).toBe(true);
  });

  it("on a touch screen, Enter starts a new line and Send sends, and the prompt box waits for a tap (exploratory test: a phone could not write two lines, and its keyboard popped up over the answer)", async () => {
    const s = shared();
    const id = await createAgent(s.http, "pocket");
    const page = await phonePage(s, { hash: `#/s/${id}` });
    await page.waitForSelector(".prompt-input");
    expect(await page.evaluate(() => document.activeElement?.matches(".prompt-input"))).toBe(false);
    expect(await page.getAttribute(".prompt-input", "enterkeyhint")).toBe("enter");
    await page.tap(".prompt-input");
    await page.keyboard.type("first line");
    await page.keyboard.press("Enter");
    await page.keyboard.type("second line");
    expect(await page.inputValue(".prompt-input")).toBe("first line\nsecond line");
    expect((await s.http.get(`/v1/sessions/${id}/events?types=run.queued`)).json.events).toEqual([]);
    await page.tap("[data-test=send]");
    await waitFor(async () => (await runStatus(page, 0))?.status === "done", 10_000, "the run");
    const queued = await s.http.get(`/v1/sessions/${id}/events?types=run.queued`);
    expect(queued.json.events.map((e: { text: string }) => e.text)).toEqual(["first line\nsecond line"]);
    // On a desktop, as before: the box has the focus at once, and Enter sends.
    const desk = await deskPage(s, { hash: `#/s/${id}` });
    await desk.waitForSelector(".prompt-input:focus");
    expect(await desk.getAttribute(".prompt-input", "enterkeyhint")).toBe("send");
    await desk.keyboard.type("from the desk");
    await desk.keyboard.press("Enter");
    await waitFor(async () => (await runStatus(desk, 1))?.status === "done", 10_000, "the desk's run");
    expect((await runStatus(desk, 1))?.text).toBe("from the desk");
  });
});
