/**
 * Shared set-up of the web UI's browser tests (test/web/ui-*.test.ts): the browser, a gateway
 * behind a fault proxy per test, tokens, viewports and the shell and agent sessions they open.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, expect, onTestFailed, onTestFinished } from "vitest";
import { startGateway } from "../../src/server/gateway.js";
import type { Gateway } from "../../src/server/gateway.js";
import type { GatewayOptions } from "../../src/server/config/gateway-options.js";
import type { ConfigInput } from "../../src/server/config/config.js";
import { createLogger } from "../../src/server/ops/logger.js";
import { TEST_TOKEN, api } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { tempDir } from "../helpers/tmp.js";
import { FaultProxy } from "../helpers/fault-proxy.js";
import { buildWeb, debugView, launchBrowser } from "./harness.js";

/** The README's screenshots are rewritten only when asked (`UPDATE_SCREENSHOTS=1 npm test`); a plain run keeps the tree clean. */
export const SCREENSHOTS = process.env["UPDATE_SCREENSHOTS"]
  ? new URL("../../docs/screenshots/", import.meta.url).pathname
  : `${mkdtempSync(join(tmpdir(), "switchboard-screenshots-"))}/`;
export const VIEWER_TOKEN = "viewer-token-vera-0123456789abcdef";
export const OPERATOR_TOKEN = "operator-token-otto-0123456789abcdef";
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };
export const PHONE_LANDSCAPE = { width: 844, height: 390 };
/** A bash without rc files and with a fixed, recognisable prompt. */
export const SHELL = ["bash", "--noprofile", "--norc", "-i"];
export const SHELL_ENV = {
  PS1: "\\[\\e[32m\\]dev@switchboard\\[\\e[0m\\]:\\[\\e[34m\\]~/app\\[\\e[0m\\]$ ",
  TERM: "xterm-256color",
};

/**
 * The page's request timeout (web/src/request-timeout.ts) at 2 s instead of 10 s, for a test that
 * waits for a request the gateway does not answer to be "not confirmed".
 */
export const SHORT_REQUEST_TIMEOUT = { "switchboard:request-timeout-ms": "2000" };

export let browser: Browser;

/**
 * What every test's browser context starts with: dark, as the README's screenshots are
 * (ui-theme.test.ts switches to light itself), and without the app's service worker. Registering
 * it fetches and caches the app shell again in each fresh context, about 0.2 CPU-s of Chromium a
 * page (docs/benchmarks.md, "The test suite"); ui-app.test.ts and ui-push.test.ts test the worker
 * and let it register.
 */
export const CONTEXT = { colorScheme: "dark", serviceWorkers: "block" } as const;

/** Launches the browser (and builds the UI) before the file's tests and closes it after; call it at the top of each file. */
export function useBrowser(): void {
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
}

/** The browser context a stack's page opens in; `touch` makes it a phone's (taps, no hover). */
interface ContextOptions {
  viewport?: { width: number; height: number };
  touch?: boolean;
  /** `localStorage` items the page finds set when it loads (e.g. {@link SHORT_REQUEST_TIMEOUT}). */
  storage?: Record<string, string>;
  /** Let the page register the app's service worker (off by default: see {@link CONTEXT}). */
  serviceWorker?: boolean;
  /** Runs in the page before its own script, at every load (e.g. a recorder of what it calls). */
  init?: () => void;
  /** Browser permissions the context grants from the start (e.g. `notifications`). */
  permissions?: string[];
}

export interface Stack {
  gateway: Gateway;
  proxy: FaultProxy;
  http: ReturnType<typeof api>;
  /** A signed-in page (a fresh browser context: its own cookie jar). */
  page(
    options?: ContextOptions & {
      token?: string;
      hash?: string;
      /** Take control of the session at `hash` once it opens, as a user who types would (default true; see {@link open}). */
      take?: boolean;
    },
  ): Promise<Page>;
  /** A page at `path` in a fresh context, not signed in; `touch` makes it a phone's. */
  blank(path: string, viewport?: { width: number; height: number }, touch?: boolean): Promise<Page>;
}

/** A gateway (on `dataDir`), a proxy in front of it and a way to open signed-in pages; all closed after the test. */
export async function stack(
  config?: ConfigInput,
  dataDir = tempDir(),
  options: Pick<GatewayOptions, "pushAgent" | "pushServiceHosts"> = {},
): Promise<Stack> {
  const { gateway, proxy } = await startStack(config, dataDir, options);
  onTestFinished(async () => {
    await proxy.close();
    await gateway.close();
  });
  return stackOn(gateway, proxy);
}

/**
 * One gateway and proxy for the tests of a file (started before the first, closed after the
 * last): call the result in a test for its stack, whose pages close after that test. Only for
 * tests that open sessions of their own and leave the proxy and the gateway as they are.
 */
export function sharedStack(config?: ConfigInput): () => Stack {
  let shared: { gateway: Gateway; proxy: FaultProxy } | undefined;
  beforeAll(async () => {
    shared = await startStack(config, tempDir());
  });
  afterAll(async () => {
    await shared?.proxy.close();
    await shared?.gateway.close();
  });
  return () => {
    if (!shared) throw new Error("the shared gateway did not start (see the file's beforeAll)");
    return stackOn(shared.gateway, shared.proxy);
  };
}

async function startStack(
  config: ConfigInput | undefined,
  dataDir: string,
  options: Pick<GatewayOptions, "pushAgent" | "pushServiceHosts"> = {},
) {
  const gateway = await startGateway({
    ...options,
    host: "127.0.0.1",
    port: 0,
    dataDir,
    token: TEST_TOKEN,
    logger: createLogger({ level: "silent" }),
    ...(config ? { config } : {}),
  });
  const proxy = await FaultProxy.start(gateway.url);
  return { gateway, proxy };
}

/** The stack of one test on `gateway` and `proxy`: the pages it opens are closed after the test. */
function stackOn(gateway: Gateway, proxy: FaultProxy): Stack {
  const contexts: BrowserContext[] = [];
  onTestFinished(async () => {
    for (const context of contexts) await context.close();
  });
  const blank = async (
    path: string,
    { viewport = DESKTOP, touch = false, storage = {}, serviceWorker = false, init, permissions }: ContextOptions = {},
  ): Promise<Page> => {
    const context = await browser.newContext({
      ...CONTEXT,
      viewport,
      // A list, even an empty one, has every permission it leaves out denied (else "default": asks).
      ...(permissions ? { permissions } : {}),
      ...(serviceWorker ? { serviceWorkers: "allow" } : {}),
      ...(touch ? { hasTouch: true, isMobile: true } : {}),
    });
    contexts.push(context);
    if (Object.keys(storage).length > 0)
      await context.addInitScript((items: Record<string, string>) => {
        for (const [key, value] of Object.entries(items)) localStorage.setItem(key, value);
      }, storage);
    if (init) await context.addInitScript(init);
    const page = await context.newPage();
    page.on("pageerror", (error) => console.error("page error:", error));
    await page.goto(`${proxy.url}${path}`);
    return page;
  };
  return {
    gateway,
    proxy,
    http: api(gateway.url),
    blank: (path, viewport, touch) => blank(path, { ...(viewport ? { viewport } : {}), ...(touch ? { touch } : {}) }),
    async page({ token = TEST_TOKEN, hash = "", take = true, ...options } = {}) {
      const page = await blank(`/#token=${token}`, options);
      await page.waitForSelector("[data-test=whoami]");
      if (hash) await open(page, hash, { take });
      return page;
    },
  };
}

/**
 * The one tab of a file's tests, in a context `newContext` makes: made when there is none (or it
 * was closed), and closed after the file and after a test that failed. `fresh`: made just now.
 */
function fileTab(
  newContext: () => Promise<BrowserContext>,
): () => Promise<{ page: Page; context: BrowserContext; fresh: boolean }> {
  let tab: { page: Page; context: BrowserContext } | undefined;
  const discard = async (): Promise<void> => {
    const closing = tab?.context;
    tab = undefined;
    await closing?.close();
  };
  afterAll(discard);
  return async () => {
    onTestFailed(discard);
    if (tab !== undefined && !tab.page.isClosed()) return { ...tab, fresh: false };
    await discard();
    const context = await newContext();
    const page = await context.newPage();
    page.on("pageerror", (error) => console.error("page error:", error));
    tab = { page, context };
    return { ...tab, fresh: true };
  };
}

/**
 * One signed-in page (a desktop's, or a phone's with `touch`; admin's, or `token`'s) for the tests of a file on its
 * shared stack ({@link sharedStack}): the first test to ask opens it, the next ones move it to
 * their own session's route, and it closes after the file (or after a test that failed, so the
 * next one starts afresh). A page in a new context costs Chromium about 1.75 CPU-s; moving one to
 * another session a fraction of it (docs/benchmarks.md, "What a browser page costs"). Before a
 * test gets it, {@link resetPage} clears what a test leaves: dialogs, focus, toasts. Only for
 * tests that leave the page's context as they found it (no routes, media emulation, other pages,
 * offline, viewport or storage of their own): those open theirs with `stack.page`.
 */
export function sharedPage({
  viewport = DESKTOP,
  touch = false,
  token = TEST_TOKEN,
}: { viewport?: { width: number; height: number }; touch?: boolean; token?: string } = {}): (
  s: Stack,
  options?: { hash?: string; take?: boolean },
) => Promise<Page> {
  const tab = fileTab(() =>
    browser.newContext({ ...CONTEXT, viewport, ...(touch ? { hasTouch: true, isMobile: true } : {}) }),
  );
  return async (s, { hash = "", take = true } = {}) => {
    const { page, fresh } = await tab();
    if (fresh) {
      await page.goto(`${s.proxy.url}/#token=${token}`);
      await page.waitForSelector("[data-test=whoami]");
    } else await resetPage(page);
    if (hash) await open(page, hash, { take });
    return page;
  };
}

/**
 * A stack on `s`'s gateway with a proxy of its own (closed after the test): for a test on a
 * {@link sharedStack} that cuts, black-holes or takes down its connection, and leaves the gateway
 * as it found it. Starting a gateway costs about 0.4 CPU-s; a proxy next to nothing.
 */
export async function ownProxy(s: Stack): Promise<Stack> {
  const proxy = await FaultProxy.start(s.gateway.url);
  onTestFinished(() => proxy.close());
  return stackOn(s.gateway, proxy);
}

/** One gateway for the tests of a file, each test with a proxy of its own (see {@link ownProxy}). */
export function sharedGateway(config?: ConfigInput): () => Promise<Stack> {
  // The shared stack's proxy goes unused: each test has its own.
  const shared = sharedStack(config);
  return () => ownProxy(shared());
}

/**
 * One browser tab (a desktop's) for the tests of a file, loaded anew at the address of each
 * test's stack, signed in with the test's `token` (admin's by default): a new document with
 * empty storage and cookies, so the app starts afresh, in the same renderer. Loading a tab again
 * costs about a third of the CPU of a page in a new context (about 0.7 against 2 CPU-s). Before each test it also takes back the viewport, reduced
 * motion and the mouse, and drops the page's routes; it closes after the file, or after a test that failed.
 * Only for tests that add no init scripts, WebSocket routes, clock, other emulated media or other
 * tabs to its context: those open theirs with `stack.page`.
 */
export function reusedTab({ viewport = DESKTOP }: { viewport?: { width: number; height: number } } = {}): (
  s: Stack,
  options?: {
    token?: string;
    hash?: string;
    take?: boolean;
    /** `localStorage` items the app finds set when it loads (kept in the origin's storage for the test's reloads). */
    storage?: Record<string, string>;
  },
) => Promise<Page> {
  const tab = fileTab(() => browser.newContext({ ...CONTEXT, viewport }));
  return async (s, { token = TEST_TOKEN, hash = "", take = true, storage = {} } = {}) => {
    const { page, context, fresh } = await tab();
    if (!fresh) {
      // What the last test left: its routes, a viewport of its own, its origin's storage and the
      // cookie jar (a port the system gives out again comes back empty, as in a new context).
      await page.unrouteAll({ behavior: "ignoreErrors" });
      await page.setViewportSize(viewport);
      await page.emulateMedia({ reducedMotion: "no-preference" });
      await page.mouse.move(0, 0);
      await page.evaluate(() => {
        if (!location.protocol.startsWith("http")) return;
        localStorage.clear();
        sessionStorage.clear();
      });
      await context.clearCookies();
      // The same address but for its fragment would only change the hash, not load the app anew.
      if (new URL(page.url()).origin === new URL(s.proxy.url).origin) await page.goto("about:blank");
    }
    if (Object.keys(storage).length > 0) {
      // A document of the origin without the app in it, to set them before the app reads them.
      await page.goto(`${s.proxy.url}/healthz`);
      await page.evaluate((items) => {
        for (const [key, value] of Object.entries(items)) localStorage.setItem(key, value);
      }, storage);
    }
    await page.goto(`${s.proxy.url}/#token=${token}`);
    await page.waitForSelector("[data-test=whoami]");
    if (hash) await open(page, hash, { take });
    return page;
  };
}

/**
 * Takes a reused page back to the session list as a fresh one would show it: no open dialog,
 * no toast, nothing focused or hovered, no session's view.
 */
async function resetPage(page: Page): Promise<void> {
  await page.evaluate(() => {
    for (const dialog of document.querySelectorAll("dialog[open]")) (dialog as HTMLDialogElement).close();
    for (const toast of document.querySelectorAll(".toasts > .toast")) toast.remove();
    (document.activeElement as HTMLElement | null)?.blur();
    location.hash = "#/";
  });
  await page.waitForFunction(
    () => (window as unknown as { __switchboard?: { view(): unknown } }).__switchboard?.view() === null,
  );
  await page.mouse.move(0, 0);
}

/**
 * Has the page read the session list now, as it does when its tab is shown again
 * (web/src/session-store.ts), rather than at its next poll, up to POLL_INTERVAL_MS (2 s) away:
 * for a test that waits for what a poll that fails, or one that gets through again, shows.
 */
export async function pollNow(page: Page): Promise<void> {
  await page.evaluate(() => document.dispatchEvent(new Event("visibilitychange")));
}

/**
 * Drops the page's /v1/ws connection as its first `control` acquire goes out (the request never
 * reaches the gateway); the connections after it open only once `reconnectAfter` settles.
 * `cuts` counts the drops.
 */
export async function dropFirstControlRequest(
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

/**
 * Opens the page at `hash` and waits for its view. Opening only looks; a test that means to type
 * takes control as a user would, with "Take control" when nobody holds it (`take`, the default;
 * `take: false` leaves it as opening alone does).
 */
export async function open(page: Page, hash: string, { take = true }: { take?: boolean } = {}): Promise<void> {
  await page.evaluate((h) => (location.hash = h), hash);
  // The view of this hash's session: a page moved from another session still shows that one's
  // until the route changes.
  const session = /^#\/s\/([^/?#]+)/.exec(hash)?.[1];
  await page.waitForFunction((id) => {
    const view = (
      window as unknown as { __switchboard?: { view(): { session: string } | null } }
    ).__switchboard?.view();
    return id === undefined || view?.session === decodeURIComponent(id);
  }, session);
  await page.waitForSelector(`.view[data-restored=true]`);
  if (take && (await page.$(".terminal-view[data-control=free] [data-test=take-control]")))
    await page.click(".terminal-view[data-control=free] [data-test=take-control]");
}

export async function createShell(
  http: Stack["http"],
  name: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
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
export async function waitForPrompt(http: Stack["http"], id: string): Promise<void> {
  await waitFor(async () => (await http.get(`/v1/sessions/${id}/output`)).text.includes("/app"), 10_000, "the prompt");
}

export async function createAgent(http: Stack["http"], name: string): Promise<string> {
  const res = await http.post("/v1/sessions", { kind: "agent", agent: "echo", name });
  expect(res.status).toBe(201);
  return res.json.id as string;
}

export async function runStatus(page: Page, index: number): Promise<{ status: string; text: string } | undefined> {
  return (await debugView(page))?.runs?.[index];
}

/**
 * Waits until run `index` of the page's agent view has `status`, as `waitFor` on {@link runStatus}
 * would, but asking in the page every 20 ms instead of from here: a round trip to the browser each
 * time costs about 0.2 CPU-s for each second of waiting.
 */
export async function waitForRun(
  page: Page,
  index: number,
  status: string,
  timeoutMs = 10_000,
  what = `run ${index} to be ${status}`,
): Promise<void> {
  try {
    await page.waitForFunction(
      ([i, wanted]) =>
        (
          window as unknown as { __switchboard?: { view(): { runs?: { status: string }[] } | null } }
        ).__switchboard?.view()?.runs?.[i]?.status === wanted,
      [index, status] as const,
      { timeout: timeoutMs, polling: 20 },
    );
  } catch (error) {
    const runs = (await debugView(page).catch(() => null))?.runs?.map((run) => run.status);
    throw new Error(`waiting for ${what} failed; the runs: ${JSON.stringify(runs)}`, { cause: error });
  }
}
