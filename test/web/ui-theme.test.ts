/**
 * The web UI in a real browser (Chromium driven by playwright-core; set-up in ./ui-helpers.ts).
 * The light theme follows the system's setting (prefers-color-scheme), live, terminal included;
 * on a phone the header is one line within the screen.
 */
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { waitFor } from "../helpers/wait-for.js";
import { PHONE, SCREENSHOTS, createShell, sharedStack, useBrowser, waitForPrompt } from "./ui-helpers.js";

useBrowser();
const shared = sharedStack();

/** The page's and the terminal's background colours, as computed. */
function colours(page: Page): Promise<{ page: string; terminal: string }> {
  return page.evaluate(() => ({
    page: getComputedStyle(document.body).backgroundColor,
    terminal: getComputedStyle(document.querySelector(".xterm-viewport")!).backgroundColor,
  }));
}

describe("web UI: themes and the phone header", () => {
  it("turns light and back with the system's setting, the terminal too", async () => {
    const s = shared();
    const id = await createShell(s.http, "themed");
    await waitForPrompt(s.http, id);
    const page = await s.page({ viewport: PHONE, touch: true, hash: `#/s/${id}`, take: false });
    await page.emulateMedia({ colorScheme: "dark" });
    expect(await colours(page)).toEqual({ page: "rgb(10, 12, 17)", terminal: "rgb(12, 15, 21)" });

    await page.emulateMedia({ colorScheme: "light" });
    const light = await waitFor(
      async () => {
        const now = await colours(page);
        return now.terminal === "rgb(251, 251, 253)" ? now : undefined;
      },
      5_000,
      "the light terminal",
    );
    expect(light).toEqual({ page: "rgb(238, 240, 244)", terminal: "rgb(251, 251, 253)" });
    await page.screenshot({ path: `${SCREENSHOTS}phone-light.png` });

    await page.emulateMedia({ colorScheme: "dark" });
    await waitFor(async () => (await colours(page)).terminal === "rgb(12, 15, 21)", 5_000, "the dark terminal");
  });

  it("keeps the phone header on one line within the screen, for a paired phone and an admin", async () => {
    const s = shared();
    const code = (await s.http.post("/v1/devices/pairings", { name: "header-phone" })).json.code as string;
    const phone = await s.blank(`/#pair=${code}`, PHONE, true);
    await phone.waitForSelector("[data-test=whoami]");
    for (const page of [phone, await s.page({ viewport: PHONE, touch: true })]) await expectOneLine(page);
  });
});

/** The header's items in one row, all within the phone's width, and nothing past the screen's edge. */
async function expectOneLine(page: Page): Promise<void> {
  const layout = await page.evaluate(() => ({
    width: document.documentElement.scrollWidth,
    items: [...document.querySelector(".topbar")!.children]
      .map((c) => c.getBoundingClientRect())
      .filter((r) => r.width > 0)
      .map((r) => ({ left: r.left, right: r.right, middle: Math.round(r.top + r.height / 2) })),
  }));
  expect(layout.width).toBeLessThanOrEqual(PHONE.width);
  for (const item of layout.items) {
    expect(item.left).toBeGreaterThanOrEqual(0);
    expect(item.right).toBeLessThanOrEqual(PHONE.width);
  }
  expect(new Set(layout.items.map((i) => i.middle)).size).toBe(1);
}
