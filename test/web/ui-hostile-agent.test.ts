/**
 * Agent-supplied text in the web UI, in a real browser: an agent whose every string is hostile
 * (test/agents/fixtures/hostile-agent.mjs: markup that would run script, `javascript:` URLs,
 * 100 kB words) — its mode and model names, a notice, a Markdown answer, a tool call, a plan, a
 * permission request, a form elicitation and url elicitations to `javascript:alert(1)` and to an
 * https page with markup in its path and query. Nothing runs, nothing is injected, the
 * `javascript:` url is not a link, the https one is a link that names its host and opens apart
 * (`noopener noreferrer`), and the page keeps its width on a desk and a phone.
 */
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { DESKTOP, PHONE, stack, useBrowser } from "./ui-helpers.js";

useBrowser();

const HOSTILE_AGENT = fileURLToPath(new URL("../agents/fixtures/hostile-agent.mjs", import.meta.url));
/** A name with markup, within the 200 characters a session name may have. */
const NAME = `<img src=x onerror="window.__pwned=9">"'><b>bold</b>`;

/** What would show that agent text was parsed as HTML or made a link it must not be. */
async function injected(page: Page) {
  return page.evaluate(() => ({
    pwned: (window as unknown as { __pwned?: unknown }).__pwned ?? null,
    handlers: document.querySelectorAll("[onerror], [onload], [onmouseover], [onclick]").length,
    images: document.querySelectorAll("img[src='x'], img[src$='/x']").length,
    inlineScripts: [...document.scripts].filter((s) => s.src === "").length,
    bold: document.querySelectorAll("b").length,
    badLinks: [...document.querySelectorAll("a[href]")]
      .map((a) => (a as HTMLAnchorElement).protocol)
      .filter((p) => p !== "http:" && p !== "https:"),
  }));
}

/** What of the page and its header reaches past the viewport: nothing, when the layout held. */
async function overflow(page: Page) {
  return page.evaluate(() => {
    const head = document.querySelector("header.view-head")!;
    const box = head.getBoundingClientRect();
    // Every control of the header whole on screen: none pushed off its right edge.
    const offscreen = [...head.querySelectorAll("button, select, a")]
      .filter((el) => (el as HTMLElement).offsetParent !== null)
      .filter((el) => {
        const r = el.getBoundingClientRect();
        return r.left < 0 || r.right > window.innerWidth + 0.5;
      })
      .map((el) => el.getAttribute("data-test") ?? el.getAttribute("title") ?? el.tagName);
    return {
      page: Math.max(0, document.documentElement.scrollWidth - window.innerWidth),
      offscreen,
      headTall: box.height > window.innerHeight / 3,
    };
  });
}

describe("hostile agent text in the web UI", () => {
  it("runs nothing, injects nothing, links no javascript: url, and keeps the layout", { timeout: 60_000 }, async () => {
    const s = await stack();
    const created = await s.http.post("/v1/sessions", {
      kind: "agent",
      name: NAME,
      agent: { adapter: "acp", command: [process.execPath, HOSTILE_AGENT] },
    });
    expect(created.status, created.text).toBe(201);
    const id = created.json.id as string;
    const page = await s.page({ hash: `#/s/${id}` });
    const dialogs: string[] = [];
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    expect((await s.http.post(`/v1/sessions/${id}/prompt`, { text: "go" })).status).toBe(202);
    await page.waitForSelector(".elicitation[data-resolved=false] [data-test=elicitation-unsafe-url]");
    await page.waitForSelector(".elicitation[data-resolved=false] [data-test=elicitation-link]");
    await page.waitForSelector(".elicitation[data-resolved=false] form");
    await page.waitForSelector(".permission:not(.elicitation)[data-resolved=false]");
    await page.waitForSelector(".plan-entry");
    await page.waitForSelector("[data-test=run-notice]");
    // Open what is folded, and pass the pointer over the agent's text.
    for (const summary of await page.$$(".run summary")) await summary.click();
    for (const el of await page.$$(".run .perm-title, .run .plan-text, .run .answer")) await el.hover();

    expect(await injected(page)).toEqual({
      pwned: null,
      handlers: 0,
      images: 0,
      inlineScripts: 0,
      bold: 0,
      badLinks: [],
    });
    expect(dialogs).toEqual([]);
    // Shown as text, every bit of it.
    const text = (await page.textContent("body")) ?? "";
    expect(text).toContain('<img src=x onerror="window.__pwned=1">');
    expect(text).toContain(NAME);
    // The javascript: url: no link, the url as text, and no link to it anywhere else.
    const unsafe = ".elicitation[data-resolved=false]:has([data-test=elicitation-unsafe-url])";
    expect(await page.$$(`${unsafe} a`)).toHaveLength(0);
    expect(await page.textContent(`${unsafe} [data-test=elicitation-unsafe-url]`)).toContain("javascript:alert(1)");
    expect(await page.$$eval("a", (as) => as.filter((a) => a.href.includes("alert")).length)).toBe(0);
    // The https one: a link, its host shown apart, opened in a new tab without an opener or referrer.
    const links = await page.$$eval("[data-test=elicitation-link]", (as) =>
      as.map((a) => ({
        origin: (a as HTMLAnchorElement).origin,
        rel: a.getAttribute("rel"),
        target: a.getAttribute("target"),
      })),
    );
    expect(links).toEqual([{ origin: "https://auth.example:8443", rel: "noopener noreferrer", target: "_blank" }]);
    expect(await page.textContent("[data-test=elicitation-host]")).toBe("auth.example:8443");

    // The 100 kB words are there (a mode and a model name, the tool call's title, a plan entry).
    const longest = await page.$$eval("header select option, .run .plan-text", (els) =>
      els.map((e) => e.textContent!.length).filter((n) => n > 100_000),
    );
    expect(longest).toHaveLength(3);
    // The conversation's title and the agent's notice, shown as the text they are.
    expect(await page.textContent("[data-test=agent-title]")).toMatch(/^<img src=x onerror=.*evil$/s);
    const notices = await page.$$eval("[data-test=run-notice]", (els) => els.map((e) => e.textContent!));
    expect(notices.some((n) => n.startsWith("<img src=x onerror="))).toBe(true);
    expect(await overflow(page)).toEqual({ page: 0, offscreen: [], headTall: false });
    await page.setViewportSize(PHONE);
    expect(await overflow(page)).toEqual({ page: 0, offscreen: [], headTall: false });
    await page.setViewportSize(DESKTOP);

    // Accepting the url one ("I've done it") sends the agent accept; nothing opened on the way.
    await page.click(`${unsafe} [data-action=accept]`);
    await page.waitForSelector(".elicitation[data-resolved=true] >> text=Answered by admin");
    expect(await injected(page)).toMatchObject({ pwned: null, handlers: 0, badLinks: [] });
    expect(dialogs).toEqual([]);
  });
});
