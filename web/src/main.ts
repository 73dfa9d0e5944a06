/**
 * The Switchboard web UI (docs/ui.md). Bundled by scripts/build-web.mjs into web/dist, served by
 * the gateway at `/`. Vanilla TypeScript and the DOM; xterm.js for terminals; the SDK
 * (src/client) for the WebSocket, reconnects and HTTP.
 */
import "@xterm/xterm/css/xterm.css";
import "./styles.css";
import { App } from "./app.js";
import { fill, h } from "./dom.js";
import { errorText } from "./format.js";
import {
  fragmentHasPairCode,
  fragmentHasToken,
  isCookieKeyStorage,
  login,
  loginScreen,
  pairDevice,
  takePairCodeFromFragment,
  takeTokenFromFragment,
  whoami,
} from "./login.js";

const root = document.getElementById("app") ?? document.body;
let app: App | null = null;

async function boot(): Promise<void> {
  const token = takeTokenFromFragment();
  const pairCode = takePairCodeFromFragment();
  let loginError: string | undefined;
  if (token !== null) {
    try {
      await login(token);
    } catch (error) {
      loginError = `That link's token was refused: ${errorText(error)}`;
    }
  } else if (pairCode !== null) {
    try {
      await pairDevice(pairCode);
    } catch (error) {
      loginError = `That pairing link did not work: ${errorText(error)}`;
    }
  }
  const me = await whoami();
  if (me === null) {
    showLogin(loginError);
    return;
  }
  app = new App(me, (reason) => {
    app = null;
    // A share link's teammate has no token to sign in with: the page says the link ended.
    if (me.share !== undefined) showLinkEnded(reason);
    else showLogin(reason);
  });
  fill(root, app.element);
  app.start();
  // Still signed in with the cookie: say why the link did not switch who we are.
  if (loginError !== undefined) app.ctx.toast(loginError, "error");
}

function showLogin(error?: string): void {
  fill(
    root,
    loginScreen(async (token) => {
      await login(token);
      await boot();
    }, error),
  );
}

/** A share link's page once the link ended: what happened, and no sign-in form (it was never theirs). */
function showLinkEnded(reason = "This share link no longer opens the session."): void {
  fill(
    root,
    h(
      "div",
      { class: "login-page" },
      h(
        "div",
        { class: "login-card", role: "alert", "data-test": "share-ended" },
        h("h1", null, "This link has ended"),
        h("p", null, reason),
      ),
    ),
  );
}

/** The first wait before the page tries the gateway again by itself, doubled at each failure up to the last. */
const BOOT_RETRY_FIRST_MS = 1000;
const BOOT_RETRY_MAX_MS = 30_000;
/** Failed starts in a row (the next wait doubles with each). */
let failedStarts = 0;
/** The next try, and the `online` listener that tries at once: one of each at a time. */
let retry: { timer: ReturnType<typeof setTimeout>; online: () => void } | undefined;

function start(): void {
  cancelRetry();
  boot().then(
    () => {
      failedStarts = 0;
    },
    (error: unknown) => showUnreachable(error),
  );
}

/**
 * The gateway did not answer the start: says so, and tries again by itself after 1, 2, 4… s
 * (30 s at most) and at once when the device comes back online; Retry tries now.
 */
function showUnreachable(error: unknown): void {
  const delay = Math.min(BOOT_RETRY_MAX_MS, BOOT_RETRY_FIRST_MS * 2 ** failedStarts);
  failedStarts++;
  const online = () => start();
  retry = { timer: setTimeout(start, delay), online };
  window.addEventListener("online", online);
  fill(
    root,
    h(
      "div",
      { class: "login-page" },
      h(
        "div",
        { class: "login-card" },
        h("h1", null, "Cannot reach the gateway"),
        h("p", { class: "muted" }, errorText(error)),
        h(
          "p",
          { class: "muted", "data-test": "boot-retry" },
          `Trying again in ${Math.round(delay / 1000)} s, and as soon as this device is back online.`,
        ),
        h("button", { class: "btn btn-primary", type: "button", onclick: () => start() }, "Retry"),
      ),
    ),
  );
}

function cancelRetry(): void {
  if (!retry) return;
  clearTimeout(retry.timer);
  window.removeEventListener("online", retry.online);
  retry = undefined;
}

/**
 * The printed URL opened in a tab that already shows the UI changes only the fragment, so
 * the page is not loaded again: start over as a fresh load would, signing in with the token
 * (as whoever it names) and taking it out of the address bar. Registered before the app's
 * own hashchange listener, which this closes before it sees the fragment.
 */
window.addEventListener("hashchange", () => {
  if (!fragmentHasToken() && !fragmentHasPairCode()) return;
  app?.close();
  app = null;
  start();
});

/**
 * Another tab signed in (the browser now sends its cookie, which only its key opens) or out:
 * start over as a fresh load would, as whoever is signed in now, rather than fail at the next
 * request. (`key` is null when the storage was cleared.)
 */
window.addEventListener("storage", (event) => {
  if (!isCookieKeyStorage(event.key)) return;
  app?.close();
  app = null;
  start();
});

start();

// The installable app's service worker (web/src/sw.js): the app shell offline, never session
// data. Browsers allow it on https and on localhost only; elsewhere the UI works as before.
if ("serviceWorker" in navigator && window.isSecureContext) {
  navigator.serviceWorker.register("/sw.js").catch((error: unknown) => {
    console.warn("service worker not registered:", error);
  });
}
