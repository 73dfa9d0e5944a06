/**
 * The web UI in a real browser (Chromium driven by playwright-core; set-up in ./ui-helpers.ts).
 * Looking never resizes: opening a session on a phone takes no control and changes no PTY size,
 * as the program in the session sees it (`stty size`); "Fit to width" changes the font, not the
 * PTY, even in control.
 */
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { waitFor } from "../helpers/wait-for.js";
import { sleep } from "../helpers/sleep.js";
import { debugView } from "./harness.js";
import { PHONE, createShell, sharedPage, sharedStack, useBrowser, waitForPrompt } from "./ui-helpers.js";
import type { Stack } from "./ui-helpers.js";

useBrowser();
const shared = sharedStack();
/** The phone's page of the tests (see sharedPage). */
const phonePage = sharedPage({ viewport: PHONE, touch: true });

/** Runs `stty size` in the session (over HTTP, as another client would) and returns what it printed ("rows cols"). */
async function sttySize(s: Stack, id: string, mark: string): Promise<string> {
  const res = await s.http.post(`/v1/sessions/${id}/input`, { data: `echo ${mark} $(stty size)\r` });
  expect(res.status, res.text).toBe(200);

  const line = await waitFor(
    async () =>
      new RegExp(`[\\r\\n]${mark} (\\d+ \\d+)`).exec((await s.http.get(`/v1/sessions/${id}/output`)).text)?.[1],
    10_000,
    `the output of ${mark}`,
  );
  // The HTTP caller's lease goes, so that the page finds control free again.
  await s.http.post(`/v1/sessions/${id}/control`, { action: "release" });
  return line;
}

async function resizes(s: Stack, id: string): Promise<number> {
  const { events } = (await s.http.get(`/v1/sessions/${id}/events?since=0`)).json as { events: { type: string }[] };
  return events.filter((e) => e.type === "resize").length;
}

async function settled(page: Page): Promise<void> {
  // Long enough for a fit (debounced) and a resize round trip to have happened, if any would.
  await sleep(1_000);
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(resolve)));
}

describe("web UI: looking never resizes", () => {
  it("opening a session on a phone takes no control and leaves stty size as it was", async () => {
    const s = shared();
    const id = await createShell(s.http, "look-only", { cols: 100, rows: 28 });
    await waitForPrompt(s.http, id);
    expect(await sttySize(s, id, "before")).toBe("28 100");
    const resizesBefore = await resizes(s, id);

    const phone = await phonePage(s, { hash: `#/s/${id}`, take: false });
    await settled(phone);
    expect((await debugView(phone))?.control).toBe("free");
    expect(await sttySize(s, id, "after")).toBe("28 100");
    expect(await resizes(s, id)).toBe(resizesBefore);
    // The phone shows the PTY at its own size, and offers control without taking it.
    expect((await debugView(phone))?.cols).toBe(100);
    expect(await phone.isVisible("[data-test=take-control]")).toBe(true);
  });

  it("Fit to width scales the font and keeps the PTY's size, also once the phone takes control", async () => {
    const s = shared();
    const id = await createShell(s.http, "look-fit", { cols: 100, rows: 28 });
    await waitForPrompt(s.http, id);
    const phone = await phonePage(s, { hash: `#/s/${id}`, take: false });
    await phone.click("[data-test=terminal-tools]");
    await phone.click("[data-test=tool-fit]");
    await waitFor(
      async () => Number(await phone.getAttribute("[data-fit-width=true]", "data-fit-font")) > 0,
      5_000,
      "the fitted font",
    );
    await phone.click("[data-test=take-control]");
    await phone.waitForSelector(".terminal-view[data-control=mine]");
    await settled(phone);
    expect((await debugView(phone))?.cols).toBe(100);
    const session = (await s.http.get(`/v1/sessions/${id}`)).json as { cols: number; rows: number };
    expect({ cols: session.cols, rows: session.rows }).toEqual({ cols: 100, rows: 28 });
    // Typed from the phone, in control: the program sees the size it had.
    await phone.keyboard.type("echo typed $(stty size)\r");
    await waitFor(
      async () => /[\r\n]typed 28 100/.test((await s.http.get(`/v1/sessions/${id}/output`)).text),
      10_000,
      "stty size typed on the phone",
    );
  });
});
