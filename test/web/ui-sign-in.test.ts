/**
 * The web UI in a real browser (Chromium driven by playwright-core; set-up in ./ui-helpers.ts).
 * Signing in and out (the printed URL, a pasted token, the cookie's key) and what each role may do.
 */
import { describe, expect, it, onTestFinished } from "vitest";
import { connect } from "../../src/client/node.js";
import { TEST_TOKEN } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { terminalText, waitForTerminal } from "./harness.js";
import {
  OPERATOR_TOKEN,
  PHONE,
  SCREENSHOTS,
  VIEWER_TOKEN,
  createAgent,
  createShell,
  open,
  sharedStack,
  stack,
  useBrowser,
  waitForPrompt,
} from "./ui-helpers.js";

useBrowser();
// The tests that look at the whole session list (what a user sees first) have a gateway of their own.
const shared = sharedStack({
  auth: { tokens: [{ name: "vera", token: VIEWER_TOKEN, role: "viewer", sessions: ["*"] }] },
});

describe("web UI", () => {
  it("logs in from the printed URL, drops the token from the address bar and lists sessions live", async () => {
    const s = await stack({
      auth: { tokens: [{ name: "otto", token: OPERATOR_TOKEN, role: "operator", sessions: ["*"] }] },
    });
    const server = await createShell(s.http, "api-server");
    await waitForPrompt(s.http, server);
    await s.http.post(`/v1/sessions/${server}/input`, { data: "echo serving on :8080\r" });
    const agent = await createAgent(s.http, "refactor-bot");
    await s.http.post(`/v1/sessions/${agent}/prompt`, { text: "/permission rename the config loader" });
    await s.http.post("/v1/sessions", { command: ["sh", "-c", "echo ok"], name: "lint" });
    await s.http.post("/v1/sessions", { command: ["sh", "-c", "echo 3 failed; exit 1"], name: "test-suite" });
    // Someone else watches and steers: viewers and the controller show in the list.
    const otto = await connect({ url: s.gateway.url, token: OPERATOR_TOKEN });
    onTestFinished(() => otto.close());
    otto.subscribe(server, () => undefined);
    otto.subscribe(agent, () => undefined);
    await otto.control(server, "acquire");

    const page = await s.page();
    expect(new URL(page.url()).hash).toBe("");
    expect(page.url()).not.toContain(TEST_TOKEN);
    const cookie = (await page.context().cookies()).find((c) => c.name === "sb_session");
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict" });
    expect(cookie?.value).not.toContain(TEST_TOKEN);
    expect(await page.textContent("[data-test=whoami]")).toContain("admin");
    await waitFor(async () => (await page.locator(".main .row").count()) === 4, 10_000);
    await page.waitForSelector(`.main .row[data-session="${agent}"] [data-state=waiting]`);
    expect(await page.textContent(`.main .row[data-session="${agent}"] .badge`)).toBe("Waiting for input");
    await page.waitForSelector(`.main .row:has-text("test-suite") [data-state=failed]`);
    // Otto holds it through the SDK (a script), and the row says where.
    expect(await page.textContent(`.main .row[data-session="${server}"] .control`)).toBe("otto · SDK");
    expect(await page.textContent(`.main .row[data-session="${server}"] [data-test=watchers]`)).toBe("otto watching");
    // A screen reader hears what the icons show (exploratory test: "1 otto").
    await page.getByRole("link", { name: /otto watching ?, control: otto · SDK$/ }).waitFor({ timeout: 10_000 });
    expect(await page.textContent(`.main .row:has-text("test-suite") .badge`)).toBe("Exited 1");

    // Live: a session created elsewhere shows up without a reload (the ~2 s poll).
    const late = await createShell(s.http, "late-arrival");
    await page.waitForSelector(`.main .row[data-session="${late}"]`, { timeout: 6_000 });
    await page.waitForTimeout(300);
    await page.screenshot({ path: `${SCREENSHOTS}sessions.png` });
    const phone = await s.page({ viewport: PHONE, touch: true });
    await waitFor(async () => (await phone.locator(".main .row").count()) === 5, 10_000);
    await phone.waitForSelector(`.main .row[data-session="${agent}"] [data-state=waiting]`);
    await phone.waitForTimeout(300);
    await phone.screenshot({ path: `${SCREENSHOTS}sessions-phone.png` });

    // The cookie carries the session across a reload; the token is not needed again.
    await page.reload();
    await page.waitForSelector("[data-test=whoami]");
    // The list comes with its own request, after the page says who is signed in.
    await waitFor(async () => (await page.locator(".main .row").count()) === 5, 10_000);
  });

  it("refuses a bad token from the URL, signs in with a pasted one and signs out", async () => {
    const s = shared();
    const page = await s.blank("/#token=not-the-right-token-0123456789");
    await page.waitForSelector(".login-card");
    expect(await page.textContent(".form-error")).toContain("refused");
    expect(page.url()).not.toContain("not-the-right-token");
    await page.fill("input[name=token]", TEST_TOKEN);
    await page.click(".login-card button[type=submit]");
    await page.waitForSelector("[data-test=whoami]");
    await page.click("button[aria-label='Sign out']");
    await page.waitForSelector(".login-card");
    await page.reload();
    await page.waitForSelector(".login-card");
    expect(await page.locator("[data-test=whoami]").count()).toBe(0);
  });

  it("keeps the cookie's key in its origin's storage: the cookie alone, which every port of the host name is sent, signs nobody in; a sign-out in another tab signs this one out", async () => {
    const s = shared();
    const page = await s.page();
    const cookie = (await page.context().cookies()).find((c) => c.name === "sb_session")!;
    const key = await page.evaluate(() => localStorage.getItem("switchboard.cookieKey"));
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const whoami = (headers: Record<string, string>) => fetch(`${s.gateway.url}/v1/whoami`, { headers });
    // What a server on another port of the same host name is sent: refused.
    const alone = await whoami({ cookie: `sb_session=${cookie.value}` });
    expect(alone.status).toBe(401);
    expect(await alone.text()).toContain("sign in again");
    expect((await whoami({ cookie: `sb_session=${cookie.value}`, "x-switchboard-cookie-key": key! })).status).toBe(200);
    // The page's terminal connection (a WebSocket: the key goes as a subprotocol) works.
    const id = await createShell(s.http, "keyed");
    await page.goto(`${s.proxy.url}/#/s/${id}`);
    await page.waitForSelector(`.terminal-view[data-session="${id}"][data-restored=true]`);
    // Opening only looks; the first key takes control.
    await page.click(".term-host");
    await page.keyboard.type("echo keyed-$((6*7))\n");
    await waitForTerminal(page, (t) => /^keyed-42$/m.test(t), 10_000, "the echo output");

    // The printed URL opened again in another tab, as the same identity: the new cookie takes this
    // browser's key, and this tab goes on as it was (its page is not built anew).
    await page.evaluate(() => document.querySelector(".app")!.setAttribute("data-mark", "kept"));
    const again = await page.context().newPage();
    await again.goto(`${s.proxy.url}/#token=${TEST_TOKEN}`);
    await again.waitForSelector("[data-test=whoami]");
    const second = (await page.context().cookies()).find((c) => c.name === "sb_session")!;
    expect(second.value).not.toBe(cookie.value);
    expect(await again.evaluate(() => localStorage.getItem("switchboard.cookieKey"))).toBe(key);
    const late = await createShell(s.http, "after-second-sign-in");
    await page.waitForSelector(`[data-session="${late}"]`, { timeout: 10_000 });
    expect(await page.getAttribute(".app", "data-mark")).toBe("kept");
    await again.close();

    const other = await page.context().newPage();
    await other.goto(`${s.proxy.url}/`);
    await other.click("button[aria-label='Sign out']");
    await other.waitForSelector(".login-card");
    await page.waitForSelector(".login-card", { timeout: 10_000 });
    expect(await page.evaluate(() => localStorage.getItem("switchboard.cookieKey"))).toBeNull();
    expect((await whoami({ cookie: `sb_session=${cookie.value}`, "x-switchboard-cookie-key": key! })).status).toBe(401);
  });

  it("signs in with the whole printed URL pasted into the token box (exploratory test: 'invalid token' for the line serve printed)", async () => {
    const s = shared();
    const page = await s.blank("/");
    await page.waitForSelector(".login-card");
    await page.fill("input[name=token]", `  ${s.gateway.url}/#token=${TEST_TOKEN}\n`);
    await page.click(".login-card button[type=submit]");
    await page.waitForSelector("[data-test=whoami]:has-text('admin')", { timeout: 10_000 });
  });

  it("signs in from the printed URL opened in a tab already on the sign-in page (audit: nothing happened)", async () => {
    const s = shared();
    const page = await s.blank("/");
    await page.waitForSelector(".login-card");
    await page.goto(`${s.proxy.url}/#token=${TEST_TOKEN}`);
    await page.waitForSelector("[data-test=whoami]:has-text('admin')", { timeout: 10_000 });
    expect(page.url()).toBe(`${s.proxy.url}/`);
  });

  it("switches to the identity of a printed URL opened in a signed-in tab, and says when its token is refused", async () => {
    const s = shared();
    const id = await createShell(s.http, "watched");
    const page = await s.page({ hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=mine]");
    await page.goto(`${s.proxy.url}/#token=${VIEWER_TOKEN}`);
    await page.waitForSelector("[data-test=whoami]:has-text('vera')", { timeout: 10_000 });
    expect(await page.textContent("[data-test=whoami]")).toContain("viewer");
    expect(page.url()).toBe(`${s.proxy.url}/`);
    await page.waitForSelector(`.main .row[data-session="${id}"]`);
    // The admin's page let go of the shell's control when it closed.
    await waitFor(async () => (await s.http.get(`/v1/sessions/${id}`)).json.controller === null, 5_000, "release");

    await page.goto(`${s.proxy.url}/#token=not-the-right-token-0123456789`);
    await page.waitForSelector(".toast:has-text('refused')", { timeout: 10_000 });
    expect(await page.textContent("[data-test=whoami]")).toContain("vera");
    expect(page.url()).toBe(`${s.proxy.url}/`);
  });

  it("gives a viewer token a read-only UI that cannot type, prompt or create", async () => {
    const s = shared();
    const shell = await createShell(s.http, "prod-shell");
    await waitForPrompt(s.http, shell);
    await s.http.post(`/v1/sessions/${shell}/input`, { data: "echo watched\r" });
    const agent = await createAgent(s.http, "helper");
    await s.http.post(`/v1/sessions/${agent}/prompt`, { text: "/permission deploy" });

    const page = await s.page({ token: VIEWER_TOKEN });
    expect(await page.textContent("[data-test=whoami]")).toContain("viewer");
    expect(await page.locator("[data-test=new-session]").count()).toBe(0);

    await open(page, `#/s/${shell}`);
    await page.waitForSelector(".terminal-view[data-control=viewer]");
    await waitForTerminal(page, (t) => /^watched$/m.test(t), 10_000, "the shell's output");
    expect(await page.locator("[data-test=take-control]").count()).toBe(0);
    await page.click(".term-host");
    await page.keyboard.type("echo viewer-was-here\n");
    await page.waitForTimeout(500);
    expect(await terminalText(page)).not.toContain("viewer-was-here");
    const inputs = await s.http.get(`/v1/sessions/${shell}/events?types=input`);
    expect(inputs.json.events.length).toBeGreaterThan(0); // the admin's "echo watched"
    expect(inputs.json.events.filter((e: { by: { name: string } }) => e.by.name === "vera")).toHaveLength(0);

    await open(page, `#/s/${agent}`);
    await page.waitForSelector(".permission[data-resolved=false]");
    expect(await page.locator("[data-test=readonly]").count()).toBe(1);
    expect(await page.locator(".prompt-input").count()).toBe(0);
    expect(await page.locator(".permission [data-option]").count()).toBe(0);
    expect(await page.locator("[data-test=abort]").count()).toBe(0);
  });

  it("tells a viewer that others answer and start sessions (exploratory test: 'Waiting for your answer', 'Start a shell')", async () => {
    const s = await stack({
      auth: { tokens: [{ name: "vera", token: VIEWER_TOKEN, role: "viewer", sessions: ["*"] }] },
    });
    const page = await s.page({ token: VIEWER_TOKEN });
    await page.waitForSelector(".main .empty h3");
    expect(await page.textContent(".main .empty h3")).toBe("No sessions to watch yet");
    expect(await page.textContent(".main .empty")).not.toContain("Start a shell");

    const agent = await createAgent(s.http, "helper");
    await s.http.post(`/v1/sessions/${agent}/prompt`, { text: "/permission deploy" });
    await open(page, `#/s/${agent}`);
    await page.waitForSelector(".permission[data-resolved=false]");
    expect(await page.textContent(".run-foot.working")).toBe("Waiting for an answer");
  });
});
