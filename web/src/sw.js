/* global self, caches */
// The web UI's service worker (docs/ui.md, "Installing it as an app"): it keeps the app shell —
// the page, its script and stylesheet, the icons and the manifest — so the installed app opens
// without the network, and it never caches anything else. Session data (/v1/..., WebSockets,
// event streams) always goes to the gateway: a cached answer would show a phone a state that is
// gone. scripts/build-web.mjs replaces SHELL_FILES with the build's file names and CACHE_NAME
// with one per build, so a new build replaces the old shell.
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
