/**
 * The web UI in a real browser (docs/ui.md): Debian's Chromium driven by
 * playwright-core against a real gateway on 127.0.0.1, through a TCP proxy that can cut
 * the connections. The UI is built from web/src first, exactly as `npm run build` does.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { connect } from "../../src/client/node.js";
import { startGateway } from "../../src/server/gateway.js";
import type { Gateway } from "../../src/server/gateway.js";
import type { ConfigInput } from "../../src/server/config.js";
import { createLogger } from "../../src/server/logger.js";
import { TEST_TOKEN, api, waitFor } from "../helpers/gateway.js";
import { tempDir } from "../helpers/tmp.js";
import { FaultProxy } from "../helpers/fault-proxy.js";
import { serveInChild } from "../helpers/serve-child.js";
import { foregroundJob } from "../sessions/process-helpers.js";
import { buildWeb, debugView, launchBrowser, terminalText, waitForTerminal } from "./harness.js";
import type { DebugView } from "./harness.js";

/** The README's screenshots are rewritten only when asked (`UPDATE_SCREENSHOTS=1 npm test`); a plain run keeps the tree clean. */
const SCREENSHOTS = process.env["UPDATE_SCREENSHOTS"]
  ? new URL("../../docs/screenshots/", import.meta.url).pathname
  : `${mkdtempSync(join(tmpdir(), "switchboard-screenshots-"))}/`;
const VIEWER_TOKEN = "viewer-token-vera-0123456789abcdef";
const OPERATOR_TOKEN = "operator-token-otto-0123456789abcdef";
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const PHONE_LANDSCAPE = { width: 844, height: 390 };
/** A bash without rc files and with a fixed, recognisable prompt. */
const SHELL = ["bash", "--noprofile", "--norc", "-i"];
const SHELL_ENV = {
  PS1: "\\[\\e[32m\\]dev@switchboard\\[\\e[0m\\]:\\[\\e[34m\\]~/app\\[\\e[0m\\]$ ",
  TERM: "xterm-256color",
};

let browser: Browser;

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await buildWeb();
  browser = await launchBrowser();
}, 120_000);

afterAll(() => {
  if (!process.env["UPDATE_SCREENSHOTS"]) rmSync(SCREENSHOTS, { recursive: true, force: true });
});

afterAll(async () => {
  await browser?.close();
});

interface Stack {
  gateway: Gateway;
  proxy: FaultProxy;
  http: ReturnType<typeof api>;
  /** A signed-in page (a fresh browser context: its own cookie jar); `touch` makes it a phone's (taps, no hover). */
  page(options?: {
    token?: string;
    viewport?: { width: number; height: number };
    touch?: boolean;
    hash?: string;
  }): Promise<Page>;
  /** A page at `path` in a fresh context, not signed in. */
  blank(path: string): Promise<Page>;
}

/** A gateway (on `dataDir`), a proxy in front of it and a way to open signed-in pages; all closed after the test. */
async function stack(config?: ConfigInput, dataDir = tempDir()): Promise<Stack> {
  const gateway = await startGateway({
    host: "127.0.0.1",
    port: 0,
    dataDir,
    token: TEST_TOKEN,
    logger: createLogger({ level: "silent" }),
    ...(config ? { config } : {}),
  });
  const proxy = await FaultProxy.start(gateway.url);
  const contexts: BrowserContext[] = [];
  onTestFinished(async () => {
    for (const context of contexts) await context.close();
    await proxy.close();
    await gateway.close();
  });
  const blank = async (path: string, viewport = DESKTOP, touch = false): Promise<Page> => {
    const context = await browser.newContext({ viewport, ...(touch ? { hasTouch: true, isMobile: true } : {}) });
    contexts.push(context);
    const page = await context.newPage();
    page.on("pageerror", (error) => console.error("page error:", error));
    await page.goto(`${proxy.url}${path}`);
    return page;
  };
  return {
    gateway,
    proxy,
    http: api(gateway.url),
    blank,
    async page({ token = TEST_TOKEN, viewport = DESKTOP, touch = false, hash = "" } = {}) {
      const page = await blank(`/#token=${token}`, viewport, touch);
      await page.waitForSelector("[data-test=whoami]");
      if (hash) await open(page, hash);
      return page;
    },
  };
}

/**
 * Drops the page's /v1/ws connection as its first `control` acquire goes out (the request never
 * reaches the gateway); the connections after it open only once `reconnectAfter` settles.
 * `cuts` counts the drops.
 */
async function dropFirstControlRequest(
  context: BrowserContext,
  reconnectAfter: Promise<void> = Promise.resolve(),
): Promise<{ readonly cuts: number }> {
  const state = { cuts: 0 };
  await context.routeWebSocket(/\/v1\/ws/, async (ws) => {
    if (state.cuts > 0) await reconnectAfter;
    const server = ws.connectToServer();
    ws.onMessage((message) => {
      if (state.cuts === 0 && typeof message === "string" && /"op":"control".*"acquire"/.test(message)) {
        state.cuts++;
        void ws.close({ code: 1006 });
        void server.close();
        return;
      }
      server.send(message);
    });
    server.onMessage((message) => ws.send(message));
  });
  return state;
}

async function open(page: Page, hash: string): Promise<void> {
  await page.evaluate((h) => (location.hash = h), hash);
  await page.waitForSelector(`.view[data-restored=true]`);
}

async function createShell(http: Stack["http"], name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await http.post("/v1/sessions", {
    command: SHELL,
    env: SHELL_ENV,
    pty: true,
    name,
    cols: 100,
    rows: 28,
    ...extra,
  });
  expect(res.status).toBe(201);
  return res.json.id as string;
}

/** Waits for the shell's prompt, so input is not typed ahead (and echoed twice). */
async function waitForPrompt(http: Stack["http"], id: string): Promise<void> {
  await waitFor(async () => (await http.get(`/v1/sessions/${id}/output`)).text.includes("/app"), 10_000, "the prompt");
}

async function createAgent(http: Stack["http"], name: string): Promise<string> {
  const res = await http.post("/v1/sessions", { kind: "agent", agent: "echo", name });
  expect(res.status).toBe(201);
  return res.json.id as string;
}

async function runStatus(page: Page, index: number): Promise<{ status: string; text: string } | undefined> {
  return (await debugView(page))?.runs?.[index];
}

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
    await expect.poll(() => page.locator(".main .row").count(), { timeout: 10_000 }).toBe(4);
    await page.waitForSelector(`.main .row[data-session="${agent}"] [data-state=waiting]`);
    expect(await page.textContent(`.main .row[data-session="${agent}"] .badge`)).toBe("Waiting for input");
    await page.waitForSelector(`.main .row:has-text("test-suite") [data-state=failed]`);
    expect(await page.textContent(`.main .row[data-session="${server}"] .control`)).toBe("otto");
    expect(await page.textContent(`.main .row[data-session="${server}"] .viewers`)).toBe("1");
    // A screen reader hears what the icons show (exploratory test: "1 otto").
    await page.getByRole("link", { name: /1 watching, control: otto$/ }).waitFor({ timeout: 10_000 });
    expect(await page.textContent(`.main .row:has-text("test-suite") .badge`)).toBe("Exited 1");

    // Live: a session created elsewhere shows up without a reload (the ~2 s poll).
    const late = await createShell(s.http, "late-arrival");
    await page.waitForSelector(`.main .row[data-session="${late}"]`, { timeout: 6_000 });
    await page.waitForTimeout(300);
    await page.screenshot({ path: `${SCREENSHOTS}sessions.png` });

    // The cookie carries the session across a reload; the token is not needed again.
    await page.reload();
    await page.waitForSelector("[data-test=whoami]");
    // The list comes with its own request, after the page says who is signed in.
    await expect.poll(() => page.locator(".main .row").count(), { timeout: 10_000 }).toBe(5);
  });

  it("keeps keyboard focus on a filter chip and on a session row across list polls (exploratory test: focus was lost every few seconds)", async () => {
    const s = await stack();
    const id = await createShell(s.http, "focused");
    const page = await s.page();
    const row = `.main .row[data-session="${id}"]`;
    await page.waitForSelector(row);
    const focused = (): Promise<string> =>
      page.evaluate(() => {
        const el = document.activeElement;
        if (!(el instanceof HTMLElement) || el === document.body) return "(nothing)";
        return el.dataset["session"] ?? el.textContent ?? "";
      });
    const poll = (): Promise<unknown> => page.waitForResponse((r) => new URL(r.url()).pathname === "/v1/sessions");

    await page.focus(".main .chip:has-text('Active')");
    await poll();
    await page.waitForTimeout(100);
    expect(await focused()).toBe("Active1");

    await page.focus(row);
    // The row's time goes from "just now" to "5s ago", "7s ago"… with the polls.
    await page.waitForFunction(
      (sel) => /^\d+s ago$/.test(document.querySelector(`${sel} .activity`)!.textContent!),
      row,
    );
    await poll();
    await page.waitForTimeout(100);
    expect(await focused()).toBe(id);
    // A row whose content changed is drawn anew, and keeps the focus.
    const watcher = await connect({ url: s.gateway.url, token: TEST_TOKEN });
    onTestFinished(() => watcher.close());
    watcher.subscribe(id, () => undefined);
    await page.waitForSelector(`${row} .viewers:has-text('1')`);
    expect(await focused()).toBe(id);
    await page.keyboard.press("Enter");
    await page.waitForSelector(`.terminal-view[data-session="${id}"]`);
  });

  it("refuses a bad token from the URL, signs in with a pasted one and signs out", async () => {
    const s = await stack();
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
    const s = await stack();
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
    await page.waitForSelector(`.terminal-view[data-session="${id}"][data-control=mine][data-restored=true]`);
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
    const page = await s.page();
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
    await expect.poll(() => page.textContent(`${words} .row-sub`)).toContain(`pid ${after} `);
    // A restart that fails says why.
    await page.click('[data-plugin="broken"] [data-test=restart-plugin]');
    await page.waitForSelector(".toast:has-text('broken did not come back: plugin path does not exist')");

    const viewer = await s.page({ token: VIEWER_TOKEN });
    await viewer.click("[data-test=nav-plugins]");
    await viewer.waitForSelector(`${words} .badge:has-text("Running")`);
    expect(await viewer.locator("[data-test=restart-plugin]").count()).toBe(0);
  });

  it("signs in with the whole printed URL pasted into the token box (exploratory test: 'invalid token' for the line serve printed)", async () => {
    const s = await stack();
    const page = await s.blank("/");
    await page.waitForSelector(".login-card");
    await page.fill("input[name=token]", `  ${s.gateway.url}/#token=${TEST_TOKEN}\n`);
    await page.click(".login-card button[type=submit]");
    await page.waitForSelector("[data-test=whoami]:has-text('admin')", { timeout: 10_000 });
  });

  it("signs in from the printed URL opened in a tab already on the sign-in page (audit: nothing happened)", async () => {
    const s = await stack();
    const page = await s.blank("/");
    await page.waitForSelector(".login-card");
    await page.goto(`${s.proxy.url}/#token=${TEST_TOKEN}`);
    await page.waitForSelector("[data-test=whoami]:has-text('admin')", { timeout: 10_000 });
    expect(page.url()).toBe(`${s.proxy.url}/`);
  });

  it("switches to the identity of a printed URL opened in a signed-in tab, and says when its token is refused", async () => {
    const s = await stack({
      auth: { tokens: [{ name: "vera", token: VIEWER_TOKEN, role: "viewer", sessions: ["*"] }] },
    });
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

  it("creates a PTY session, shows its output, echoes typing and restores the same screen on reload", async () => {
    const s = await stack();
    const page = await s.page();
    await page.click(".main [data-test=new-session]");
    await page.fill("input[name=command]", "bash --noprofile --norc -i");
    await page.fill("input[name=name]", "scratch");
    await page.click("[data-test=create]");
    await page.waitForSelector(".terminal-view[data-control=mine][data-restored=true]");
    const id = (await debugView(page))!.session;
    await page.click(".term-host");
    await page.keyboard.type("echo hello-$((6*7))\n");
    const before = await waitForTerminal(page, (t) => /^hello-42$/m.test(t), 10_000, "the echo output");
    expect(before).toContain("echo hello-$((6*7))"); // the PTY echoed what was typed

    // The gateway saw input from this page, as admin.
    const inputs = await s.http.get(`/v1/sessions/${id}/events?types=input`);
    expect(inputs.json.events.length).toBeGreaterThan(0);
    expect(inputs.json.events[0].by.name).toBe("admin");

    await page.reload();
    await page.waitForSelector(".terminal-view[data-restored=true]");
    const after = await waitForTerminal(page, (t) => t === before, 5_000, "the restored screen");
    expect(after).toBe(before);
  });

  // Regression (exploratory testing): opening the page replayed the queries an earlier program
  // sent (cursor position, device attributes, colours); xterm answered them again and the page
  // sent the answers to the shell as keys.
  it("sends nothing when it replays the history's terminal queries, and answers a program asking now", async () => {
    const s = await stack();
    const id = await createShell(s.http, "queries");
    await waitForPrompt(s.http, id);
    await s.http.post(`/v1/sessions/${id}/input`, {
      data: "printf '\\033[6n\\033[c\\033[>c\\033]11;?\\007\\033[?12$p'; echo ASKED\r",
    });
    await waitFor(
      async () => (await s.http.get(`/v1/sessions/${id}/output`)).text.includes("ASKED\r\n"),
      10_000,
      "ASKED",
    );
    const inputs = async () => (await s.http.get(`/v1/sessions/${id}/events?types=input`)).json.events.length as number;
    const before = await inputs();
    const page = await s.page({ hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=mine][data-restored=true]");
    await waitForTerminal(page, (t) => /^ASKED$/m.test(t), 10_000, "the replayed output");
    // Room for answers to be sent, as they were.
    await page.waitForTimeout(1_000);
    expect(await inputs()).toBe(before);
    // A program asking now gets its answer: the cursor's position.
    await page.click(".term-host");
    await page.keyboard.type("printf '\\033[6n'; IFS= read -rsdR pos; echo \"at:${pos#*[}\"\n");
    await waitForTerminal(page, (t) => /^at:\d+;\d+$/m.test(t), 10_000, "the answered position");
  });

  it("shows a terminal with colours and its exit code at the end", async () => {
    const s = await stack();
    const cwd = tempDir();
    const script = join(cwd, "build.sh");
    writeFileSync(
      script,
      [
        "printf '\\033[1;34m==>\\033[0m Building \\033[1mswitchboard\\033[0m\\n'",
        "for s in protocol core log sessions agents server client web; do",
        "  printf '  \\033[32m✔\\033[0m %-10s \\033[2m%4sms\\033[0m\\n' $s $(( ${#s} * 37 + 12 ))",
        "done",
        "printf '\\033[33m⚠\\033[0m  web/dist/app.js is \\033[1m608 KiB\\033[0m (169 KiB gzip)\\n'",
        "printf '\\033[1;32m✔ done\\033[0m in 2.41s\\n'",
        "",
      ].join("\n"),
    );
    chmodSync(script, 0o755);
    const id = await createShell(s.http, "build", { cwd });
    await waitForPrompt(s.http, id);
    await s.http.post(`/v1/sessions/${id}/input`, { data: "./build.sh && ls --color=always -l /usr | head -6\r" });
    const page = await s.page({ hash: `#/s/${id}` });
    await waitForTerminal(page, (t) => t.includes("done in 2.41s") && /\/app\$ $/m.test(t), 10_000, "the build output");
    await page.waitForTimeout(200);
    await page.screenshot({ path: `${SCREENSHOTS}terminal.png` });

    await page.keyboard.type("exit 3\n");
    await page.waitForSelector("[data-test=exit-summary]");
    expect(await page.textContent("[data-test=exit-summary]")).toContain("Exited with code 3");
    expect((await debugView(page))?.ended).toBe("exit");
    await page.waitForSelector(".view-head [data-state=failed]");
  });

  it("offers ^C only while a terminal runs, never for a stream (audit: ^C gave WRONG_SESSION_KIND and ran nothing)", async () => {
    const s = await stack();
    const interrupt = "button[title='Interrupt (Ctrl-C)']";
    const stream = (await s.http.post("/v1/sessions", { kind: "stream", name: "ci-log" })).json.id as string;
    const done = (await s.http.post("/v1/sessions", { command: ["true"], name: "done" })).json.id as string;
    const shell = await createShell(s.http, "interruptible");
    await waitForPrompt(s.http, shell);

    const page = await s.page({ hash: `#/s/${stream}` });
    await page.waitForSelector(".terminal-view[data-control=stream]");
    expect(await page.locator(interrupt).count()).toBe(0);
    await open(page, `#/s/${done}`);
    await page.waitForSelector("[data-test=exit-summary]");
    expect(await page.isHidden(interrupt)).toBe(true);

    await open(page, `#/s/${shell}`);
    await page.waitForSelector(".terminal-view[data-control=mine]");
    await page.click(".term-host");
    await page.keyboard.type("sleep 300\n");
    // ^C once the job holds the terminal. Sent while bash is still starting it, the interrupt
    // reaches bash instead, and sleep then runs on with the next line as its input (with ^C right
    // after the line, 44 tries in 100 in a PTY session; the click only usually came late enough).
    const { pid } = (await s.http.get(`/v1/sessions/${shell}`)).json as { pid: number };
    await waitFor(() => foregroundJob(pid, "sleep 300"), 10_000, "sleep in the foreground");
    await page.click(interrupt);
    // The click left the focus in the terminal (audit: typing after ^C went nowhere on desktop).
    await page.keyboard.type("echo interrupted-$((40+2))\n");
    await waitForTerminal(page, (t) => /^interrupted-42$/m.test(t), 5_000, "the shell back after ^C");
    await page.keyboard.type("exit\n");
    await page.waitForSelector("[data-test=exit-summary]");
    await page.waitForSelector(interrupt, { state: "hidden", timeout: 5_000 });
  });

  it("stops a session and removes it with two clicks each; another page watching it is told", async () => {
    const s = await stack();
    const res = await s.http.post("/v1/sessions", { command: ["sh", "-c", "echo working; sleep 300"], name: "doomed" });
    const id = res.json.id as string;
    const page = await s.page({ hash: `#/s/${id}` });
    const watcher = await s.page({ hash: `#/s/${id}` });
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
    const s = await stack();
    const res = await s.http.post("/v1/sessions", { command: ["sh", "-c", "echo working; sleep 300"], name: "keyed" });
    const id = res.json.id as string;
    const page = await s.page({ hash: `#/s/${id}` });
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
    await expect
      .poll(() => page.evaluate(() => document.activeElement?.getAttribute("data-test") ?? null))
      .toBe("remove");
  });

  it("lets a screen reader read the terminal once its mode is turned on, and keeps it on (exploratory test: the output was a canvas, silent)", async () => {
    const s = await stack();
    const id = await createShell(s.http, "read-aloud");
    await waitForPrompt(s.http, id);
    await s.http.post(`/v1/sessions/${id}/input`, { data: "echo spoken-$((40+2))\r" });
    const page = await s.page({ hash: `#/s/${id}` });
    await waitForTerminal(page, (t) => /^spoken-42$/m.test(t), 5_000, "the output");
    const toggle = page.getByRole("button", { name: "Screen reader mode" });
    expect(await toggle.getAttribute("aria-pressed")).toBe("false");
    // Off by default (it costs): no accessible copy of the rows.
    expect(await page.locator(".xterm-accessibility").count()).toBe(0);
    // Shown only while focused, and reached from the keyboard.
    expect((await toggle.boundingBox())!.width).toBeLessThanOrEqual(1);
    await toggle.focus();
    expect((await toggle.boundingBox())!.width).toBeGreaterThan(1);
    await page.keyboard.press("Enter");
    expect(await toggle.getAttribute("aria-pressed")).toBe("true");
    await expect.poll(() => page.locator(".xterm-accessibility-tree").textContent()).toContain("spoken-42");

    await page.reload();
    await page.waitForSelector(".terminal-view[data-restored=true]");
    expect(await page.getByRole("button", { name: "Screen reader mode" }).getAttribute("aria-pressed")).toBe("true");
    await expect.poll(() => page.locator(".xterm-accessibility-tree").textContent()).toContain("spoken-42");
  });

  it("pulses nothing for a user who asked for reduced motion (exploratory test: badges pulsed and spinners spun regardless)", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "calm-bot");
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: "/permission edit the file" });
    const page = await s.page({ hash: `#/s/${id}` });
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

  it("says what the second tap of Stop and Remove does on a phone, and gives Stop its own icon (exploratory test: only the icon turned red)", async () => {
    const s = await stack();
    const res = await s.http.post("/v1/sessions", { command: ["sh", "-c", "echo working; sleep 300"], name: "doomed" });
    const id = res.json.id as string;
    const page = await s.page({ hash: `#/s/${id}`, viewport: PHONE, touch: true });
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

  it("comes back fast after a long flood: the tail of the output, and a full-screen program on its screen", async () => {
    const s = await stack();
    // 16 MB of short lines (xterm takes about a second per million lines), then a program that
    // switched to the alternate screen long before its last 8 MB.
    const flood = (
      await s.http.post("/v1/sessions", {
        command: ["sh", "-c", "yes line | head -c 16000000; echo the-end"],
        name: "flood",
      })
    ).json.id as string;
    const tui = (
      await s.http.post("/v1/sessions", {
        command: [
          "sh",
          "-c",
          "printf 'before\\n\\033[?1049h\\033[?25l'; yes row | head -c 8000000; printf 'drawn\\n'; sleep 300",
        ],
        pty: true,
        cols: 80,
        rows: 24,
        name: "tui",
      })
    ).json.id as string;
    await waitFor(async () => (await s.http.get(`/v1/sessions/${flood}`)).json.state === "exited", 30_000, "flood end");
    await waitFor(
      async () => (await s.http.get(`/v1/sessions/${tui}/output?since=8000000`)).text.includes("drawn"),
      30_000,
      "tui output",
    );

    const page = await s.page({ hash: `#/s/${flood}` });
    const view = await debugView(page);
    expect(view?.text).toMatch(/of earlier output not shown; "switchboard logs" prints all of it/);
    expect(view?.text).toMatch(/line\n(line\n)*the-end/);
    expect(view?.screen).toBe("normal");

    await open(page, `#/s/${tui}`);
    const tuiView = await debugView(page);
    expect(tuiView?.screen).toBe("alternate");
    expect(tuiView?.text).toContain("drawn");
    expect(tuiView?.text).not.toContain("not shown");
    await s.http.del(`/v1/sessions/${tui}`);
  });

  it("sends lines to a pipe session and ends its input with EOF, so a filter finishes", async () => {
    const s = await stack();
    const id = (await s.http.post("/v1/sessions", { command: ["sort"], name: "sorter" })).json.id as string;
    const page = await s.page({ hash: `#/s/${id}` });
    for (const fruit of ["pear", "apple"]) {
      await page.fill(".line-field", fruit);
      await page.press(".line-field", "Enter");
    }
    await waitFor(
      async () => (await s.http.get(`/v1/sessions/${id}/events?types=input`)).json.events.length === 2,
      10_000,
      "both lines",
    );
    // Ctrl-D in the empty box, as in a terminal (the EOF button does the same).
    await page.press(".line-field", "Control+d");
    await page.waitForSelector("[data-test=exit-summary]");
    expect(await page.textContent("[data-test=exit-summary]")).toContain("Exited with code 0");
    await waitForTerminal(page, (t) => t.includes("apple\npear"), 10_000, "the sorted lines");
    const inputs = (await s.http.get(`/v1/sessions/${id}/events?types=input`)).json.events as Array<{ eof?: boolean }>;
    expect(inputs.map((e) => e.eof ?? false)).toEqual([false, false, true]);
  });

  it("stops offering to type or prompt once a running session is removed while its page is open (its end comes first)", async () => {
    const s = await stack();
    const agent = await createAgent(s.http, "to-be-removed");
    const page = await s.page({ hash: `#/s/${agent}` });
    await page.waitForSelector(".agent-view[data-restored=true]");
    expect(await page.isEnabled(".prompt-input")).toBe(true);
    expect((await s.http.del(`/v1/sessions/${agent}?purge=true&force=true`)).status).toBe(200);
    await page.waitForSelector(".prompt-input[placeholder='This session has ended.']", { timeout: 10_000 });
    expect(await page.isEnabled(".prompt-input")).toBe(false);

    const cat = (await s.http.post("/v1/sessions", { command: ["cat"], name: "also-removed" })).json.id as string;
    await page.goto(`${s.proxy.url}/#/s/${cat}`);
    await page.waitForSelector(".terminal-view[data-control=mine]");
    expect(await page.isVisible(".line-field")).toBe(true);
    expect((await s.http.del(`/v1/sessions/${cat}?purge=true&force=true`)).status).toBe(200);
    await page.waitForSelector(".terminal-view:not([data-control=mine])", { timeout: 10_000 });
    expect(await page.isVisible(".line-field")).toBe(false);
  });

  it("says nothing of a resize a dropped connection cut off, and sends it again once back in control (a gateway restart showed 'Resize not sent')", async () => {
    const s = await stack();
    const id = (await s.http.post("/v1/sessions", { command: ["cat"], pty: true, cols: 80, rows: 24, name: "resized" }))
      .json.id as string;
    const page = await s.page({ hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=mine]");
    const sizeOf = async () => {
      const info = (await s.http.get(`/v1/sessions/${id}`)).json as { cols: number; rows: number };
      return `${info.cols}x${info.rows}`;
    };
    const pageSize = async () => {
      const view = await debugView(page);
      return `${view?.cols}x${view?.rows}`;
    };
    // Fitted to the window first.
    await waitFor(async () => (await sizeOf()) === (await pageSize()), 10_000, "the first fit to reach the PTY");
    const before = await sizeOf();
    // The page's frames stop reaching the gateway; the window shrinks; then the connection drops.
    s.proxy.blackhole("up");
    await page.setViewportSize({ width: 700, height: 500 });
    await waitFor(async () => (await pageSize()) !== before, 5_000, "the page to fit the smaller window");
    await page.waitForTimeout(300);
    expect(await sizeOf()).toBe(before);
    s.proxy.cut();
    s.proxy.heal();
    await waitFor(async () => (await sizeOf()) === (await pageSize()), 15_000, "the new size to reach the PTY");
    await page.waitForSelector(".terminal-view[data-control=mine]");
    expect((await page.locator(".toast").allTextContents()).filter((t) => t.includes("Resize"))).toEqual([]);
  });

  it("puts the focus in a pipe session's line box, so typing reaches stdin (exploratory test: it went to the terminal, which takes no keys)", async () => {
    const s = await stack();
    const id = (await s.http.post("/v1/sessions", { command: ["cat"], name: "echoer" })).json.id as string;
    const page = await s.page({ hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=mine]");
    expect(await page.evaluate(() => document.activeElement?.className)).toBe("line-field");
    await page.keyboard.type("typed-at-once\n");
    await waitForTerminal(page, (t) => /^typed-at-once$/m.test(t), 5_000, "the line cat echoed");
  });

  it("continues the stream after the connection is cut, without losing or duplicating a line", async () => {
    const s = await stack();
    const LINES = 150;
    // The command stops after lines 50 and 100 until the test opens a gate (a file), so each
    // cut happens while the session is live, and what follows it can only arrive over a new
    // connection. Without the gates, a page that took a few seconds to open on a loaded
    // machine got the whole output, exit included, before the first cut, and rightly did not
    // reconnect for a session that had ended (CI once failed so).
    const gates = tempDir();
    const script = `i=0; while [ $i -lt ${LINES} ]; do i=$((i+1)); echo "line-$i"; sleep 0.02; if [ $i = 50 ] || [ $i = 100 ]; then while [ ! -e "$1/$i" ]; do sleep 0.02; done; fi; done`;
    const res = await s.http.post("/v1/sessions", {
      command: ["sh", "-c", script, "sh", gates],
      pty: true,
      cols: 80,
      rows: 24,
      name: "counter",
    });
    const id = res.json.id as string;
    const page = await s.page({ hash: `#/s/${id}` });
    await waitForTerminal(page, (t) => t.includes("line-20"), 10_000, "line-20");
    expect(s.proxy.openSockets).toBeGreaterThan(0);
    s.proxy.cut();
    writeFileSync(join(gates, "50"), "");
    await waitForTerminal(page, (t) => t.includes("line-100"), 15_000, "line-100 after the first cut");
    // Cut again once the page is connected (on a loaded machine it may be between connections).
    await waitFor(() => s.proxy.openSockets > 0, 10_000, "the page to reconnect");
    s.proxy.cut();
    writeFileSync(join(gates, "100"), "");
    await page.waitForSelector("[data-test=exit-summary]", { timeout: 20_000 });
    const lines = (await terminalText(page)).split("\n").filter((l) => /^line-\d+$/.test(l));
    expect(lines).toEqual(Array.from({ length: LINES }, (_, i) => `line-${i + 1}`));
    const states = (await page.evaluate(() =>
      (window as unknown as { __switchboard: { connectionHistory(): string[] } }).__switchboard.connectionHistory(),
    )) as string[];
    expect(states.filter((state) => state === "reconnecting").length).toBeGreaterThanOrEqual(2);
  });

  // Exploratory test: when the gateway went away while the page followed nothing, the pill said
  // "Standby" for up to a list poll (~1.5 s), then "Gateway unreachable".
  it("says the gateway is unreachable when the connection drops while nothing is followed, without a Standby first", async () => {
    const s = await stack();
    const id = await createShell(s.http, "pill-shell");
    const page = await s.page({ hash: `#/s/${id}` });
    await page.waitForSelector(".conn[data-state=open]");
    await page.evaluate(() => (location.hash = "#/"));
    await page.waitForSelector(".main .session-list, .main [data-test=new-session]");
    await page.evaluate(() => {
      const looks: string[] = [];
      (window as unknown as { looks: string[] }).looks = looks;
      const pill = document.querySelector(".conn")!;
      new MutationObserver(() => looks.push(pill.className)).observe(pill, {
        attributes: true,
        attributeFilter: ["class"],
      });
    });
    s.proxy.down = true;
    s.proxy.cut();
    await page.waitForSelector(".conn.conn-down", { timeout: 10_000 });
    const looks = await page.evaluate(() => (window as unknown as { looks: string[] }).looks);
    expect(looks.filter((l) => l.includes("conn-idle"))).toEqual([]);
  });

  // Exploratory test: with the gateway gone, the list and the header went on showing "Running"
  // as if live; only the pill in the top bar said otherwise.
  it("dims the states it shows while it cannot hear from the gateway, and is live again after", async () => {
    const s = await stack();
    const id = await createShell(s.http, "stale-shell");
    const page = await s.page({ hash: `#/s/${id}` });
    const badge = ".view-head .badge[data-state=running]";
    const row = `.sidebar .row[data-session="${id}"] [data-state=running]`;
    await page.waitForSelector(badge);
    await page.waitForSelector(row);
    const opacity = (selector: string) => page.$eval(selector, (el) => getComputedStyle(el).opacity);
    expect(await page.$(".app.stale")).toBeNull();
    expect([await opacity(badge), await opacity(row)]).toEqual(["1", "1"]);

    s.proxy.down = true;
    s.proxy.cut();
    await page.waitForSelector(".app.stale", { timeout: 10_000 });
    expect([await opacity(badge), await opacity(row)]).toEqual(["0.5", "0.5"]);
    expect(await page.getAttribute(".conn", "class")).toContain("conn-stale");

    s.proxy.down = false;
    await page.waitForSelector(".conn[data-state=open]:not(.conn-stale)", { timeout: 20_000 });
    await page.waitForSelector(".app:not(.stale)");
    expect([await opacity(badge), await opacity(row)]).toEqual(["1", "1"]);
  });

  it("streams an echo-agent answer, queues a prompt behind it and aborts a run", async () => {
    const s = await stack();
    const page = await s.page();
    await page.click(".main [data-test=new-session]");
    await page.click(".segmented button:has-text('Agent')");
    await page.click("[data-test=create]");
    await page.waitForSelector(".agent-view[data-restored=true]");

    const text = "Streaming answers arrive in small pieces, and every viewer sees the same ones in the same order.";
    await page.fill(".prompt-input", text);
    await page.keyboard.press("Enter");
    const seen: string[] = [];
    await waitFor(
      async () => {
        const run = await runStatus(page, 0);
        if (run) seen.push(run.text);
        return run?.status === "done";
      },
      15_000,
      "the first run to finish",
    );
    expect((await runStatus(page, 0))?.text).toBe(text);
    // It streamed: the page showed partial answers on the way.
    expect(seen.some((t) => t.length > 0 && t.length < text.length && text.startsWith(t))).toBe(true);
    expect(await page.textContent(".run[data-status=done] .answer")).toContain("every viewer sees");

    const long = Array.from({ length: 80 }, (_, i) => `word${i}`).join(" ");
    await page.fill(".prompt-input", long);
    await page.keyboard.press("Enter");
    await waitFor(async () => ((await runStatus(page, 1))?.text.length ?? 0) > 0, 10_000, "the long run to stream");
    await page.fill(".prompt-input", "after the abort");
    await page.keyboard.press("Enter");
    await page.waitForSelector("[data-test=queued]:has-text('Queued #1')");
    await page.click("[data-test=abort]");
    await page.waitForSelector(".run[data-status=aborted] [data-test=run-aborted]");
    expect(await page.textContent("[data-test=run-aborted]")).toContain("Aborted by admin");
    const aborted = await runStatus(page, 1);
    expect(aborted?.status).toBe("aborted");
    expect(aborted!.text.length).toBeLessThan(long.length);
    await waitFor(async () => (await runStatus(page, 2))?.status === "done", 10_000, "the queued run to finish");
    expect((await runStatus(page, 2))?.text).toBe("after the abort");

    // Abort all: the queued prompt never ran, so it was removed from the queue, not aborted
    // (exploratory test: "Aborted by admin" on prompts that never started).
    await page.fill(".prompt-input", long);
    await page.keyboard.press("Enter");
    await waitFor(async () => ((await runStatus(page, 3))?.text.length ?? 0) > 0, 10_000, "the long run to stream");
    await page.fill(".prompt-input", "never runs");
    await page.keyboard.press("Enter");
    await page.waitForSelector("[data-test=queued]:has-text('Queued #1')");
    await page.click(".view-actions button:has-text('Abort all')");
    await page.waitForSelector(".run:nth-child(5)[data-status=aborted] [data-test=run-aborted]");
    expect(await page.textContent(".run:nth-child(4) [data-test=run-aborted]")).toContain("Aborted by admin");
    expect(await page.textContent(".run:nth-child(5) [data-test=run-aborted]")).toBe("Removed from the queue by admin");
  });

  it("sends a prompt once when Send is double-clicked (exploratory test: it was sent twice)", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "once");
    const page = await s.page({ hash: `#/s/${id}` });
    await page.fill(".prompt-input", "only once");
    await page.dblclick("[data-test=send]");
    await waitFor(async () => (await runStatus(page, 0))?.status === "done", 10_000, "the run");
    const queued = await s.http.get(`/v1/sessions/${id}/events?types=run.queued`);
    expect(queued.json.events.map((e: { text: string }) => e.text)).toEqual(["only once"]);
    expect(await page.inputValue(".prompt-input")).toBe("");
    // An ordinary end is just "Done" (exploratory test: "Done (end_turn)", a protocol value).
    await page.waitForSelector("[data-test=run-done]");
    expect(await page.textContent("[data-test=run-done]")).toMatch(/^Done( · \S+)?$/);
  });

  it("keeps a tool call's Details and a Thinking block open, with the focus, while the answer streams (exploratory test: they snapped shut)", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "reader");
    const page = await s.page({ hash: `#/s/${id}` });
    // Long enough (about 7 s of streaming per answer) that a loaded machine still opens the blocks mid-answer.
    const words = Array.from({ length: 200 }, (_, i) => `word${i}`).join(" ");
    /** Waits for two more pieces of run `index`'s answer: the page re-rendered it meanwhile. */
    const rerendered = async (index: number): Promise<void> => {
      const before = (await runStatus(page, index))?.text.length ?? 0;
      expect(before).toBeLessThan(words.length);
      await waitFor(
        async () => ((await runStatus(page, index))?.text.length ?? 0) >= before + 12,
        15_000,
        `run ${index}'s answer to go on streaming`,
      );
    };

    await page.fill(".prompt-input", `/tool ${words}`);
    await page.keyboard.press("Enter");
    const details = ".tool-detail";
    await page.waitForSelector(details);
    await page.focus(`${details} summary`);
    await page.keyboard.press("Enter");
    await waitFor(async () => ((await runStatus(page, 0))?.text.length ?? 0) > 12, 10_000, "the answer to stream");
    await rerendered(0);
    expect(await page.$eval(details, (el) => (el as HTMLDetailsElement).open)).toBe(true);
    expect(await page.evaluate(() => document.activeElement?.matches(".tool-detail summary"))).toBe(true);
    await waitFor(async () => (await runStatus(page, 0))?.status === "done", 20_000, "the first run to finish");

    await page.fill(".prompt-input", `/think ${words}`);
    await page.keyboard.press("Enter");
    // The thought is open while the agent thinks, and closes once the answer starts.
    const thought = ".run:nth-child(2) .thought";
    // Waits for the page, not the model: the page renders the model's changes at the next frame.
    await page.waitForSelector(".run:nth-child(2) .answer", { timeout: 20_000 });
    expect(await page.$eval(thought, (el) => (el as HTMLDetailsElement).open)).toBe(false);
    await page.click(`${thought} summary`);
    await rerendered(1);
    expect(await page.$eval(thought, (el) => (el as HTMLDetailsElement).open)).toBe(true);
    expect(await page.evaluate(() => document.activeElement?.matches(".thought summary"))).toBe(true);
    await waitFor(async () => (await runStatus(page, 1))?.status === "done", 20_000, "the run to finish");
    expect(await page.$eval(thought, (el) => (el as HTMLDetailsElement).open)).toBe(true);
    expect(await page.$eval(details, (el) => (el as HTMLDetailsElement).open)).toBe(true);
  }, 90_000);

  it("ends the open runs and the permission request of an agent session the gateway lost, also after a reload (exploratory test: they stayed live)", async () => {
    const dataDir = tempDir();
    const first = await serveInChild({ dataDir });
    const firstHttp = api(first.url);
    const id = await createAgent(firstHttp, "stranded");
    await firstHttp.post(`/v1/sessions/${id}/prompt`, { text: "/permission Apply the patch" });
    await firstHttp.post(`/v1/sessions/${id}/prompt`, { text: "queued behind it" });
    await waitFor(
      async () =>
        (await firstHttp.get(`/v1/sessions/${id}/events?types=run.queued,permission.request`)).json.events.length === 3,
      10_000,
      "the permission request and the queued prompt",
    );
    first.child.kill("SIGKILL");
    await new Promise((r) => first.child.once("exit", r));

    const s = await stack(undefined, dataDir);
    const page = await s.page({ hash: `#/s/${id}` });
    for (const round of ["loaded", "reloaded"]) {
      await page.waitForSelector(".permission[data-resolved=true]", { timeout: 5_000 });
      expect(await page.textContent("[data-test=permission-outcome]"), round).toBe("Cancelled (the session was lost)");
      expect(await page.locator(".permission [data-option]").count(), round).toBe(0);
      expect(await page.locator(".run-foot.working, [data-test=queued]").count(), round).toBe(0);
      expect(await page.locator("[data-test=run-interrupted]").allTextContents(), round).toEqual([
        "Interrupted: the session was lost",
        "Interrupted: the session was lost",
      ]);
      expect(
        (await debugView(page))?.runs?.map((r) => r.status),
        round,
      ).toEqual(["interrupted", "interrupted"]);
      if (round === "loaded") {
        await page.reload();
        await page.waitForSelector(".agent-view[data-restored=true]");
      }
    }
  });

  it("shows a permission request on every page; the first answer resolves it everywhere", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "refactor-bot");
    const desk = await s.page({ hash: `#/s/${id}` });
    const phone = await s.page({ hash: `#/s/${id}`, viewport: PHONE });

    await desk.fill(
      ".prompt-input",
      "/tool The parser now accepts **trailing commas**. Changed `parseList()` and added two tests:\n- `accepts [1, 2,]`\n- `rejects [,]`",
    );
    await desk.keyboard.press("Enter");
    await waitFor(async () => (await runStatus(desk, 0))?.status === "done", 10_000, "the tool run");
    await desk.fill(".prompt-input", "/plan Read the failing test; Patch the parser; Run the suite");
    await desk.keyboard.press("Enter");
    await waitFor(async () => (await runStatus(desk, 1))?.status === "done", 10_000, "the plan run");
    await desk.fill(".prompt-input", "/permission Apply the patch to src/parser.ts");
    await desk.keyboard.press("Enter");

    for (const page of [desk, phone])
      await page.waitForSelector(".permission[data-resolved=false] [data-option=allow]");
    await desk.waitForSelector(".view-head [data-state=waiting]", { timeout: 5_000 });
    await desk.waitForTimeout(300);
    await desk.screenshot({ path: `${SCREENSHOTS}agent.png` });
    await phone.screenshot({ path: `${SCREENSHOTS}agent-phone.png` });

    await phone.click(".permission[data-resolved=false] [data-option=allow]");
    for (const page of [desk, phone]) {
      await page.waitForSelector(".permission[data-resolved=true]");
      expect(await page.textContent("[data-test=permission-outcome]")).toBe("Allow — answered by admin");
      expect(await page.locator(".permission [data-option]").count()).toBe(0);
      await waitFor(async () => (await runStatus(page, 2))?.status === "done", 10_000, "the permission run");
      expect((await runStatus(page, 2))?.text).toBe("Allowed. Apply the patch to src/parser.ts");
    }
    const resolved = await s.http.get(`/v1/sessions/${id}/events?types=permission.resolved`);
    expect(resolved.json.events).toHaveLength(1);
  });

  // Exploratory test (UI, keyboard only): answering a permission request with Enter, pressing
  // Abort, or choosing the kind in the New session dialog dropped the focus to the page's body.
  it("hands the focus on when the control that had it goes away: an answered request, Abort, the dialog's kind", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "keyboard-bot");
    const page = await s.page({ hash: `#/s/${id}` });
    const focused = () => page.evaluate(() => document.activeElement?.className ?? "");
    await page.fill(".prompt-input", "/permission Apply the patch");
    await page.keyboard.press("Enter");
    await page.waitForSelector(".permission[data-resolved=false] [data-option=allow]");
    await page.focus(".permission[data-resolved=false] [data-option=allow]");
    await page.keyboard.press("Enter");
    await page.waitForSelector(".permission[data-resolved=true]");
    await expect.poll(focused, { timeout: 5_000 }).toContain("prompt-input");
    // (That run still says its answer: a prompt sent now would queue behind it, and Abort would
    // end that run instead, the long one starting after it: seen on a fast, quiet machine.)
    await page.waitForSelector(".run[data-status=done]");

    // A long answer streams (the echo agent says the prompt back a few characters at a time).
    await page.fill(".prompt-input", "word ".repeat(300));
    await page.keyboard.press("Enter");
    await page.waitForSelector("[data-test=abort]:not([hidden])");
    await page.focus("[data-test=abort]");
    await page.keyboard.press("Enter");
    await page.waitForSelector(".run[data-status=aborted] [data-test=run-aborted]");
    await expect.poll(focused, { timeout: 5_000 }).toContain("prompt-input");
    // Only the footer of an aborted run is amber, not its whole answer (exploratory test).
    const colors = await page.evaluate(() => ({
      answer: getComputedStyle(document.querySelector(".run[data-status=aborted] .answer")!).color,
      done: getComputedStyle(document.querySelector(".run[data-status=done] .answer")!).color,
    }));
    expect(colors.answer).toBe(colors.done);

    await page.goto(`${s.proxy.url}/#/`);
    await page.click(".main [data-test=new-session]");
    await page.focus(".segmented button[data-kind=agent]");
    await page.keyboard.press("Enter");
    expect(await page.getAttribute(".segmented button[data-kind=agent]", "aria-pressed")).toBe("true");
    expect(await page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset["kind"])).toBe("agent");
    // The Agent field offers the gateway's agents (exploratory test: it was free text only).
    expect(await page.getAttribute("input[name=agent]", "list")).toBe("agent-ids");
    await expect
      .poll(
        () =>
          page.evaluate(() =>
            [...document.querySelectorAll("#agent-ids option")].map((o) => (o as HTMLOptionElement).value),
          ),
        {
          timeout: 5_000,
        },
      )
      .toContain("echo");
  });

  // Exploratory test (UI): with the gateway gone, Enter froze the prompt box for 10 s and then
  // said "no answer to prompt within 10000 ms (TIMEOUT)"; Abort did the same.
  it("keeps a prompt typed while the gateway cannot be reached, says so at once, and sends it once back", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "offline-bot");
    const page = await s.page({ hash: `#/s/${id}` });
    await page.waitForSelector(".agent-view[data-restored=true]");
    s.proxy.down = true;
    s.proxy.cut();
    await page.waitForSelector(".conn.conn-stale", { timeout: 10_000 });
    await page.fill(".prompt-input", "typed while offline");
    const started = Date.now();
    await page.keyboard.press("Enter");
    await page.waitForSelector(".toast:has-text('Not connected to the gateway')", { timeout: 2_000 });
    expect(Date.now() - started).toBeLessThan(2_000);
    // The toast leaves the prompt box, Send and the header's actions free (exploratory test: it
    // covered Send).
    const toast = (await page.locator(".toast").first().boundingBox())!;
    for (const selector of ["[data-test=send]", ".prompt-input", ".view-head .view-actions"]) {
      const box = (await page.locator(selector).boundingBox())!;
      const overlaps =
        toast.x < box.x + box.width &&
        box.x < toast.x + toast.width &&
        toast.y < box.y + box.height &&
        box.y < toast.y + toast.height;
      expect(overlaps, selector).toBe(false);
    }
    expect(await page.inputValue(".prompt-input")).toBe("typed while offline");
    expect(await page.isDisabled("[data-test=send]")).toBe(true);

    s.proxy.down = false;
    await page.waitForSelector(".conn[data-state=open]:not(.conn-stale)", { timeout: 20_000 });
    await page.focus(".prompt-input");
    await page.keyboard.press("Enter");
    await waitFor(async () => (await runStatus(page, 0))?.status === "done", 10_000, "the prompt sent once back");
    expect((await runStatus(page, 0))?.text).toBe("typed while offline");
  });

  // Exploratory test: after a stall the page said "Prompt not sent: no answer … (TIMEOUT)"; the
  // prompt arrived once the link recovered, and the user's second Send ran it twice.
  it("says a prompt the gateway did not answer may still arrive, and empties the box when it does", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "stalled-bot");
    const page = await s.page({ hash: `#/s/${id}` });
    await page.waitForSelector(".agent-view[data-restored=true]");
    s.proxy.blackhole("up");
    await page.fill(".prompt-input", "sent into a stall");
    await page.keyboard.press("Enter");
    const toast = page.locator(".toast:has-text('Prompt not confirmed')");
    await toast.waitFor({ timeout: 25_000 });
    expect(await toast.textContent()).toContain("check the conversation before sending again");
    expect(await page.locator(".toast:has-text('not sent')").count()).toBe(0);
    expect(await page.inputValue(".prompt-input")).toBe("sent into a stall");

    s.proxy.heal();
    await page.waitForSelector(".toast:has-text('has arrived')", { timeout: 20_000 });
    expect(await page.inputValue(".prompt-input")).toBe("");
    await waitFor(async () => (await runStatus(page, 0))?.status === "done", 10_000, "the prompt's run");
    expect((await debugView(page))?.runs?.map((r) => r.prompt)).toEqual(["sent into a stall"]);
  }, 60_000);

  // Exploratory test: with the pill saying "Gateway unreachable" (the list poll failed while the
  // WebSocket still looked open), Send and Abort stayed enabled, and then timed out.
  it("disables Send and Abort while the pill says Gateway unreachable, and enables them once it is live", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "unreachable-bot");
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: "/permission edit the file" });
    const page = await s.page({ hash: `#/s/${id}` });
    await page.waitForSelector(".agent-view[data-restored=true]");
    await page.fill(".prompt-input", "queued later");
    const abort = page.getByRole("button", { name: "Abort", exact: true });
    await abort.waitFor();
    expect([await page.isDisabled("[data-test=send]"), await abort.isDisabled()]).toEqual([false, false]);

    const list = /\/v1\/sessions(\?|$)/;
    await page.route(list, (route) => route.abort());
    await page.waitForSelector(".conn:has-text('Gateway unreachable')", { timeout: 10_000 });
    expect(await page.getAttribute(".conn", "data-state")).toBe("open");
    expect([await page.isDisabled("[data-test=send]"), await abort.isDisabled()]).toEqual([true, true]);

    await page.unroute(list);
    await page.waitForSelector(".conn:has-text('Live')", { timeout: 10_000 });
    expect([await page.isDisabled("[data-test=send]"), await abort.isDisabled()]).toEqual([false, false]);
  });

  it("says typed keys the gateway did not answer may still arrive, not that they were not sent", async () => {
    const s = await stack();
    const id = await createShell(s.http, "stalled-shell");
    await waitForPrompt(s.http, id);
    const page = await s.page({ hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=mine]");
    await page.click(".term-host");
    s.proxy.blackhole("up");
    await page.keyboard.type("echo late-$((40+2))\n");
    await page.waitForSelector(".toast:has-text('Input not confirmed')", { timeout: 25_000 });
    expect(await page.locator(".toast:has-text('not sent')").count()).toBe(0);
    s.proxy.heal();
    await waitForTerminal(page, (t) => /^late-42$/m.test(t), 20_000, "the keys typed into the stall");
  }, 60_000);

  it("keeps an unsent prompt with its session while another session is open (exploratory test: it was lost)", async () => {
    const s = await stack();
    const first = await createAgent(s.http, "draft-one");
    const second = await createAgent(s.http, "draft-two");
    const page = await s.page({ hash: `#/s/${first}` });
    await page.waitForSelector(`.agent-view[data-session="${first}"][data-restored=true]`);
    await page.fill(".prompt-input", "half a thought");
    await page.evaluate((id) => (location.hash = `#/s/${id}`), second);
    await page.waitForSelector(`.agent-view[data-session="${second}"][data-restored=true]`);
    expect(await page.inputValue(".prompt-input")).toBe("");
    await page.goBack();
    await page.waitForSelector(`.agent-view[data-session="${first}"][data-restored=true]`);
    expect(await page.inputValue(".prompt-input")).toBe("half a thought");
    await page.keyboard.press("Enter");
    await waitFor(async () => (await runStatus(page, 0))?.status === "done", 10_000, "the draft sent");
    await page.evaluate((id) => (location.hash = `#/s/${id}`), second);
    await page.goBack();
    await page.waitForSelector(`.agent-view[data-session="${first}"][data-restored=true]`);
    expect(await page.inputValue(".prompt-input")).toBe("");
  });

  it("lets a wide Markdown table scroll with its words whole, and long permission options and plan entries wrap", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "markdown-bot");
    const page = await s.page({ hash: `#/s/${id}`, viewport: PHONE, touch: true });
    const header = Array.from({ length: 8 }, (_, i) => `Column${i}Heading`);
    const table = `| ${header.join(" | ")} |\n|${header.map(() => "---").join("|")}|\n| ${header.map((_, i) => `value${i}`).join(" | ")} |`;
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: table });
    await page.waitForSelector(".md-table td");
    const shape = await page.$eval(".md-table", (el) => {
      const th = el.querySelector("th")!;
      const range = document.createRange();
      range.selectNodeContents(th);
      return {
        scrolls: el.scrollWidth > el.clientWidth,
        lines: range.getClientRects().length,
      };
    });
    // The table overflows its box (it scrolls), and a heading's one word is on one line.
    expect(shape).toEqual({ scrolls: true, lines: 1 });
    const wraps = await page.evaluate(() => {
      const probe = document.createElement("div");
      probe.innerHTML =
        '<div class="perm-options"><button class="btn">x</button></div><ol><li class="plan-entry"><span class="plan-text">x</span></li></ol>';
      document.querySelector(".runs")!.appendChild(probe);
      const result = {
        option: getComputedStyle(probe.querySelector(".btn")!).whiteSpace,
        plan: getComputedStyle(probe.querySelector(".plan-text")!).overflowWrap,
      };
      probe.remove();
      return result;
    });
    expect(wraps).toEqual({ option: "normal", plan: "anywhere" });
  });

  it("keeps a phone's session title readable next to Abort all (exploratory test: it shrank to 3 px)", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "refactor-bot");
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: "/permission Apply the patch" });
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: "queued behind it" });
    const page = await s.page({ hash: `#/s/${id}`, viewport: PHONE, touch: true });
    await page.waitForSelector(".view-actions button:has-text('Abort all')");
    const title = await page.$eval(".view-title", (el) => ({ shown: el.clientWidth, needed: el.scrollWidth }));
    expect(title.shown).toBeGreaterThanOrEqual(title.needed);
  });

  it("links an agent's tool call to its child terminal, and the terminal back to its agent", async () => {
    const fixture = new URL("../agents/fixtures/scripted-agent.mjs", import.meta.url).pathname;
    const s = await stack({ agents: { scripted: { adapter: "acp", command: [process.execPath, fixture] } } });
    const created = await s.http.post("/v1/sessions", { kind: "agent", agent: "scripted", name: "ci-agent" });
    const id = created.json.id as string;
    const page = await s.page({ hash: `#/s/${id}` });
    await s.http.post(`/v1/sessions/${id}/prompt`, {
      text: JSON.stringify({ op: "terminal", command: "bash", args: ["-c", "echo from-the-child; exit 4"] }),
    });
    await page.waitForSelector(".tool [data-test=tool-terminal]", { timeout: 20_000 });
    await page.waitForSelector("[data-test=child-link]");
    await page.click(".tool [data-test=tool-terminal]");
    await page.waitForSelector(".terminal-view[data-restored=true]");
    await waitForTerminal(page, (t) => t.includes("from-the-child"), 10_000, "the child's output");
    await page.waitForSelector("[data-test=exit-summary]");
    expect(await page.textContent("[data-test=exit-summary]")).toContain("Exited with code 4");
    expect(await page.textContent("[data-test=parent-link]")).toContain("started by ci-agent");
    await page.click("[data-test=parent-link]");
    await page.waitForSelector(`.agent-view[data-session="${id}"][data-restored=true]`);
  });

  it("takes control once the connection is back when the connection dropped as the page took it, without a notice (exploratory test: 'Could not take control' during reconnects)", async () => {
    const s = await stack();
    const id = await createShell(s.http, "flaky");
    await waitForPrompt(s.http, id);
    const context = await browser.newContext({ viewport: DESKTOP });
    onTestFinished(() => context.close());
    // The page's first request for control goes nowhere: its connection drops as it goes out.
    const drop = await dropFirstControlRequest(context);
    const page = await context.newPage();
    await page.goto(`${s.proxy.url}/#token=${TEST_TOKEN}`);
    await page.waitForSelector("[data-test=whoami]");
    await open(page, `#/s/${id}`);
    await page.waitForSelector(".terminal-view[data-control=mine]", { timeout: 15_000 });
    expect(drop.cuts).toBe(1);
    expect((await s.http.get(`/v1/sessions/${id}`)).json.controller).toBe("admin");
    await page.waitForTimeout(300);
    expect(await page.locator(".toast").allTextContents()).toEqual([]);
  });

  it("says nothing when control it takes again after a drop is of a session that ended meanwhile", async () => {
    const s = await stack();
    const id = await createShell(s.http, "ends-away");
    await waitForPrompt(s.http, id);
    const context = await browser.newContext({ viewport: DESKTOP });
    onTestFinished(() => context.close());
    // The first request for control drops the connection, which comes back only once the session ended.
    let ended: () => void = () => undefined;
    const sessionEnded = new Promise<void>((resolve) => (ended = resolve));
    const drop = await dropFirstControlRequest(context, sessionEnded);
    const page = await context.newPage();
    await page.goto(`${s.proxy.url}/#token=${TEST_TOKEN}`);
    await page.waitForSelector("[data-test=whoami]");
    await open(page, `#/s/${id}`);
    await waitFor(async () => drop.cuts === 1, 10_000, "the connection to drop");
    await s.http.post(`/v1/sessions/${id}/signal`, { signal: "KILL" });
    await waitFor(async () => (await s.http.get(`/v1/sessions/${id}`)).json.state !== "running", 10_000, "the end");
    ended();
    await page.waitForSelector("[data-test=exit-summary]", { timeout: 15_000 });
    await page.waitForTimeout(500);
    expect(await page.locator(".toast").allTextContents()).toEqual([]);
  });

  it("says why Take control failed when the user asked for it, also when the connection dropped", async () => {
    const s = await stack();
    const id = await createShell(s.http, "taken");
    await waitForPrompt(s.http, id);
    const other = await connect({ url: s.gateway.url, token: TEST_TOKEN });
    onTestFinished(() => other.close());
    await other.control(id, "acquire");
    const page = await s.page({ hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=other]");
    // Take control's request is held; then the connection drops under it.
    s.proxy.blackhole("up");
    await page.click("[data-test=take-control]");
    await page.waitForTimeout(200);
    s.proxy.cut();
    s.proxy.heal();
    await page.waitForSelector(".toast:has-text('Could not take control')", { timeout: 10_000 });
  });

  it("hands control over to another page that takes it", async () => {
    const s = await stack();
    const id = await createShell(s.http, "pairing");
    const alice = await s.page({ hash: `#/s/${id}` });
    await alice.waitForSelector(".terminal-view[data-control=mine]");
    const bob = await s.page({ hash: `#/s/${id}` });
    await bob.waitForSelector(".terminal-view[data-control=other]");
    await bob.click("[data-test=take-control]");
    await bob.waitForSelector(".terminal-view[data-control=mine]");
    await alice.waitForSelector(".terminal-view[data-control=other]");
    await bob.click(".term-host");
    await bob.keyboard.type("echo from-$((40+2))-bob\n");
    // Alice watches Bob's typing live.
    await waitForTerminal(alice, (t) => /^from-42-bob$/m.test(t), 10_000, "Bob's output on Alice's page");
    // Alice's keys go nowhere while Bob is in control.
    await alice.click(".term-host");
    await alice.keyboard.type("echo alice-typed\n");
    await alice.waitForTimeout(400);
    expect(await terminalText(bob)).not.toContain("alice-typed");
  });

  it("tells the signed-in user that they hold control in another tab, not that admin does (exploratory test: 'admin is in control' to admin)", async () => {
    const s = await stack({
      auth: { tokens: [{ name: "otto", token: OPERATOR_TOKEN, role: "operator", sessions: ["*"] }] },
    });
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
    await expect.poll(() => headerHolder(second)).toBe("you");
    const list = await first.context().newPage();
    await list.goto(`${s.proxy.url}/#/`);
    await expect.poll(() => list.locator(`[data-session="${id}"] .row-meta.control`).textContent()).toBe("you");
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
      await expect.poll(() => page.textContent(".control-bar span")).toBe("Read-only · otto is in control");
      await expect.poll(() => headerHolder(page)).toBe("otto");
    }
    await second.waitForSelector(".toast:has-text('You lost control: control was taken over by otto')");
  });

  // Found by a re-check: a page that had released control took it back by itself when a program
  // queried the terminal (xterm's answer went out as if typed), and resized the PTY to its window.
  it("leaves control free after Release when a program queries the terminal: its answer is not typed", async () => {
    const s = await stack();
    const id = await createShell(s.http, "query-after-release");
    await waitForPrompt(s.http, id);
    const page = await s.page({ hash: `#/s/${id}` });
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
    const s = await stack();
    const id = await createShell(s.http, "query-while-away");
    await waitForPrompt(s.http, id);
    const page = await s.page({ hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=mine]");
    s.proxy.down = true;
    s.proxy.cut();
    await page.waitForSelector(".conn.conn-stale", { timeout: 10_000 });
    // The page's lease ended with its connection: another client asks the terminal while it is away.
    await waitFor(async () => (await s.http.get(`/v1/sessions/${id}`)).json.controller === null, 10_000, "release");
    await s.http.post(`/v1/sessions/${id}/input`, {
      data: "printf 'away\\033[6n\\n'; IFS= read -rs -t 8 -n 64 x; printf 'left=%q\\n' \"$x\"\r",
    });
    await waitFor(
      async () => Buffer.from((await s.http.get(`/v1/sessions/${id}/output`)).text).includes("away"),
      5_000,
      "the query",
    );
    s.proxy.down = false;
    await page.waitForSelector(".conn[data-state=open]:not(.conn-stale)", { timeout: 20_000 });
    await waitForTerminal(page, (t) => /^left=/m.test(t), 15_000, "the read's end");
    expect(await terminalText(page)).toMatch(/^left=''$/m);
  });

  it("sends a line typed fast while nobody holds control whole and in order (audit: keys lost after Release)", async () => {
    const s = await stack();
    const id = await createShell(s.http, "free-typing");
    await waitForPrompt(s.http, id);
    const page = await s.page({ hash: `#/s/${id}` });
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
    const page = await s.page({ hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=mine]");
    await page.click(".term-host");
    await page.waitForSelector(".terminal-view[data-control=free]", { timeout: 5_000 });
    await page.keyboard.type("echo lapsed-$((40+2))\n");
    await waitForTerminal(page, (t) => /^lapsed-42$/m.test(t), 5_000, "the echoed line");
  });

  it("lets a keyboard user leave the terminal with Escape then Tab, while Tab alone still completes (exploratory test: the terminal was a keyboard trap)", async () => {
    const s = await stack();
    const cwd = tempDir();
    writeFileSync(join(cwd, "tab-completed-42.txt"), "");
    const id = await createShell(s.http, "keyboard-only", { cwd });
    await waitForPrompt(s.http, id);
    const page = await s.page({ hash: `#/s/${id}` });
    await page.waitForSelector(".terminal-view[data-control=mine]");
    const inTerminal = (): Promise<boolean> =>
      page.evaluate(() => document.activeElement?.classList.contains("xterm-helper-textarea") === true);
    await page.click(".term-host");
    await page.keyboard.type("echo tab-com");
    await page.keyboard.press("Tab");
    await waitForTerminal(page, (t) => /tab-completed-42\.txt/.test(t), 5_000, "the completed name");
    expect(await inTerminal()).toBe(true);
    await page.keyboard.press("Escape");
    await page.keyboard.press("Tab");
    expect(await inTerminal()).toBe(false);
    await page.click(".term-host");
    expect(await inTerminal()).toBe(true);
    await page.keyboard.press("Escape");
    await page.keyboard.press("Shift+Tab");
    expect(await inTerminal()).toBe(false);
    // The shell got the typing, the first Tab and both Escapes, and neither Tab that followed an Escape.
    const bytes = async (): Promise<number> =>
      ((await s.http.get(`/v1/sessions/${id}/events?types=input`)).json.events as { bytes: number }[]).reduce(
        (sum, e) => sum + e.bytes,
        0,
      );
    await waitFor(async () => (await bytes()) >= 15, 5_000, "the input to be logged");
    await page.waitForTimeout(200);
    expect(await bytes()).toBe("echo tab-com".length + 1 + 2);
  });

  it("shows a terminal's text in a sheet on a touch screen, to select and copy (exploratory test: a phone could not select terminal output)", async () => {
    const s = await stack();
    const long = "x".repeat(150);
    const res = await s.http.post("/v1/sessions", {
      command: ["sh", "-c", `for i in 1 2 3; do echo "line $i"; done; echo 'a  b'; echo ${long}; sleep 300`],
      pty: true,
      name: "phone-copy",
      cols: 40,
      rows: 20,
    });
    const id = res.json.id as string;
    const page = await s.page({ hash: `#/s/${id}`, viewport: PHONE, touch: true });
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
    const desk = await s.page({ hash: `#/s/${id}` });
    await desk.waitForSelector(".terminal-view[data-restored=true]");
    expect(await desk.isVisible("[data-test=show-text]")).toBe(false);
  });

  it("keeps the focus in the terminal when a phone key-bar key is tapped (audit: typing after Tab went nowhere)", async () => {
    const s = await stack();
    const cwd = tempDir();
    writeFileSync(join(cwd, "tab-completed-42.txt"), "");
    const id = await createShell(s.http, "phone-keys", { cwd });
    await waitForPrompt(s.http, id);
    const page = await s.page({ hash: `#/s/${id}`, viewport: PHONE, touch: true });
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
    const s = await stack();
    const id = await createShell(s.http, "phone-arrows");
    await waitForPrompt(s.http, id);
    const page = await s.page({ hash: `#/s/${id}`, viewport: PHONE, touch: true });
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
    const s = await stack();
    const id = await createShell(s.http, "phone-fit");
    const page = await s.page({ hash: `#/s/${id}`, viewport: PHONE, touch: true });
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

  it("gives a viewer token a read-only UI that cannot type, prompt or create", async () => {
    const s = await stack({
      auth: { tokens: [{ name: "vera", token: VIEWER_TOKEN, role: "viewer", sessions: ["*"] }] },
    });
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

  it("gives a phone in landscape the one-column layout (exploratory test: next to the sidebar its terminal showed two lines)", async () => {
    const s = await stack();
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

  it("keeps the list's filter when a session is opened and Back pressed (exploratory test: it went back to All)", async () => {
    const s = await stack();
    const ended = (await s.http.post("/v1/sessions", { command: ["true"], name: "finished" })).json.id as string;
    await createShell(s.http, "still-running");
    await waitFor(async () => (await s.http.get(`/v1/sessions/${ended}`)).json.state === "exited", 5_000, "the exit");
    const page = await s.page();
    const rows = ".main .row";
    await expect.poll(() => page.locator(rows).count(), { timeout: 5_000 }).toBe(2);
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

  it("shows an agent idle at once after Abort and Abort all (exploratory test: Working until the next poll)", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "aborted-bot");
    // Long answers: the second prompt is still streaming when "Abort all" clears the third.
    const long = "a long answer ".repeat(60);
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: "/permission Apply the patch" });
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: long });
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: long });
    const page = await s.page({ hash: `#/s/${id}` });
    await page.waitForSelector(".view-head [data-state=waiting]");
    await page.click("[data-test=abort]");
    await page.waitForSelector(".view-head [data-state=working]");
    // The list poll is held back, so only the session's own events can make it idle.
    await page.route("**/v1/sessions", (route) => {
      setTimeout(() => void route.continue().catch(() => undefined), 3_000);
    });
    await page.click(".view-actions button:has-text('Abort all')");
    await page.waitForSelector(".view-head [data-state=idle]", { timeout: 1_000 });
    await page.waitForSelector(`.sidebar .row[data-session="${id}"] [data-state=idle]`, { timeout: 1_000 });
  });

  it("does not say control was lost when the session ended in a gateway restart (exploratory test: a success toast with the raw id)", async () => {
    const dataDir = tempDir();
    const first = await serveInChild({ dataDir });
    const firstHttp = api(first.url);
    const id = await createShell(firstHttp, "restarted");
    await waitForPrompt(firstHttp, id);
    const proxy = await FaultProxy.start(first.url);
    const context = await browser.newContext({ viewport: DESKTOP });
    onTestFinished(async () => {
      await context.close();
      await proxy.close();
    });
    const page = await context.newPage();
    await page.goto(`${proxy.url}/#token=${TEST_TOKEN}`);
    await page.waitForSelector("[data-test=whoami]");
    await open(page, `#/s/${id}`);
    await page.waitForSelector(".terminal-view[data-control=mine]");

    first.child.kill("SIGKILL");
    await new Promise((r) => first.child.once("exit", r));
    const second = await serveInChild({ dataDir });
    proxy.retarget(Number(new URL(second.url).port));
    await page.waitForSelector("[data-test=exit-summary]:has-text('Lost')", { timeout: 20_000 });
    // The lease ended with the session: the page holds none, and says nothing of losing it.
    await waitFor(async () => (await debugView(page))?.control !== "mine", 5_000, "the lease to be gone");
    await page.waitForTimeout(500);
    expect(await page.locator(".toast").allTextContents()).toEqual([]);
  });

  it("shows a session the user stopped as stopped, not failed (exploratory test: a red Exited badge)", async () => {
    const s = await stack();
    const agent = await createAgent(s.http, "stoppable");
    const sleeper = (await s.http.post("/v1/sessions", { command: ["sh", "-c", "echo working; sleep 300"] })).json
      .id as string;
    const page = await s.page({ hash: `#/s/${agent}` });
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

  it("brings the user's prompt into view when sent from higher up a long conversation (exploratory test: it stayed out of sight)", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "chatty");
    const tall = Array.from({ length: 12 }, (_, i) => `line ${i}`).join("\n");
    for (let i = 0; i < 5; i++) await s.http.post(`/v1/sessions/${id}/prompt`, { text: tall });
    const page = await s.page({ hash: `#/s/${id}` });
    await waitFor(
      async () => (await debugView(page))?.runs?.filter((r) => r.status === "done").length === 5,
      15_000,
      "the answers",
    );
    await page.$eval(".conversation", (el) => (el.scrollTop = 0));

    await page.fill(".prompt-input", "the newest prompt");
    await page.keyboard.press("Enter");
    const bubble = ".run:nth-child(6) .msg-user .bubble";
    await page.waitForSelector(bubble);
    await page.waitForTimeout(200);
    const shown = await page.$eval(bubble, (el) => {
      const box = el.getBoundingClientRect();
      const view = el.closest(".conversation")!.getBoundingClientRect();
      return box.top >= view.top && box.bottom <= view.bottom;
    });
    expect(shown).toBe(true);
  });

  it("offers New messages ↓ to a reader scrolled up while the conversation grows, on a desktop and a phone", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "chatty");
    const lines = (count: number): string => Array.from({ length: count }, (_, i) => `line ${i}`).join("\n");
    for (let i = 0; i < 4; i++) await s.http.post(`/v1/sessions/${id}/prompt`, { text: lines(12) });
    let runs = 4;
    const button = "[data-test=new-messages]";
    for (const [viewport, touch] of [
      [DESKTOP, false],
      [PHONE, true],
    ] as const) {
      const page = await s.page({ hash: `#/s/${id}`, viewport, touch });
      const done = async (): Promise<void> => {
        await waitFor(
          async () => (await debugView(page))?.runs?.filter((r) => r.status === "done").length === runs,
          20_000,
          "the answers",
        );
      };
      const fromBottom = (): Promise<number> =>
        page.$eval(".conversation", (el) => el.scrollHeight - el.scrollTop - el.clientHeight);
      const scrollTo = (top: "top" | "bottom"): Promise<void> =>
        page.$eval(".conversation", (el, to) => void (el.scrollTop = to === "top" ? 0 : el.scrollHeight), top);
      const prompt = async (text: string): Promise<void> => {
        await s.http.post(`/v1/sessions/${id}/prompt`, { text });
        runs++;
      };
      await done();
      expect(await page.isHidden(button)).toBe(true);

      // The answer streams on below a reader who scrolled up.
      await prompt(lines(100));
      await waitFor(async () => ((await runStatus(page, runs - 1))?.text.length ?? 0) > 0, 10_000, "the stream");
      await scrollTo("top");
      await page.waitForSelector(button, { state: "visible", timeout: 5_000 });
      const placed = await page.$eval(button, (el) => {
        const box = el.getBoundingClientRect();
        const view = el.parentElement!.querySelector(".conversation")!.getBoundingClientRect();
        return { left: box.left - view.left, right: view.right - box.right, below: view.bottom - box.bottom };
      });
      expect(placed.left).toBeGreaterThan(0);
      expect(placed.right).toBeGreaterThan(0);
      expect(placed.below).toBeGreaterThan(0);
      expect(placed.below).toBeLessThan(40);
      if (touch) await page.tap(button);
      else await page.click(button);
      expect(await page.isHidden(button)).toBe(true);
      // At the bottom again, the conversation follows the rest of the answer without the button.
      await done();
      expect(await fromBottom()).toBeLessThan(2);
      expect(await page.isHidden(button)).toBe(true);

      // A new message; the reader scrolls down to it themselves.
      await scrollTo("top");
      await prompt("a new message");
      await page.waitForSelector(button, { state: "visible", timeout: 5_000 });
      await scrollTo("bottom");
      await page.waitForSelector(button, { state: "hidden", timeout: 1_000 });
      await done();

      // From the keyboard: the button takes the reader down, and the focus to the prompt box.
      await scrollTo("top");
      await prompt("another message");
      await page.waitForSelector(button, { state: "visible", timeout: 5_000 });
      await page.focus(button);
      await page.keyboard.press("Enter");
      expect(await page.isHidden(button)).toBe(true);
      expect(await fromBottom()).toBeLessThan(2);
      expect(await page.evaluate(() => document.activeElement?.className)).toBe("prompt-input");
      await done();
    }
  });

  it("keeps the streaming caret at the end of the answer's last line, after a paragraph and in a list (exploratory test: it sat on a line of its own)", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "writer");
    const page = await s.page({ hash: `#/s/${id}` });
    // Short lines, which never wrap: the caret has room after each.
    const paragraph = Array.from({ length: 30 }, (_, i) => `line ${i}`).join("\n");
    const list = Array.from({ length: 30 }, (_, i) => `- item ${i}`).join("\n");
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: `${paragraph}\n\n${list}` });
    // Where the caret and the last line of text are, once the answer streamed so far that it ends
    // in a word of a `block` (not in a new line or a bullet yet without text).
    const measure = async (block: "P" | "LI") =>
      (
        await page.waitForFunction(
          (tag) => {
            const view = (window as unknown as { __switchboard: { view(): DebugView } }).__switchboard.view();
            const answer = document.querySelector(".answer");
            const caret = answer?.querySelector(".caret");
            const streamed = view.runs?.[0]?.text ?? "";
            if (!answer || !caret || streamed.length < 40 || !/\w$/.test(streamed)) return null;
            const walker = document.createTreeWalker(answer, NodeFilter.SHOW_TEXT);
            let last: Text | null = null;
            for (let node = walker.nextNode(); node; node = walker.nextNode())
              if (node.textContent!.trim() !== "") last = node as Text;
            if (last?.parentElement?.tagName !== tag) return null;
            const range = document.createRange();
            range.selectNodeContents(last);
            const line = [...range.getClientRects()].at(-1)!;
            const box = caret.getBoundingClientRect();
            return { line: { top: line.top, bottom: line.bottom, right: line.right }, caret: box.toJSON() as DOMRect };
          },
          block,
          { timeout: 10_000 },
        )
      ).jsonValue();
    for (const block of ["P", "LI"] as const) {
      const { line, caret } = (await measure(block))!;
      const middle = (caret.top + caret.bottom) / 2;
      expect(middle, block).toBeGreaterThan(line.top);
      expect(middle, block).toBeLessThan(line.bottom);
      expect(caret.left, block).toBeGreaterThanOrEqual(line.right - 0.5);
      expect(caret.left, block).toBeLessThan(line.right + 8);
    }
  });

  it("builds only the end of a streaming answer in each frame and when it ends, and a selection in a finished paragraph stays (a 60 KB answer took 83 ms a frame at a phone's speed, and its end 130–400 ms)", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "long");
    const page = await s.page({ hash: `#/s/${id}` });
    // Elements built in each animation frame, with the answer's length in blocks then and whether its run went on.
    await page.evaluate(`(() => {
      window.frames = [];
      let built = 0;
      const create = document.createElement.bind(document);
      document.createElement = (tag, options) => (built++, create(tag, options));
      const raf = window.requestAnimationFrame.bind(window);
      window.requestAnimationFrame = (callback) => raf((time) => {
        built = 0;
        callback(time);
        const run = [...document.querySelectorAll(".run")].at(-1);
        const answer = run?.querySelector(".answer");
        if (answer) window.frames.push({ blocks: answer.children.length, built, running: run.dataset.status === "running" });
      });
    })()`);
    const paragraphs = Array.from({ length: 60 }, (_, i) => `para ${i}`);
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: paragraphs.join("\n\n") });
    await page.waitForFunction(() => document.querySelectorAll(".answer p").length >= 5, undefined, {
      timeout: 10_000,
    });
    await page.evaluate(() => {
      const first = document.querySelector(".answer p")!;
      (window as unknown as { first: Element }).first = first;
      getSelection()!.selectAllChildren(first);
    });
    await page.waitForSelector("[data-test=run-done]", { timeout: 30_000 });
    expect(
      await page.evaluate(() => {
        const first = (window as unknown as { first: Element }).first;
        return { same: first === document.querySelector(".answer p"), selected: getSelection()!.toString() };
      }),
    ).toEqual({ same: true, selected: "para 0" });
    const frames = (await page.evaluate("window.frames")) as { blocks: number; built: number; running: boolean }[];
    const long = frames.filter((f) => f.running && f.blocks >= 40);
    expect(long.length).toBeGreaterThan(5);
    // The run around the answer and its last paragraph, not the 40 paragraphs before it…
    expect(Math.max(...long.map((f) => f.built))).toBeLessThan(30);
    // …also in the frame that shows the run ended (the whole answer is checked later, when idle).
    const end = frames.find((f) => !f.running);
    expect(end?.blocks).toBe(60);
    expect(end?.built).toBeLessThan(30);
  });

  it("shows an agent's AGENT_AUTH_REQUIRED as a login to do, with the command to run as code, not as a failure", async () => {
    const raw = new URL("../agents/fixtures/raw-agent.mjs", import.meta.url).pathname;
    const command = [process.execPath, raw, "--handshake=auth"];
    const s = await stack({ agents: { needs_login: { adapter: "acp", command } } });
    const res = await s.http.post("/v1/sessions", { kind: "agent", agent: "needs_login" });
    const page = await s.page({ hash: `#/s/${res.json.id as string}` });
    await s.http.post(`/v1/sessions/${res.json.id as string}/prompt`, { text: "hello" });
    const foot = page.locator("[data-test=run-login]");
    await foot.waitFor({ timeout: 20_000 });
    expect(await foot.getAttribute("role")).toBe("status");
    expect(await foot.locator("strong").textContent()).toBe("Log in to the agent:");
    expect(await foot.locator("code").allTextContents()).toEqual(["raw /login", `${command.join(" ")} --login`]);
    expect(await page.locator(".run-foot.run-error").count()).toBe(0);
  });

  it("shows snake_case names as written and keeps a numbered list's numbers across a code block (exploratory test: get<em>user</em>name, and every step numbered 1)", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "markdown");
    const page = await s.page({ hash: `#/s/${id}` });
    const answer = [
      "Rename get_user_name to fetch_user_name, keep _this_ and __that__ as they were.",
      "",
      "1. Install it:",
      "",
      "```sh",
      "npm i",
      "```",
      "",
      "2. Run it",
      "3. Done",
    ].join("\n");
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: answer });
    await page.waitForSelector("[data-test=run-done]", { timeout: 20_000 });
    const md = page.locator(".answer");
    expect(await md.locator("p").first().textContent()).toBe(
      "Rename get_user_name to fetch_user_name, keep this and that as they were.",
    );
    expect(await md.locator("em").allTextContents()).toEqual(["this"]);
    expect(await md.locator("strong").allTextContents()).toEqual(["that"]);
    const lists = await md
      .locator("ol")
      .evaluateAll((ols) => ols.map((ol) => ({ start: (ol as HTMLOListElement).start, items: ol.children.length })));
    expect(lists).toEqual([
      { start: 1, items: 1 },
      { start: 2, items: 2 },
    ]);
  });

  it("renders an answer's tables, task lists, nested lists and fences with info strings, and shows raw HTML and unsafe links as text", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "gfm");
    const page = await s.page({ hash: `#/s/${id}` });
    const answer = [
      "| Step | Status |",
      "|:--|--:|",
      "| build | **ok** |",
      "| test | `3 failed` |",
      "",
      "- [x] done task",
      "- [ ] open task",
      "  - nested under it",
      "    1. deep",
      "",
      '```ts title="a.ts"',
      "const x = 1;",
      "```",
      "",
      "<img src=x onerror=alert(1)> and <b>bold?</b>",
      "",
      "[click](javascript:alert(1)) [docs](https://example.com/docs) ![diagram](https://example.com/d.png) see https://example.com/bare ~~old~~",
    ].join("\n");
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: answer });
    await page.waitForSelector("[data-test=run-done]", { timeout: 20_000 });
    const md = page.locator(".answer");
    const rows = await md
      .locator("table tr")
      .evaluateAll((trs) => trs.map((tr) => Array.from(tr.children, (c) => [c.tagName, c.textContent, c.className])));
    expect(rows).toEqual([
      [
        ["TH", "Step", "md-align-left"],
        ["TH", "Status", "md-align-right"],
      ],
      [
        ["TD", "build", "md-align-left"],
        ["TD", "ok", "md-align-right"],
      ],
      [
        ["TD", "test", "md-align-left"],
        ["TD", "3 failed", "md-align-right"],
      ],
    ]);
    expect(await md.locator("td strong").textContent()).toBe("ok");
    expect(await md.locator("td code").textContent()).toBe("3 failed");
    const tasks = await md.locator("li:has(> input[type=checkbox])").evaluateAll((lis) =>
      lis.map((li) => ({
        checked: li.querySelector("input")!.checked,
        text: li.firstChild!.nextSibling!.textContent,
      })),
    );
    expect(tasks).toEqual([
      { checked: true, text: "done task" },
      { checked: false, text: "open task" },
    ]);
    expect(
      await md
        .locator("ul > li > ul > li")
        .first()
        .evaluate((li) => li.firstChild!.textContent),
    ).toBe("nested under it");
    expect(await md.locator("ul > li > ul > li > ol > li").textContent()).toBe("deep");
    expect(await md.locator("pre.md-code").getAttribute("data-lang")).toBe("ts");
    expect(await md.locator("pre.md-code code").textContent()).toBe("const x = 1;");
    // Its Copy button puts the code, and only the code, on the clipboard.
    await page.evaluate(() => {
      navigator.clipboard.writeText = (text: string) => {
        (window as unknown as { copied: string }).copied = text;
        return Promise.resolve();
      };
    });
    await md.locator("pre.md-code .code-copy").click();
    await page.waitForSelector("pre.md-code .code-copy[data-copied=true]");
    expect(await page.evaluate(() => (window as unknown as { copied?: string }).copied)).toBe("const x = 1;");
    // Raw HTML is text; nothing an agent names is loaded or runs.
    expect(await md.locator("img, b, script").count()).toBe(0);
    expect(await md.locator("p", { hasText: "onerror" }).textContent()).toBe(
      "<img src=x onerror=alert(1)> and <b>bold?</b>",
    );
    const links = await md.locator("a").evaluateAll((as) => as.map((a) => [a.textContent, a.getAttribute("href")]));
    expect(links).toEqual([
      ["docs", "https://example.com/docs"],
      ["diagram (image)", "https://example.com/d.png"],
      ["https://example.com/bare", "https://example.com/bare"],
    ]);
    expect(await md.locator("a[target=_blank][rel='noopener noreferrer']").count()).toBe(3);
    expect(await md.locator("p", { hasText: "click" }).textContent()).toContain("click docs");
    expect(await md.locator("del").textContent()).toBe("old");
  });

  it("on a touch screen, Enter starts a new line and Send sends, and the prompt box waits for a tap (exploratory test: a phone could not write two lines, and its keyboard popped up over the answer)", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "pocket");
    const page = await s.page({ hash: `#/s/${id}`, viewport: PHONE, touch: true });
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
    const desk = await s.page({ hash: `#/s/${id}` });
    await desk.waitForSelector(".prompt-input:focus");
    expect(await desk.getAttribute(".prompt-input", "enterkeyhint")).toBe("send");
    await desk.keyboard.type("from the desk");
    await desk.keyboard.press("Enter");
    await waitFor(async () => (await runStatus(desk, 1))?.status === "done", 10_000, "the desk's run");
    expect((await runStatus(desk, 1))?.text).toBe("from the desk");
  });

  it("copies the selected text on Ctrl+C instead of interrupting the program (exploratory test: copying an error killed the build)", async () => {
    const s = await stack();
    // A program that says when it is interrupted, and otherwise runs on.
    const res = await s.http.post("/v1/sessions", {
      command: [
        "sh",
        "-c",
        "trap 'echo INTERRUPTED; exit 130' INT; echo 'error: copy me please'; while :; do sleep 0.1; done",
      ],
      pty: true,
      name: "copy",
      cols: 100,
      rows: 28,
    });
    const id = res.json.id as string;
    const page = await s.page({ hash: `#/s/${id}` });
    await waitForTerminal(page, (text) => text.includes("copy me please"));
    await page.waitForSelector(".view[data-control=mine]");
    await page.evaluate(() => {
      document.addEventListener("copy", (event) => {
        (window as unknown as { copied: string }).copied = event.clipboardData?.getData("text/plain") ?? "";
      });
    });
    // Select the first line with the mouse: a double click selects a word, a triple click the line.
    const box = (await page.locator(".xterm-screen").boundingBox())!;
    await page.mouse.click(box.x + 20, box.y + 8, { clickCount: 3 });
    await page.keyboard.press("Control+c");
    await expect
      .poll(() => page.evaluate(() => (window as unknown as { copied?: string }).copied), { timeout: 5_000 })
      .toContain("error: copy me please");
    await page.waitForTimeout(500);
    expect(await terminalText(page)).not.toContain("INTERRUPTED");
    // Without a selection, Ctrl+C is ^C again.
    await page.mouse.click(box.x + 20, box.y + 200);
    await page.keyboard.press("Control+c");
    await waitForTerminal(page, (text) => text.includes("INTERRUPTED"));
  });
  it("does not redraw the session list and header for every chunk of a streaming answer (exploratory test: with 300 sessions listed, that took as long as the answer)", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "streamer");
    const page = await s.page({ hash: `#/s/${id}` });
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

  it("reads a right-to-left name, prompt and answer from their start, and gives a screen reader links, the open row and a conversation log (exploratory test: an Arabic name was cut off at its start, and rows were not links)", async () => {
    const s = await stack();
    const name = "مشروع البيانات الكبير للتحليل 2024 (الإصدار الثالث) #7";
    const res = await s.http.post("/v1/sessions", { kind: "agent", agent: "echo", name });
    const id = res.json.id as string;
    const phone = await s.page({ viewport: PHONE, touch: true });
    const title = phone.locator(`.main .row[data-session="${id}"] .row-title`);
    await title.waitFor();
    // The name's first word is in sight, not cut off by the "…" (which ends the line on the left).
    const firstWord = await title.evaluate((el) => {
      const text = el.firstChild as Text;
      const range = document.createRange();
      range.setStart(text, 0);
      range.setEnd(text, text.data.indexOf(" "));
      const word = range.getBoundingClientRect();
      const box = el.getBoundingClientRect();
      return {
        inside: word.left >= box.left - 0.5 && word.right <= box.right + 0.5,
        overflows: el.scrollWidth > el.clientWidth,
      };
    });
    expect(firstWord).toEqual({ inside: true, overflows: true });
    // Each row is a link (a list role on it hid that).
    expect(await phone.getByRole("link", { name: /مشروع البيانات/ }).count()).toBe(1);

    const page = await s.page({ hash: `#/s/${id}` });
    expect(await page.getAttribute(`.sidebar .row[data-session="${id}"]`, "aria-current")).toBe("page");
    const prompt = "مرحبا، كيف حالك؟ هذا سؤال (مع أقواس) ونقطة.";
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: `${prompt} ${"كلمة ".repeat(30)}` });
    const log = page.getByRole("log", { name: "Conversation" });
    // While the answer streams its run is busy, so a screen reader reads it out once, complete.
    await log.locator("article[aria-busy=true] .answer").waitFor({ timeout: 10_000 });
    await page.waitForSelector("[data-test=run-done]", { timeout: 20_000 });
    expect(await log.locator("article").getAttribute("aria-busy")).toBeNull();
    const directions = await page.$$eval(".run .bubble, .run .answer p", (els) =>
      els.map((el) => getComputedStyle(el).direction),
    );
    expect(directions).toEqual(["rtl", "rtl"]);
    // A run waiting for an answer is read out at once: the request is what needs the reader.
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: "/permission edit the file" });
    await page.waitForSelector(".run:nth-child(2) .permission button");
    expect(await page.getAttribute(".run:nth-child(2)", "aria-busy")).toBeNull();
  });
});
