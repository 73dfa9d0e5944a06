/* global self, caches, clients */
// The web UI's service worker (docs/ui.md, "Installing it as an app"): it keeps the app shell —
// the page, its script and stylesheet, the icons and the manifest — so the installed app opens
// without the network, and it never caches anything else. Session data (/v1/..., WebSockets,
// event streams) always goes to the gateway: a cached answer would show a phone a state that is
// gone. scripts/build-web.mjs replaces SHELL_FILES with the build's file names and CACHE_NAME
// with one per build, so a new build replaces the old shell. It also shows the gateway's Web
// Push notifications (docs/ui.md, "Notifications on a phone"); their Allow / Reject buttons answer
// with the notification's one-time action token, the only credential a worker holds.
const CACHE_NAME = "switchboard-shell-BUILD";
const SHELL_FILES = ["/"];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE_NAME)
      .then((cache) => cache.addAll(SHELL_FILES))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n !== CACHE_NAME).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  // The page itself: the network first (a new build, a new sign-in), the cached shell offline.
  if (request.mode === "navigate") {
    event.respondWith(fetch(request).catch(() => caches.match("/")));
    return;
  }
  // The shell's own files only; everything else is not ours to answer.
  if (!SHELL_FILES.includes(url.pathname)) return;
  event.respondWith(caches.match(url.pathname).then((cached) => cached ?? fetch(request)));
});

/** The buttons of a permission notification, as POST /v1/push/answer names them. */
const ACTIONS = [
  { action: "allow", title: "Allow" },
  { action: "reject", title: "Reject" },
];

self.addEventListener("push", (event) => {
  event.waitUntil(showPush(event.data));
});

/** Shows a push message (the gateway's PushPayload); one notification per session and reason. */
async function showPush(data) {
  let payload = null;
  try {
    payload = data ? data.json() : null;
  } catch (error) {
    console.warn("a push message that is not JSON:", error);
  }
  if (!payload || typeof payload.title !== "string" || typeof payload.sessionId !== "string") return;
  const token = typeof payload.token === "string" ? payload.token : undefined;
  await self.registration.showNotification(payload.title, {
    body: typeof payload.body === "string" ? payload.body : "",
    tag: `${payload.sessionId}:${payload.reason}`,
    icon: "/icon-192.png",
    data: { sessionId: payload.sessionId, token },
    // The buttons the gateway issued the token for (a request without an `allow_once` option has no Allow).
    actions: token ? ACTIONS.filter((a) => !Array.isArray(payload.actions) || payload.actions.includes(a.action)) : [],
    // An agent's question waits as a permission request does; it has no buttons (a tap opens the session).
    requireInteraction: payload.reason === "permission" || payload.reason === "elicitation",
  });
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(handleNotificationClick(event.notification, event.action));
});

/**
 * A click on a notification: Allow or Reject answers its permission request through the
 * gateway; the notification itself opens its session. An answer that failed says why in a
 * notification of its own, so the user knows to open the session.
 */
async function handleNotificationClick(notification, action) {
  const { sessionId, token } = notification.data ?? {};
  if (typeof sessionId !== "string") return;
  if ((action === "allow" || action === "reject") && typeof token === "string") {
    const response = await fetch("/v1/push/answer", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token, action }),
    }).catch((error) => ({ ok: false, json: async () => ({ error: { message: String(error) } }) }));
    if (response.ok) return;
    const answer = await response.json().catch(() => ({}));
    await self.registration.showNotification(`${notification.title}: not answered`, {
      body: answer?.error?.message ?? "The gateway did not answer: open the session to answer.",
      tag: `${sessionId}:answer`,
      icon: "/icon-192.png",
      data: { sessionId },
    });
    return;
  }
  // A test notification (POST /v1/push/test) has no session: it opens the sessions list.
  const url = sessionId === "" ? "/#/" : `/#/s/${encodeURIComponent(sessionId)}`;
  const open = await clients.matchAll({ type: "window", includeUncontrolled: true });
  const client = open.find((c) => new URL(c.url).origin === self.location.origin);
  if (client) {
    // navigate() refuses a window this worker does not control yet: it is focused as it is.
    await client.navigate(url).catch((error) => console.warn("could not open the session:", error));
    await client.focus();
  } else await clients.openWindow(url);
}
