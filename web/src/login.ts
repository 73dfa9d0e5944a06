import type { HttpClient } from "../../src/client/index.js";
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

/** `POST /v1/login {token}`: the gateway answers with an HttpOnly, SameSite=Strict session cookie. */
export async function login(token: string): Promise<Me> {
  const res = await fetch("/v1/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token }),
    credentials: "same-origin",
  });
  const body = (await res.json().catch(() => null)) as {
    name?: string;
    role?: Role;
    error?: { message?: string };
  } | null;
  if (!res.ok || !body || typeof body.name !== "string" || !body.role) {
    throw new Error(body?.error?.message ?? `sign-in failed (HTTP ${res.status})`);
  }
  return { name: body.name, role: body.role };
}

export async function logout(): Promise<void> {
  await fetch("/v1/logout", { method: "POST", credentials: "same-origin" });
}

/** Who the cookie says we are, or null when it is missing or expired. */
export async function whoami(http: HttpClient): Promise<Me | null> {
  try {
    const me = await http.whoami();
    return { name: me.name, role: me.role as Role };
  } catch (error) {
    if ((error as { code?: unknown }).code === "UNAUTHORIZED") return null;
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
