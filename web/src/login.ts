import { COOKIE_KEY_HEADER, HttpClient, isSwitchboardError } from "../../src/client/index.js";
import type { GatewayTarget } from "../../src/client/index.js";
import type { Me, Role } from "./context.js";
import { h, icon } from "./dom.js";
import { errorText } from "./format.js";

/** Whether the URL's fragment carries a token (`#token=…`, the URL `switchboard serve` prints). */
export function fragmentHasToken(): boolean {
  return /(^|&)token=/.test(location.hash.replace(/^#/, ""));
}

/**
 * Takes the token out of the URL `switchboard serve` prints (`/#token=…`): the fragment is
 * never sent to the server, and it is removed from the address bar and the history entry
 * before anything else runs, so it does not linger in the tab, bookmarks or screenshots.
 */
export function takeTokenFromFragment(): string | null {
  if (!fragmentHasToken()) return null;
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const token = params.get("token");
  params.delete("token");
  const rest = params.toString();
  history.replaceState(history.state, "", `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`);
  return token !== null && token !== "" ? token : null;
}

/** The pairing code of a pairing URL (`/#pair=CODE`), taken out of the address bar as the token is. */
export function takePairCodeFromFragment(): string | null {
  const m = /^#pair=([A-Za-z0-9_-]{1,64})$/.exec(location.hash);
  if (!m) return null;
  history.replaceState(history.state, "", `${location.pathname}${location.search}`);
  return m[1]!;
}

/** Whether the URL's fragment is a pairing URL's. */
export function fragmentHasPairCode(): boolean {
  return location.hash.startsWith("#pair=");
}

/**
 * The token in what was pasted into the sign-in box: the token itself, or the whole URL
 * `switchboard serve` printed (`http://…/#token=…`), which is what a user copies from the terminal.
 */
export function tokenFromInput(text: string): string {
  const trimmed = text.trim();
  const m = /[#?&]token=([^&#\s]*)/.exec(trimmed);
  if (!m) return trimmed;
  return new URLSearchParams(`token=${m[1]}`).get("token") ?? "";
}

/** Where the page keeps its sign-in's cookie key: the origin's own storage (its port included). */
const COOKIE_KEY_STORAGE = "switchboard.cookieKey";
/** Who that sign-in is (`name:role`): another tab that signs in as someone else changes it. */
const IDENTITY_STORAGE = "switchboard.signedInAs";
/** What the gateway answers as a key, and takes back at the next sign-in. */
const COOKIE_KEY_FORMAT = /^[A-Za-z0-9_-]{43}$/;
/** The key when the browser refuses storage (some private modes): kept for this page only. */
let keptKey: string | undefined;

function storeSignIn(key: string | undefined, me?: Me): void {
  keptKey = key;
  try {
    if (key === undefined) localStorage.removeItem(COOKIE_KEY_STORAGE);
    else localStorage.setItem(COOKIE_KEY_STORAGE, key);
    if (me === undefined) localStorage.removeItem(IDENTITY_STORAGE);
    else localStorage.setItem(IDENTITY_STORAGE, `${me.name}:${me.role}`);
  } catch {
    // No storage: the next load of the page signs in again.
  }
}

function cookieKey(): string | undefined {
  try {
    return localStorage.getItem(COOKIE_KEY_STORAGE) ?? keptKey;
  } catch {
    return keptKey;
  }
}

/**
 * Whether a `storage` event is a sign-out in another tab, or a sign-in there as someone else.
 * (A sign-in as the same identity keeps the key and changes neither: this tab goes on.)
 */
export const isCookieKeyStorage = (key: string | null): boolean =>
  key === COOKIE_KEY_STORAGE || key === IDENTITY_STORAGE || key === null;

/** How this page reaches its gateway: the same origin, with the sign-in cookie and its key. */
export function gatewayTarget(): GatewayTarget {
  return { url: location.origin, cookieKey: cookieKey() };
}

/**
 * `POST /v1/login {token}`: the gateway answers with an HttpOnly, SameSite=Strict session cookie
 * and the key that must come with it, which the page keeps in its origin's storage. Browsers
 * send a host's cookies to all its ports, never its storage: another server on the same host
 * name is sent the cookie, and cannot use it.
 */
export async function login(token: string): Promise<Me> {
  return signIn("/v1/login", { token });
}

/**
 * `POST /v1/pair {code, signIn: true}`: this browser becomes the paired device, signed in as
 * `/v1/login` signs in; the device's token never reaches the page.
 */
export async function pairDevice(code: string): Promise<Me> {
  return signIn("/v1/pair", { code, signIn: true });
}

async function signIn(path: "/v1/login" | "/v1/pair", credential: Record<string, unknown>): Promise<Me> {
  const kept = cookieKey();
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    // The key this browser keeps, if any, goes along: the new cookie takes it, and the other tabs,
    // which hold it too, go on with the new cookie instead of having to start over.
    body: JSON.stringify({
      ...credential,
      ...(kept !== undefined && COOKIE_KEY_FORMAT.test(kept) ? { cookieKey: kept } : {}),
    }),
    credentials: "same-origin",
  });
  const body = (await res.json().catch(() => null)) as {
    name?: string;
    role?: Role;
    cookieKey?: string;
    error?: { message?: string };
  } | null;
  if (!res.ok || !body || typeof body.name !== "string" || !body.role || typeof body.cookieKey !== "string") {
    throw new Error(body?.error?.message ?? `sign-in failed (HTTP ${res.status})`);
  }
  const me = { name: body.name, role: body.role };
  storeSignIn(body.cookieKey, me);
  return me;
}

export async function logout(): Promise<void> {
  const key = cookieKey();
  storeSignIn(undefined);
  await fetch("/v1/logout", {
    method: "POST",
    headers: key !== undefined ? { [COOKIE_KEY_HEADER]: key } : {},
    credentials: "same-origin",
  });
}

/** Who the cookie and its key say we are, or null when either is missing or the sign-in expired. */
export async function whoami(): Promise<Me | null> {
  if (cookieKey() === undefined) return null;
  try {
    const me = await new HttpClient(gatewayTarget()).whoami();
    return { name: me.name, role: me.role as Role, ...(me.share !== undefined ? { share: me.share } : {}) };
  } catch (error) {
    if (isSwitchboardError(error, "UNAUTHORIZED")) return null;
    throw error;
  }
}

/** The sign-in page, for a visit without a token in the URL (or with a bad one). */
export function loginScreen(onToken: (token: string) => Promise<void>, initialError?: string): HTMLElement {
  const input = h("input", {
    type: "password",
    name: "token",
    placeholder: "Token",
    autocomplete: "current-password",
    required: true,
    "aria-label": "Token",
  });
  const error = h("p", { class: "form-error", role: "alert" }, initialError ?? "");
  const button = h("button", { class: "btn btn-primary btn-block", type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "login-card" },
    h("div", { class: "brand brand-large" }, h("span", { class: "brand-mark" }, icon("terminal")), "Switchboard"),
    h("h1", null, "Sign in"),
    h(
      "p",
      { class: "muted" },
      "Open the URL ",
      h("code", null, "switchboard serve"),
      " printed, or paste it (or just its token) here.",
    ),
    input,
    error,
    button,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    button.disabled = true;
    error.textContent = "";
    onToken(tokenFromInput(input.value))
      .catch((e: unknown) => {
        error.textContent = errorText(e);
      })
      .finally(() => {
        button.disabled = false;
      });
  });
  queueMicrotask(() => input.focus());
  return h("div", { class: "login-page" }, form);
}
