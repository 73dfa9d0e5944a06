/**
 * The web UI in a real browser (Chromium driven by playwright-core; set-up in ./ui-helpers.ts).
 * The installable app: the manifest and icons, the service worker that keeps the app shell for
 * offline starts, and never a byte of session data in its cache.
 */
import { describe, expect, it } from "vitest";
import { PHONE, createShell, sharedStack, useBrowser, waitForPrompt } from "./ui-helpers.js";

useBrowser();
const shared = sharedStack();

/** The width and height a PNG's IHDR chunk declares. */
function pngSize(bytes: Buffer): { width: number; height: number } {
  expect(bytes.subarray(1, 4).toString("latin1")).toBe("PNG");
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

describe("web UI: the installable app", () => {
  it("serves a manifest whose icons exist at their declared sizes, and meets Chromium's install criteria", async () => {
    const s = shared();
    const res = await fetch(`${s.proxy.url}/manifest.webmanifest`);
    expect(res.headers.get("content-type")).toBe("application/manifest+json");
    const manifest = (await res.json()) as {
      start_url: string;
      display: string;
      icons: { src: string; sizes: string }[];
    };
    expect(manifest).toMatchObject({ start_url: "/", display: "standalone" });
    for (const icon of manifest.icons) {
      const [width, height] = icon.sizes.split("x").map(Number);
      const bytes = Buffer.from(await (await fetch(`${s.proxy.url}/${icon.src}`)).arrayBuffer());
      expect(pngSize(bytes)).toEqual({ width, height });
    }

    const page = await s.page({ viewport: PHONE, touch: true, serviceWorker: true });
    await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
    const cdp = await page.context().newCDPSession(page);
    const { installabilityErrors } = (await cdp.send("Page.getInstallabilityErrors")) as {
      installabilityErrors: { errorId: string }[];
    };
    // A test's browser context is an incognito one, which Chromium never installs from; every
    // criterion of the app itself (manifest, icons, service worker, start URL) is met.
    expect(installabilityErrors.filter((e) => e.errorId !== "in-incognito")).toEqual([]);
  });

  it("opens offline from the cached shell, and never caches session data", async () => {
    const s = shared();
    const id = await createShell(s.http, "not-in-any-cache");
    await waitForPrompt(s.http, id);
    const page = await s.page({ viewport: PHONE, touch: true, hash: `#/s/${id}`, take: false, serviceWorker: true });
    await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
    // Controlled from the next load on; browse a session through it.
    await page.reload();
    await page.waitForSelector(".view[data-restored=true]");
    expect(await page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
    const cached = await page.evaluate(async () => {
      const urls: string[] = [];
      for (const name of await caches.keys())
        for (const request of await (await caches.open(name)).keys()) urls.push(new URL(request.url).pathname);
      return urls;
    });
    expect(cached).toContain("/");
    expect(cached.some((path) => /^\/app-[A-Z0-9]+\.js$/.test(path))).toBe(true);
    expect(cached.filter((path) => path.startsWith("/v1/") || path.startsWith("/ws/"))).toEqual([]);

    // The network gone, the app still opens: its shell comes from the cache and says what is wrong.
    await page.context().setOffline(true);
    await page.reload();
    await page.waitForSelector("text=Cannot reach the gateway", { timeout: 15_000 });
    expect(await page.title()).toBe("Switchboard");
    await page.context().setOffline(false);
  });
});
