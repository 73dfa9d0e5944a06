/**
 * The web UI in a real browser (Chromium driven by playwright-core; set-up in ./ui-helpers.ts).
 * The light theme follows the system's setting (prefers-color-scheme), live, terminal included;
 * on a phone the header is one line within the screen; every text keeps WCAG AA contrast (axe-core).
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { waitFor } from "../helpers/wait-for.js";
import {
  DESKTOP,
  PHONE,
  SCREENSHOTS,
  VIEWER_TOKEN,
  createAgent,
  createShell,
  open,
  sharedStack,
  useBrowser,
  waitForPrompt,
} from "./ui-helpers.js";

useBrowser();
const shared = sharedStack({
  auth: { tokens: [{ name: "vera", token: VIEWER_TOKEN, role: "viewer", sessions: ["*"] }] },
});

/** axe-core's source, injected into each page checked (its color-contrast rule only). */
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/**
 * The text on `page` below WCAG AA contrast (4.5:1, 3:1 for large text), as axe-core's
 * color-contrast rule finds it: one line per element, with its colours and ratio.
 */
async function contrastFailures(page: Page): Promise<string[]> {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    // Colours mid-transition (a theme switch, a hover) are no state anyone reads.
    for (const animation of document.getAnimations())
      if (animation.effect?.getComputedTiming().endTime !== Infinity) animation.finish();
    type Node = { target: string[]; any: { data?: { fgColor: string; bgColor: string; contrastRatio: number } }[] };
    const axe = (
      window as unknown as { axe: { run(c: Document, o: object): Promise<{ violations: { nodes: Node[] }[] }> } }
    ).axe;
    const result = await axe.run(document, {
      runOnly: { type: "rule", values: ["color-contrast"] },
      resultTypes: ["violations"],
    });
    return result.violations.flatMap((v) =>
      v.nodes.map((n) => {
        const d = n.any[0]?.data;
        return `${n.target.join(" ")}: ${d?.fgColor} on ${d?.bgColor} (${d?.contrastRatio})`;
      }),
    );
  });
}

/** The page's and the terminal's background colours, as computed. */
function colours(page: Page): Promise<{ page: string; terminal: string }> {
  return page.evaluate(() => ({
    page: getComputedStyle(document.body).backgroundColor,
    terminal: getComputedStyle(document.querySelector(".xterm-viewport")!).backgroundColor,
  }));
}

describe("web UI: themes and the phone header", () => {
  it(
    "keeps every text at WCAG AA contrast in both themes, on a desktop and a phone",
    { timeout: 120_000 },
    async () => {
      const s = shared();
      const shell = await createShell(s.http, "contrast-shell");
      await createShell(s.http, "contrast-ended", { command: ["false"] });
      const agent = await createAgent(s.http, "contrast-agent");
      await s.http.post(`/v1/sessions/${agent}/prompt`, { text: "an answer in **bold** with `code`" });
      await s.http.post(`/v1/sessions/${agent}/prompt`, { text: "/permission Apply the patch" });
      await waitForPrompt(s.http, shell);
      const failures: string[] = [];
      const check = async (page: Page, what: string) => {
        for (const scheme of ["dark", "light"] as const) {
          await page.emulateMedia({ colorScheme: scheme });
          for (const f of await contrastFailures(page)) failures.push(`${what}, ${scheme}: ${f}`);
        }
      };
      for (const [viewport, name] of [
        [DESKTOP, "desktop"],
        [PHONE, "phone"],
      ] as const) {
        const touch = viewport === PHONE;
        const page = await s.page({ viewport, touch });
        await page.waitForSelector(".row-item", { state: "attached" });
        await check(page, `${name} sessions`);
        await open(page, `#/s/${shell}`);
        await page.waitForSelector(".terminal-view[data-control=mine]");
        await check(page, `${name} terminal in control`);
        await open(page, `#/s/${agent}`);
        await page.waitForSelector(".permission.open");
        await check(page, `${name} agent`);
        const viewer = await s.page({ token: VIEWER_TOKEN, viewport, touch, hash: `#/s/${shell}`, take: false });
        await check(viewer, `${name} terminal read-only`);
        if (!touch) {
          await page.click("[data-test=nav-pair]");
          await page.waitForSelector("[data-test=pair-loopback]");
          await check(page, `${name} pair dialog`);
        }
      }
      expect(failures).toEqual([]);
    },
  );

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
