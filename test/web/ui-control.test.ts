/**
 * The web UI in a real browser (Chromium driven by playwright-core; set-up in ./ui-helpers.ts).
 * The control lease: taking, losing and handing over control, and keys typed around it.
 */
import { describe, expect, it, onTestFinished } from "vitest";
import type { Page } from "playwright-core";
import { WebSocket } from "ws";
import { connect } from "../../src/client/node.js";
import { TEST_TOKEN } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { terminalText, waitForTerminal } from "./harness.js";
import {
  DESKTOP,
  OPERATOR_TOKEN,
  browser,
  createShell,
  dropFirstControlRequest,
  open,
  ownProxy,
  pollNow,
  reusedTab,
  sharedPage,
  sharedStack,
  stack,
  useBrowser,
  waitForPrompt,
} from "./ui-helpers.js";
import type { Stack } from "./ui-helpers.js";

useBrowser();

// One gateway for the tests that open sessions of their own and leave the proxy alone (the
// operator's token is for the two that name who holds control); the others start their own.
const shared = sharedStack({
  auth: { tokens: [{ name: "otto", token: OPERATOR_TOKEN, role: "operator", sessions: ["*"] }] },
});
/** The desktop page of the tests that need no page of their own (see sharedPage). */
const reused = sharedPage();
/** The tab the tests that need a page new to them (their own gateway's, a second one) load anew. */
const tab = reusedTab();

/**
 * Makes the page's tab one that held control of `id` before a reload (web/src/tab-memory.ts): its
 * page then takes control back by itself, which is what a dropped connection must not spoil.
 */
async function heldBeforeReload(page: Page, id: string): Promise<void> {
  await page.evaluate((session) => sessionStorage.setItem(`switchboard.control:${session}`, "1"), id);
}

describe("web UI", () => {
  it("takes control once the connection is back when the connection dropped as the page took it, without a notice (exploratory test: 'Could not take control' during reconnects)", async () => {
    const s = shared();
    const id = await createShell(s.http, "flaky");
    await waitForPrompt(s.http, id);
    const context = await browser.newContext({ viewport: DESKTOP, serviceWorkers: "block" });
    onTestFinished(() => context.close());
    // The page's first request for control goes nowhere: its connection drops as it goes out.
    const drop = await dropFirstControlRequest(context);
    const page = await context.newPage();
    await page.goto(`${s.proxy.url}/#token=${TEST_TOKEN}`);
    await page.waitForSelector("[data-test=whoami]");
    await heldBeforeReload(page, id);
    await open(page, `#/s/${id}`, { take: false });
    await page.waitForSelector(".terminal-view[data-control=mine]", { timeout: 15_000 });
    expect(drop.cuts).toBe(1);
    expect((await s.http.get(`/v1/sessions/${id}`)).json.controller).toBe("admin");
    await page.waitForTimeout(300);
    expect(await page.locator(".toast").allTextContents()).toEqual([]);
  });

  it("says nothing when control it takes again after a drop is of a session that ended meanwhile", async () => {
    const s = shared();
    const id = await createShell(s.http, "ends-away");
    await waitForPrompt(s.http, id);
    const context = await browser.newContext({ viewport: DESKTOP, serviceWorkers: "block" });
    onTestFinished(() => context.close());
    // The first request for control drops the connection, which comes back only once the session ended.
    let ended: () => void = () => undefined;
    const sessionEnded = new Promise<void>((resolve) => (ended = resolve));
    const drop = await dropFirstControlRequest(context, sessionEnded);
    const page = await context.newPage();
    await page.goto(`${s.proxy.url}/#token=${TEST_TOKEN}`);
    await page.waitForSelector("[data-test=whoami]");
    await heldBeforeReload(page, id);
    await open(page, `#/s/${id}`, { take: false });
    await waitFor(async () => drop.cuts === 1, 10_000, "the connection to drop");
    await s.http.post(`/v1/sessions/${id}/signal`, { signal: "KILL" });
    await waitFor(async () => (await s.http.get(`/v1/sessions/${id}`)).json.state !== "running", 10_000, "the end");
    ended();
    await page.waitForSelector("[data-test=exit-summary]", { timeout: 15_000 });
    await page.waitForTimeout(500);
    expect(await page.locator(".toast").allTextContents()).toEqual([]);
  });

  it("leaves the focus where the user put it when the control that typing asked for comes later", async () => {
    const s = shared();
    const id = await createShell(s.http, "late-grant");
    await waitForPrompt(s.http, id);
    const context = await browser.newContext({ viewport: DESKTOP, serviceWorkers: "block" });
    onTestFinished(() => context.close());
    // The page's first request for control waits until the test lets it go on, as on a slow link.
    let held: () => void = () => undefined;
    const holding = new Promise<void>((resolve) => (held = resolve));
    let grant: () => void = () => undefined;
    const granted = new Promise<void>((resolve) => (grant = resolve));
    await context.routeWebSocket(/\/v1\/ws/, (ws) => {
      const server = ws.connectToServer();
      let queue = Promise.resolve();
      ws.onMessage((message) => {
        queue = queue.then(async () => {
          if (typeof message === "string" && /"op":"control".*"acquire"/.test(message)) {
            held();
            await granted;
          }
          server.send(message);
        });
      });
      server.onMessage((message) => ws.send(message));
    });
    const page = await context.newPage();
    await page.goto(`${s.proxy.url}/#token=${TEST_TOKEN}`);
    await page.waitForSelector("[data-test=whoami]");
    await open(page, `#/s/${id}`, { take: false });
    await page.click(".xterm");
    await page.keyboard.type("echo late-");
    await holding;
    // The user leaves the terminal before control comes.
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    grant();
    await page.waitForSelector(".terminal-view[data-control=mine]", { timeout: 10_000 });
    // The keys typed before it reach the shell; the focus stays where the user put it.
    await page.keyboard.press("g");
    await page.keyboard.press("s");
    await page.waitForFunction(() => location.hash === "#/", undefined, { timeout: 10_000 });
    expect(await page.evaluate(() => document.activeElement === document.body)).toBe(true);
    await waitFor(
      async () => (await s.http.get(`/v1/sessions/${id}/output`)).text.includes("echo late-"),
      10_000,
      "the keys typed ahead",
    );
    expect((await s.http.get(`/v1/sessions/${id}/output`)).text).not.toContain("echo late-gs");
  });

  it("says why Take control failed when the user asked for it, also when the connection dropped", async () => {
    // The shared gateway, behind a proxy of the test's own to cut.
    const s = await ownProxy(shared());
    const id = await createShell(s.http, "taken");
    await waitForPrompt(s.http, id);
    const other = await connect({ url: s.gateway.url, token: TEST_TOKEN });
    onTestFinished(() => other.close());
    await other.control(id, "acquire");
    const page = await tab(s, { hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=other]");
    // Take control's request is held; then the connection drops under it.
    s.proxy.blackhole("up");
    await page.click("[data-test=take-control]");
    await page.waitForTimeout(200);
    s.proxy.cut();
    s.proxy.heal();
    await page.waitForSelector(".toast:has-text('Could not take control')", { timeout: 10_000 });
  });

  // One take-over for two stories: Bob's page, in control, types and Alice's page watches (her keys
  // go nowhere); then Bob reloads (issue: page A took control back from a reloading page B).
  it("hands control over to another page that takes it, and keeps it with that page when it reloads while the other stays read-only", async () => {
    const s = shared();
    const id = await createShell(s.http, "reloaded");
    await waitForPrompt(s.http, id);
    const { alice, bob } = await bobTakesOver(s, id);
    await bob.click(".term-host");
    await bob.keyboard.type("echo from-$((40+2))-bob\n");
    // Alice watches Bob's typing live.
    await waitForTerminal(alice, (t) => /^from-42-bob$/m.test(t), 10_000, "Bob's output on Alice's page");

    // Every control state Alice's page shows from now on.
    await alice.evaluate(() => {
      const view = document.querySelector(".terminal-view")!;
      const seen: string[] = [];
      (window as unknown as { seenControl: string[] }).seenControl = seen;
      new MutationObserver(() => seen.push(view.getAttribute("data-control") ?? "")).observe(view, {
        attributeFilter: ["data-control"],
      });
    });
    await bob.reload();
    await bob.waitForSelector(".terminal-view[data-restored=true]");
    await bob.waitForSelector(".terminal-view[data-control=mine]", { timeout: 10_000 });
    await bob.click(".term-host");
    await bob.keyboard.type("echo back-$((40+2))\n");
    await waitForTerminal(alice, (t) => /^back-42$/m.test(t), 10_000, "Bob's typing after his reload");
    const seen = await alice.evaluate(() => (window as unknown as { seenControl: string[] }).seenControl);
    expect(seen.filter((state) => state !== "other")).toEqual([]);
    expect(await alice.getAttribute(".terminal-view", "data-control")).toBe("other");
    // The log says the reloaded page acquired it, with no moment nobody held it.
    const events = (await s.http.get(`/v1/sessions/${id}/events?types=control`)).json.events as {
      action: string;
    }[];
    expect(events.map((e) => e.action).slice(-2)).toEqual(["taken-over", "acquired"]);

    // Alice's keys go nowhere while Bob is in control.
    await alice.click(".term-host");
    await alice.keyboard.type("echo alice-typed\n");
    await alice.waitForTimeout(400);
    expect(await terminalText(bob)).not.toContain("alice-typed");
  });

  it("tells the signed-in user that they hold control in another tab, not that admin does (exploratory test: 'admin is in control' to admin)", async () => {
    const s = shared();
    const id = await createShell(s.http, "two-tabs");
    const first = await s.page({ hash: `#/s/${id}` });
    await first.waitForSelector(".terminal-view[data-control=mine]");
    // Another tab of the same browser: the same cookie, its own connection and so no lease.
    const second = await first.context().newPage();
    await second.goto(`${s.proxy.url}/#/s/${id}`);
    await second.waitForSelector(".terminal-view[data-control=other]");
    const elsewhere = "Read-only · you are in control in another tab or window";
    expect(await second.textContent(".control-bar span")).toBe(elsewhere);
    // The header names the holder "you" too, as does the full list's row.
    const headerHolder = (page: typeof first) => page.locator(".view-meta .meta.held").textContent();
    await waitFor(async () => (await headerHolder(second)) === "you · another tab");
    const list = await first.context().newPage();
    await list.goto(`${s.proxy.url}/#/`);
    await waitFor(
      async () => (await list.locator(`[data-session="${id}"] .row-meta.control`).textContent()) === "you · web",
    );
    await list.close();
    await second.click("[data-test=take-control]");
    await second.waitForSelector(".terminal-view[data-control=mine]");
    await first.waitForSelector(".terminal-view[data-control=other]");
    expect(await first.textContent(".control-bar span")).toBe(elsewhere);
    expect(await first.isVisible("[data-test=take-control]")).toBe(true);
    // The tab that lost it says where control went, not that admin took it from admin.
    await first.waitForSelector(".toast:has-text('You took control in another tab or window')");
    expect(await first.locator(".toast:has-text('You lost control')").count()).toBe(0);
    // Someone else is still named.
    const otto = await connect({ url: s.gateway.url, token: OPERATOR_TOKEN });
    onTestFinished(() => otto.close());
    await otto.control(id, "acquire", { force: true });
    for (const page of [first, second]) {
      await waitFor(
        async () => (await page.textContent(".control-bar span")) === "Read-only · otto is in control through the SDK",
      );
      await waitFor(async () => (await headerHolder(page)) === "otto · SDK");
    }
    await second.waitForSelector(".toast:has-text('You lost control: control was taken over by otto')");
  });

  it("names who holds control and where — a page, switchboard attach, the SDK — alike in the bar and the header of both pages", async () => {
    const s = shared();
    const id = await createShell(s.http, "who-holds");
    await waitForPrompt(s.http, id);
    const admin = await reused(s, { hash: `#/s/${id}` });
    await admin.waitForSelector(".terminal-view[data-control=mine]");
    const otto = await tab(s, { token: OPERATOR_TOKEN, hash: `#/s/${id}` });
    // What each page says: its bar, then its header.
    const says = async (page: typeof admin) => [
      await page.textContent(".control-bar span"),
      await page.textContent("[data-test=control-holder]"),
    ];
    const expectBoth = async (forAdmin: string[], forOtto: string[]) => {
      await waitFor(async () => {
        expect(await says(admin)).toEqual(forAdmin);
        return true;
      });
      await waitFor(async () => {
        expect(await says(otto)).toEqual(forOtto);
        return true;
      });
    };
    await expectBoth(
      ["You're in control · what you type goes to the session", "you · this page"],
      ["Read-only · admin is in control in the web UI", "admin · web"],
    );
    // Otto's script takes it over through the SDK.
    const sdk = await connect({ url: s.gateway.url, token: OPERATOR_TOKEN });
    onTestFinished(() => sdk.close());
    await sdk.control(id, "acquire", { force: true });
    await expectBoth(
      ["Read-only · otto is in control through the SDK", "otto · SDK"],
      ["Read-only · you are in control through the SDK", "you · SDK"],
    );
    // Admin takes it over in a terminal (as switchboard attach does).
    const attach = new WebSocket(`${s.gateway.url.replace(/^http/, "ws")}/ws/session/${id}?control=force`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    onTestFinished(() => attach.close());
    await expectBoth(
      ["Read-only · you are in control in switchboard attach", "you · attach"],
      ["Read-only · admin is in control in switchboard attach", "admin · attach"],
    );
    // And the list says it the same way.
    await otto.evaluate(() => (location.hash = "#/"));
    await waitFor(
      async () => (await otto.locator(`[data-session="${id}"] .row-meta.control`).textContent()) === "admin · attach",
    );
  });

  // Found by a re-check: a page that had released control took it back by itself when a program
  // queried the terminal (xterm's answer went out as if typed), and resized the PTY to its window.
  it("leaves control free after Release when a program queries the terminal: its answer is not typed", async () => {
    const s = shared();
    const id = await createShell(s.http, "query-after-release");
    await waitForPrompt(s.http, id);
    const page = await reused(s, { hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=mine]");
    await page.click(".control-bar button:has-text('Release')");
    await page.waitForSelector(".terminal-view[data-control=free]");
    const inputs = async () => (await s.http.get(`/v1/sessions/${id}/events?types=input`)).json.events.length as number;
    const before = await inputs();
    // Typed by another client while control is free: a cursor position query, as vim sends.
    await s.http.post(`/v1/sessions/${id}/input`, { data: "printf 'asked\\033[6n'\r" });
    await waitForTerminal(page, (t) => /asked/.test(t), 5_000, "the query printed");
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await inputs()).toBe(before + 1);
    expect((await s.http.get(`/v1/sessions/${id}`)).json.controller).toBeNull();
    expect(await page.getAttribute(".terminal-view", "data-control")).toBe("free");
  });

  // Found by a re-check: output missed while the connection was down came after the reconnect as
  // live output, and xterm answered the queries in it: late answers typed into whatever ran then.
  it("does not answer the queries in output it missed while disconnected", async () => {
    // No grace: the page's lease ends with its connection, not 10 s later.
    const s = await stack({ control: { reconnectGraceMs: 0 } });
    const id = await createShell(s.http, "query-while-away");
    await waitForPrompt(s.http, id);
    const page = await tab(s, { hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=mine]");
    s.proxy.down = true;
    s.proxy.cut();
    await page.waitForSelector(".conn.conn-stale", { timeout: 10_000 });
    // The page's lease ended with its connection: another client asks the terminal while it is away.
    await waitFor(async () => (await s.http.get(`/v1/sessions/${id}`)).json.controller === null, 10_000, "release");
    await s.http.post(`/v1/sessions/${id}/input`, {
      data: "printf 'away\\033[6n-asked\\n'; IFS= read -rs -t 8 -n 64 x; printf 'left=%q\\n' \"$x\"\r",
    });
    await waitFor(
      async () => (await s.http.get(`/v1/sessions/${id}/output`)).text.includes("away\x1b[6n-asked"),
      5_000,
      "the query",
    );
    s.proxy.down = false;
    await pollNow(page);
    await page.waitForSelector(".conn[data-state=open]:not(.conn-stale)", { timeout: 20_000 });
    // Shown past the query, it was parsed: an answer xterm made goes out before the line typed
    // now, and the read would get both.
    await waitForTerminal(page, (t) => /^away-asked$/m.test(t), 15_000, "the missed output");
    await page.click(".term-host");
    await page.keyboard.type("typed-after\n");
    await waitForTerminal(page, (t) => /^left=/m.test(t), 15_000, "the read's end");
    expect(await terminalText(page)).toMatch(/^left=typed-after$/m);
  });

  it("sends a line typed fast while nobody holds control whole and in order (audit: keys lost after Release)", async () => {
    const s = shared();
    const id = await createShell(s.http, "free-typing");
    await waitForPrompt(s.http, id);
    const page = await reused(s, { hash: `#/s/${id}` });
    for (const round of [1, 2, 3]) {
      await page.waitForSelector(".terminal-view[data-control=mine]");
      await page.click(".control-bar button:has-text('Release')");
      await page.waitForSelector(".terminal-view[data-control=free]");
      await page.click(".term-host");
      // The first key takes control; the rest arrive while that is on its way.
      await page.keyboard.type(`echo typed-${round}-$((40+2))\n`);
      await waitForTerminal(page, (t) => new RegExp(`^typed-${round}-42$`, "m").test(t), 5_000, `round ${round}`);
    }
  });

  it("sends a line typed after the idle control lease lapsed whole and in order (audit: keys reordered)", async () => {
    const s = await stack({ control: { autoReleaseAfterMs: 1_000 } });
    const id = await createShell(s.http, "lapsed");
    await waitForPrompt(s.http, id);
    const page = await tab(s, { hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=mine]");
    await page.click(".term-host");
    await page.waitForSelector(".terminal-view[data-control=free]", { timeout: 5_000 });
    await page.keyboard.type("echo lapsed-$((40+2))\n");
    await waitForTerminal(page, (t) => /^lapsed-42$/m.test(t), 5_000, "the echoed line");
  });
});

/** Alice's page opens the session and takes control; Bob's page opens it and takes it over. */
async function bobTakesOver(s: Stack, id: string): Promise<{ alice: Page; bob: Page }> {
  const alice = await reused(s, { hash: `#/s/${id}` });
  await alice.waitForSelector(".terminal-view[data-control=mine]");
  const bob = await tab(s, { hash: `#/s/${id}` });
  await bob.waitForSelector(".terminal-view[data-control=other]");
  await bob.click("[data-test=take-control]");
  await bob.waitForSelector(".terminal-view[data-control=mine]");
  await alice.waitForSelector(".terminal-view[data-control=other]");
  return { alice, bob };
}
