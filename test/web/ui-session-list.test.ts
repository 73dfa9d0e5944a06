/**
 * The web UI in a real browser (Chromium driven by playwright-core; set-up in ./ui-helpers.ts).
 * The session list (filters, focus across polls, Stop and Remove, badges) and the Plugins page.
 */
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import type { Request } from "playwright-core";
import { connect } from "../../src/client/node.js";
import { TEST_TOKEN, api } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { tempDir } from "../helpers/tmp.js";
import { LIST_TICK_MS } from "../../web/src/session-list.js";
import { POLL_INTERVAL_MS } from "../../web/src/session-store.js";
import { waitForTerminal } from "./harness.js";
import {
  OPERATOR_TOKEN,
  SCREENSHOTS,
  VIEWER_TOKEN,
  createAgent,
  createShell,
  open,
  reusedTab,
  runStatus,
  sharedPage,
  sharedStack,
  stack,
  useBrowser,
  waitForPrompt,
} from "./ui-helpers.js";

/** Each wait of a step in a test that takes several: well within the test's timeout. */
const STEP = { timeout: 10_000 };

useBrowser();
// For the tests that look at their own sessions only; those that count the list's rows, chips or
// redraws, or need other config, have a gateway of their own.
const shared = sharedStack();
/** The desktop page of the tests that need no page of their own (see sharedPage). */
const reused = sharedPage();
/** The tab the tests that need a page new to them (their own gateway's, a second one) load anew. */
const tab = reusedTab();

describe("web UI", () => {
  // Each wait has its own timeout (STEP), so a step that hangs fails naming itself.
  it("keeps a search typed in the sidebar going in the list's box when the page turns to the list", async () => {
    const s = shared();
    const id = await createShell(s.http, "turning-shell");
    const page = await reused(s, { hash: `#/s/${id}`, take: false });
    await page.click(".sidebar .list-search", STEP);
    await page.keyboard.type("no such");
    // The page turns to the list while the search is typed (as `g s` right after `/` does).
    await page.evaluate(() => (location.hash = "#/"));
    await page.waitForSelector(".list-full .list-search", STEP);
    await page.keyboard.type(" n");
    // The `n` went into the search, not to the page (where it would start a session).
    expect(await page.$("dialog[open]")).toBeNull();
    expect(await page.inputValue(".list-full .list-search")).toBe("no such n");
    expect(await page.evaluate(() => document.activeElement?.matches(".list-full .list-search"))).toBe(true);
    // The next test on this page starts with no search.
    await page.fill(".list-full .list-search", "");
  });

  it("keyboard shortcuts: / searches, n starts a session, g s goes to the list, ? lists them; never while typing", async () => {
    const s = shared();
    const id = await createShell(s.http, "shortcut-shell");
    const page = await reused(s, { hash: `#/s/${id}`, take: false });
    // The shortcuts listen once the app is up (after its sign-in check): its terminal is shown.
    await page.waitForSelector(".xterm", STEP);
    await page.keyboard.press("?");
    const help = page.locator("[data-test=shortcuts-help]");
    await help.waitFor(STEP);
    expect((await help.locator("dt").allTextContents()).join(" | ")).toBe("/ | n | gs | ?");
    await page.keyboard.press("Escape");
    await help.waitFor({ state: "hidden", ...STEP });

    // In the terminal, keys are the session's.
    await page.click(".xterm");
    await page.keyboard.press("n");
    expect(await page.$("dialog[open]")).toBeNull();
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());

    await page.keyboard.press("g");
    await page.keyboard.press("s");
    await page.waitForFunction(() => location.hash === "#/", undefined, STEP);
    await page.keyboard.press("/");
    expect(await page.evaluate(() => document.activeElement?.matches(".list-search"))).toBe(true);
    await page.keyboard.type("no such n");
    expect(await page.$("dialog[open]")).toBeNull();
    expect(await page.inputValue(".list-full .list-search")).toBe("no such n");
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await page.keyboard.press("n");
    await page.waitForSelector("dialog[open] [data-test=create]", STEP);
  });

  it("keeps keyboard focus on a filter chip and on a session row across list polls (exploratory test: focus was lost every few seconds)", async () => {
    const s = await stack();
    const id = await createShell(s.http, "focused");
    const page = await s.page();
    // The page's clock is the test's: a poll, or the list's redraw of its times, comes when the
    // test moves the clock on rather than seconds later.
    await page.context().clock.install();
    await page.reload();
    const row = `.main .row[data-session="${id}"]`;
    await page.waitForSelector(row);
    const focused = (): Promise<string> =>
      page.evaluate(() => {
        const el = document.activeElement;
        if (!(el instanceof HTMLElement) || el === document.body) return "(nothing)";
        return el.dataset["session"] ?? el.textContent ?? "";
      });
    /** The list's next poll, brought on and answered; the page has drawn it. */
    const poll = async (): Promise<void> => {
      const answered = page.waitForResponse((r) => new URL(r.url()).pathname === "/v1/sessions");
      await page.clock.fastForward(POLL_INTERVAL_MS);
      await answered;
      await page.waitForTimeout(100);
    };

    await page.focus(".main .chip:has-text('Active')");
    await poll();
    expect(await focused()).toBe("Active1");

    await page.focus(row);
    // The row's time goes from "just now" to "5s ago", "7s ago"… with the polls.
    await page.clock.fastForward(LIST_TICK_MS);
    await page.waitForFunction(
      (sel) => /^\d+s ago$/.test(document.querySelector(`${sel} .activity`)!.textContent!),
      row,
    );
    await poll();
    expect(await focused()).toBe(id);
    // A row whose content changed is drawn anew, and keeps the focus.
    const watcher = await connect({ url: s.gateway.url, token: TEST_TOKEN });
    onTestFinished(() => watcher.close());
    await watcher.subscribe(id, () => undefined).ready;
    await poll();
    await page.waitForSelector(`${row} [data-test=watchers]:has-text('you watching')`);
    expect(await focused()).toBe(id);
    await page.keyboard.press("Enter");
    await page.waitForSelector(`.terminal-view[data-session="${id}"]`);
  });

  // A gateway of its own, two plugins started and one restarted, two pages: 4 s alone, 9-12 s in a
  // full run, past 30 s once. At 60 s, a wait that hangs fails on its own (Playwright's 30 s) and
  // names its selector.
  it("lists the plugins with their state and why one failed; an admin restarts one, a viewer only looks", async () => {
    const s = await stack({
      auth: { tokens: [{ name: "vera", token: VIEWER_TOKEN, role: "viewer", sessions: ["*"] }] },
      plugins: {
        entries: {
          words: {
            path: join(process.cwd(), "examples/plugins/word-agent"),
            config: { agentId: "words", delayMs: 1 },
            publicHooks: true,
          },
          // Its folder does not exist: it fails at start, with the reason in lastError.
          broken: { path: join(process.cwd(), "test/plugins/fixtures/no-such-plugin") },
        },
      },
    });
    await waitFor(async () => (await s.http.get("/v1/plugins/words")).json.state === "running", 15_000);
    const page = await tab(s);
    await page.click("[data-test=nav-plugins]");
    expect(new URL(page.url()).hash).toBe("#/plugins");
    const words = '[data-plugin="words"]';
    await page.waitForSelector(`${words} .badge:has-text("Running")`);
    expect(await page.textContent(`${words} .row-sub`)).toMatch(/^pid \d+ · 0 restarts · agents: words$/);
    expect(await page.isVisible(`${words} .badge:has-text("Public hooks")`)).toBe(true);
    expect(await page.textContent('[data-plugin="broken"] .badge')).toBe("Failed");
    expect(await page.textContent('[data-plugin="broken"] [data-test=last-error]')).toContain(
      "plugin path does not exist",
    );
    expect(await page.textContent(".plugins-view .list-summary")).toBe("2 configured · 1 running · 1 failed");

    const before = (await s.http.get("/v1/plugins/words")).json.pid as number;
    await page.click(`${words} [data-test=restart-plugin]`);
    await page.waitForSelector(".toast:has-text('words restarted')");
    const after = (await s.http.get("/v1/plugins/words")).json.pid as number;
    expect(after).not.toBe(before);
    await waitFor(async () => (await page.textContent(`${words} .row-sub`))?.includes(`pid ${after} `));
    // A restart that fails says why.
    await page.click('[data-plugin="broken"] [data-test=restart-plugin]');
    await page.waitForSelector(".toast:has-text('broken did not come back: plugin path does not exist')");

    const viewer = await s.page({ token: VIEWER_TOKEN });
    await viewer.click("[data-test=nav-plugins]");
    await viewer.waitForSelector(`${words} .badge:has-text("Running")`);
    expect(await viewer.locator("[data-test=restart-plugin]").count()).toBe(0);
  }, 60_000);

  it("stops a session and removes it with two clicks each; another page watching it is told", async () => {
    const s = shared();
    const res = await s.http.post("/v1/sessions", { command: ["sh", "-c", "echo working; sleep 300"], name: "doomed" });
    const id = res.json.id as string;
    const page = await reused(s, { hash: `#/s/${id}` });
    const watcher = await tab(s, { hash: `#/s/${id}` });
    await waitForTerminal(page, (t) => t.includes("working"), 10_000, "the output");
    expect(await page.isHidden("[data-test=remove]")).toBe(true);

    // One click only arms the button.
    await page.click("[data-test=stop]");
    expect(await page.textContent("[data-test=stop]")).toContain("Really stop?");
    expect((await s.http.get(`/v1/sessions/${id}`)).json.state).toBe("running");
    await page.click("[data-test=stop]");
    await page.waitForSelector("[data-test=exit-summary]");
    await page.waitForSelector("[data-test=remove]", { state: "visible" });
    expect(await page.isHidden("[data-test=stop]")).toBe(true);

    await page.click("[data-test=remove]");
    expect(await page.textContent("[data-test=remove]")).toContain("Remove for good?");
    await page.click("[data-test=remove]");
    await page.waitForFunction(() => location.hash === "#/");
    await waitFor(async () => (await s.http.get(`/v1/sessions/${id}`)).status === 404, 5_000, "the session to be gone");
    expect(await page.locator(`.row[data-session="${id}"]`).count()).toBe(0);
    // The watcher's page had the session's exit already; it learns of the removal from the list.
    await watcher.waitForSelector(".view-head [data-state=removed]");
    expect(await watcher.isHidden("[data-test=remove]")).toBe(true);
  });

  it("takes an armed Stop back with Escape, and leaves the focus on Remove after a keyboard Stop (exploratory test: it stayed armed, and the focus fell to the page)", async () => {
    const s = shared();
    const res = await s.http.post("/v1/sessions", { command: ["sh", "-c", "echo working; sleep 300"], name: "keyed" });
    const id = res.json.id as string;
    const page = await tab(s, { hash: `#/s/${id}` });
    await waitForTerminal(page, (t) => t.includes("working"), 10_000, "the output");
    await page.focus("[data-test=stop]");
    await page.keyboard.press("Enter");
    expect(await page.textContent("[data-test=stop]")).toContain("Really stop?");
    await page.keyboard.press("Escape");
    expect(await page.textContent("[data-test=stop]")).toBe("Stop");
    expect(await page.getAttribute("[data-test=stop]", "class")).not.toContain("confirm");
    // Disarmed, the next Enter only arms it again.
    await page.keyboard.press("Enter");
    expect(await page.textContent("[data-test=stop]")).toContain("Really stop?");
    expect((await s.http.get(`/v1/sessions/${id}`)).json.state).toBe("running");
    await page.keyboard.press("Enter");
    await page.waitForSelector("[data-test=remove]", { state: "visible" });
    await waitFor(
      async () => (await page.evaluate(() => document.activeElement?.getAttribute("data-test") ?? null)) === "remove",
    );
  });

  it("pulses nothing for a user who asked for reduced motion (exploratory test: badges pulsed and spinners spun regardless)", async () => {
    const s = shared();
    const id = await createAgent(s.http, "calm-bot");
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: "/permission edit the file" });
    const page = await tab(s, { hash: `#/s/${id}` });
    const dot = ".view-head .badge[data-state=waiting] .dot";
    await page.waitForSelector(dot);
    const animation = () => page.$eval(dot, (el) => getComputedStyle(el).animationName);
    expect(await animation()).toBe("pulse");
    await page.emulateMedia({ reducedMotion: "reduce" });
    expect(await animation()).toBe("none");
    expect(
      await page.$$eval("*", (els) => els.filter((el) => getComputedStyle(el).animationName !== "none").length),
    ).toBe(0);
  });

  it("keeps the list's filter when a session is opened and Back pressed (exploratory test: it went back to All)", async () => {
    const s = await stack();
    const ended = (await s.http.post("/v1/sessions", { command: ["true"], name: "finished" })).json.id as string;
    await createShell(s.http, "still-running");
    await waitFor(async () => (await s.http.get(`/v1/sessions/${ended}`)).json.state === "exited", 5_000, "the exit");
    const page = await tab(s);
    const rows = ".main .row";
    await waitFor(async () => (await page.locator(rows).count()) === 2, 5_000);
    await page.click(".main .chip:has-text('Ended')");
    expect(await page.locator(rows).count()).toBe(1);

    await page.click(`${rows}[data-session="${ended}"]`);
    await page.waitForSelector(".view[data-restored=true]");
    // The sidebar goes on with the same filter (exploratory test: it showed All).
    expect(await page.textContent(".sidebar .chip[aria-pressed=true]")).toBe("Ended1");
    // The chips are toggle buttons in a named group (they were tabs without panels).
    const shown = page.locator(".sidebar").getByRole("group", { name: "Show sessions" });
    expect(await shown.getByRole("button", { pressed: true }).textContent()).toBe("Ended1");
    expect(await shown.getByRole("button", { pressed: false }).count()).toBe(3);
    expect(await page.locator(".sidebar .row").count()).toBe(1);
    await page.goBack();
    await page.waitForSelector(`${rows}[data-session="${ended}"]`);
    expect(await page.textContent(".main .chip[aria-pressed=true]")).toBe("Ended1");
    expect(await page.locator(rows).count()).toBe(1);
  });

  it("shows a session the user stopped as stopped, not failed (exploratory test: a red Exited badge)", async () => {
    const s = shared();
    const agent = await createAgent(s.http, "stoppable");
    const sleeper = (await s.http.post("/v1/sessions", { command: ["sh", "-c", "echo working; sleep 300"] })).json
      .id as string;
    const page = await tab(s, { hash: `#/s/${agent}` });
    const stop = async (): Promise<void> => {
      await page.click("[data-test=stop]");
      await page.click("[data-test=stop]");
    };
    await stop();
    await page.waitForSelector(".view-head .badge:not([data-state=idle])");
    expect(await page.getAttribute(".view-head .badge", "data-state")).toBe("exited");
    expect(await page.textContent(".view-head .badge")).toBe("Stopped");
    await page.waitForSelector(`.sidebar .row[data-session="${agent}"] [data-state=exited]`);

    await open(page, `#/s/${sleeper}`);
    await waitForTerminal(page, (t) => t.includes("working"), 10_000, "the output");
    await stop();
    await page.waitForSelector("[data-test=exit-summary]");
    expect(await page.textContent("[data-test=exit-summary]")).toContain("Killed by SIGTERM");
    expect(await page.getAttribute(".end-banner", "class")).toContain("end-stopped");
    await page.waitForSelector(".view-head [data-state=exited]");

    // A shell in a PTY ignores SIGTERM: Stop ends it by hanging up its terminal (SIGHUP), which
    // is as much a stop (exploratory test: a red "Killed (SIGHUP)" for every stopped shell).
    const shell = await createShell(s.http, "stoppable-shell");
    await waitForPrompt(s.http, shell);
    await open(page, `#/s/${shell}`);
    await page.waitForSelector(".terminal-view");
    await stop();
    await page.waitForSelector("[data-test=exit-summary]");
    expect(await page.textContent("[data-test=exit-summary]")).toContain("SIGHUP");
    expect(await page.getAttribute(".end-banner", "class")).toContain("end-stopped");
    await page.waitForSelector(".view-head [data-state=exited]");
    await page.waitForSelector(`.sidebar .row[data-session="${shell}"] [data-state=exited]`);
  });

  it("does not redraw the session list and header for every chunk of a streaming answer (exploratory test: with 300 sessions listed, that took as long as the answer)", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "streamer");
    const page = await tab(s, { hash: `#/s/${id}` });
    // Every redraw of the sidebar rewrites its chips' counts; every redraw of the header its badge.
    await page.evaluate(() => {
      const counts = { list: 0, header: 0 };
      (window as unknown as { redraws: typeof counts }).redraws = counts;
      new MutationObserver(() => counts.list++).observe(document.querySelector(".sidebar .chip-count")!, {
        childList: true,
      });
      new MutationObserver(() => counts.header++).observe(document.querySelector(".view-head .badge")!, {
        childList: true,
      });
    });
    // 50 chunks, one every 30 ms.
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: "word ".repeat(60) });
    await page.waitForSelector("[data-test=run-done]", { timeout: 20_000 });
    const { list, header } = await page.evaluate(
      () => (window as unknown as { redraws: { list: number; header: number } }).redraws,
    );
    // The run starting and ending, and the list's polls (every 2 s), but not each chunk.
    expect(list).toBeLessThan(10);
    expect(header).toBeLessThan(10);
    expect((await runStatus(page, 0))?.text).toBe("word ".repeat(60));
  });
  it("filters by name, command, owner and state in the search box; rows show the last line and who watches, ended rows neither", async () => {
    const s = await stack({
      auth: {
        tokens: [
          { name: "otto", token: OPERATOR_TOKEN, role: "operator", sessions: [] },
          { name: "vera", token: VIEWER_TOKEN, role: "viewer", sessions: ["*"] },
        ],
      },
    });
    const server = (
      await s.http.post("/v1/sessions", {
        command: ["sh", "-c", "printf 'booting\\n\\033[32mlistening on :8080\\033[0m\\n'; sleep 300"],
        name: "web-server",
      })
    ).json.id as string;
    const lint = (await s.http.post("/v1/sessions", { command: ["sh", "-c", "echo 3 warnings; exit 1"], name: "lint" }))
      .json.id as string;
    const ottos = (await api(s.gateway.url, OPERATOR_TOKEN).post("/v1/sessions", { command: ["sleep", "300"] })).json
      .id as string;
    await waitFor(async () => (await s.http.get(`/v1/sessions/${lint}`)).json.state === "exited", 5_000, "lint's exit");
    const vera = await connect({ url: s.gateway.url, token: VIEWER_TOKEN });
    onTestFinished(() => vera.close());
    vera.subscribe(server, () => undefined);

    const page = await tab(s);
    const rows = ".main .row";
    const shown = async (): Promise<string[]> =>
      (await page.locator(rows).evaluateAll((els) => els.map((el) => el.getAttribute("data-session")!))).sort();
    await waitFor(async () => (await page.locator(rows).count()) === 3, 5_000);
    // The last line without its colour escapes; the watcher by name; nothing of the kind on an ended row.
    await waitFor(
      async () =>
        (await page.textContent(`.row[data-session="${server}"] [data-test=last-line]`)) === "listening on :8080",
    );
    await waitFor(
      async () => (await page.textContent(`.row[data-session="${server}"] [data-test=watchers]`)) === "vera watching",
    );
    expect(await page.textContent(`.row[data-session="${ottos}"] [data-test=watchers]`)).toBe("nobody watching");
    expect(await page.textContent(`.row[data-session="${lint}"] [data-test=last-line]`)).toBe("3 warnings");
    const ended = (await page.textContent(`.row[data-session="${lint}"]`))!;
    expect(ended).not.toMatch(/watching|free/);
    expect(
      await page.locator(`.row[data-session="${lint}"] .viewers, .row[data-session="${lint}"] .control`).count(),
    ).toBe(0);

    const search = async (query: string): Promise<string[]> => {
      await page.fill(".main [data-test=search]", query);
      return shown();
    };
    expect(await search("web")).toEqual([server]); // name
    expect(await search("sleep")).toEqual([ottos, server].sort()); // command
    expect(await search("otto")).toEqual([ottos]); // owner
    expect(await search("exited 1")).toEqual([lint]); // state as shown
    expect(await search("running admin")).toEqual([server]); // every word
    expect(await search("no-such-thing")).toEqual([]);
    expect(await page.textContent(".main .empty")).toBe("No sessions match “no-such-thing” here.");
    // The search holds across polls, and goes on in the sidebar next to a session opened from it.
    await search("web");
    await page.waitForResponse((r) => new URL(r.url()).pathname === "/v1/sessions");
    expect(await shown()).toEqual([server]);
    await page.click(`${rows}[data-session="${server}"]`);
    await page.waitForSelector(".view[data-restored=true]");
    expect(await page.inputValue(".sidebar [data-test=search]")).toBe("web");
    expect(await page.locator(".sidebar .row").count()).toBe(1);
    await page.fill(".sidebar [data-test=search]", "");
    expect(await page.locator(".sidebar .row").count()).toBe(3);
  });

  it("shows hits in the sessions' logs under the rows, the match marked; a hit opens its terminal finding the words", async () => {
    const s = shared();
    const id = (await s.http.post("/v1/sessions", { kind: "stream", name: "log-hit-stream" })).json.id as string;
    const posted = await s.http.post(`/v1/sessions/${id}/events`, {
      type: "output",
      data: { data: "deploy step 3 of 5\r\nerror: \u001b[31mflamingo9\u001b[0m timed out\r\n" },
    });
    expect(posted.status, posted.text).toBeLessThan(300);
    await waitFor(async () => (await s.http.get("/v1/search?q=flamingo9")).json.hits.length === 1, 10_000, "indexed");
    const page = await reused(s);
    await page.fill(".list-full .list-search", "flamingo9");
    const hit = page.locator(".main [data-test=log-hit]");
    await hit.waitFor();
    expect(await hit.count()).toBe(1);
    expect(await hit.locator(".log-hit-session").textContent()).toBe("log-hit-stream");
    expect(await hit.locator("mark").allTextContents()).toEqual(["flamingo9"]);
    expect(await hit.locator(".log-hit-snippet").textContent()).toContain("error: flamingo9 timed out");
    await hit.click();
    await page.waitForFunction((sid) => location.hash.startsWith(`#/s/${sid}?seq=`), id);
    await page.waitForSelector(".find-bar[data-found=true]");
    expect(await page.inputValue("[data-test=find-input]")).toBe("flamingo9");
  });

  it("starts an ended terminal again with the same command, cwd, size and name (Run again)", async () => {
    const s = await stack();
    const cwd = tempDir();
    const spec = {
      command: ["sh", "-c", "echo ran in $(pwd) at $(stty size)"],
      cwd,
      pty: true,
      cols: 91,
      rows: 23,
      name: "sizer",
    };
    const first = (await s.http.post("/v1/sessions", spec)).json.id as string;
    await createShell(s.http, "still-running");
    await waitFor(async () => (await s.http.get(`/v1/sessions/${first}`)).json.state === "exited", 5_000, "the exit");
    const page = await tab(s);
    const again = `.main .row-item[data-item="${first}"] [data-test=run-again]`;
    await page.waitForSelector(again);
    // A running session has no Run again.
    expect(await page.locator(".main [data-test=run-again]").count()).toBe(1);
    await page.click(again);
    await page.waitForFunction((old) => /^#\/s\//.test(location.hash) && !location.hash.includes(old), first);
    const second = decodeURIComponent(new URL(page.url()).hash.slice("#/s/".length));
    expect((await s.http.get(`/v1/sessions/${second}`)).json).toMatchObject(spec);
    await waitFor(
      async () => (await s.http.get(`/v1/sessions/${second}/output`)).text.includes(`ran in ${cwd} at 23 91`),
      10_000,
      "the new session's output",
    );
    await waitForTerminal(page, (t) => t.includes(`ran in ${cwd} at 23 91`), 10_000, "the output on the page");
  });

  it("removes every ended session with Remove ended after a confirming click, and only those", async () => {
    const s = await stack();
    const done = [] as string[];
    for (const name of ["one", "two"])
      done.push((await s.http.post("/v1/sessions", { command: ["true"], name })).json.id as string);
    const running = await createShell(s.http, "keep-me");
    for (const id of done)
      await waitFor(async () => (await s.http.get(`/v1/sessions/${id}`)).json.state === "exited", 5_000, "the exit");
    const page = await tab(s);
    await waitFor(async () => (await page.locator(".main .row").count()) === 3, 5_000);
    await page.click("[data-test=remove-ended]");
    expect(await page.textContent("[data-test=remove-ended]")).toBe("Remove 2 ended for good?");
    // Escape takes it back; nothing was removed.
    await page.keyboard.press("Escape");
    expect(await page.textContent("[data-test=remove-ended]")).toBe("Remove ended");
    expect((await s.http.get(`/v1/sessions/${done[0]}`)).status).toBe(200);
    await page.click("[data-test=remove-ended]");
    await page.click("[data-test=remove-ended]");
    await page.waitForSelector(".toast:has-text('Removed 2 ended sessions.')");
    for (const id of done) expect((await s.http.get(`/v1/sessions/${id}`)).status).toBe(404);
    expect((await s.http.get(`/v1/sessions/${running}`)).json.state).toBe("running");
    expect(await page.locator(".main .row").count()).toBe(1);
    // Nothing ended is left: the button goes.
    expect(await page.isHidden("[data-test=remove-ended]")).toBe(true);
  });

  it("lists 50 sessions with their last lines from one poll (screenshot: sessions-list.png)", async () => {
    const s = await stack();
    const requests: string[] = [];
    for (let i = 0; i < 50; i++) {
      const command =
        i % 5 === 4 ? ["sh", "-c", `echo job ${i} failed; exit 2`] : ["sh", "-c", `echo step ${i} of 50; sleep 300`];
      await s.http.post("/v1/sessions", { command, name: `job-${String(i).padStart(2, "0")}` });
    }
    const page = await tab(s);
    const record = (r: Request): void => void requests.push(new URL(r.url()).pathname);
    page.on("request", record);
    onTestFinished(() => void page.off("request", record));
    await waitFor(async () => (await page.locator(".main .row").count()) === 50, 10_000);
    await waitFor(async () => (await page.locator(".main [data-test=last-line]").count()) === 50, 10_000);
    expect(await page.textContent(`.main .row:has-text("job-07") [data-test=last-line]`)).toBe("step 7 of 50");
    await page.waitForResponse((r) => new URL(r.url()).pathname === "/v1/sessions");
    // The list's own poll is all it asks: no request per row.
    expect(requests.filter((p) => p.startsWith("/v1/sessions/"))).toEqual([]);
    await page.fill(".main [data-test=search]", "job-1");
    await waitFor(async () => (await page.locator(".main .row").count()) === 10);
    await page.fill(".main [data-test=search]", "");
    await page.locator(".main [data-test=search]").blur();
    await page.screenshot({ path: `${SCREENSHOTS}sessions-list.png` });
  });
  it("tells an operator with no sessions who can watch the one it starts, not that everyone can (exploratory test: it promised everyone)", async () => {
    const s = await stack({
      auth: { tokens: [{ name: "otto", token: OPERATOR_TOKEN, role: "operator", sessions: [] }] },
    });
    const page = await tab(s, { token: OPERATOR_TOKEN });
    await page.waitForSelector(".main .empty h3");
    const text = await page.textContent(".main .empty p");
    expect(text).toBe(
      "Start a shell or an agent. It is yours: admins, and tokens whose session patterns match its name, can watch it too.",
    );
    expect(text).not.toMatch(/everyone/);
  });
});
