/**
 * The web UI in a real browser (Chromium driven by playwright-core; set-up in ./ui-helpers.ts).
 * Sharing a session: the owner's "Share" makes a link; a teammate opens it on a phone and sees
 * that session only, read-only, while the owner's header shows them watching; revoking the link
 * tells the phone so.
 */
import { describe, expect, it } from "vitest";
import { PHONE, SCREENSHOTS, stack, useBrowser } from "./ui-helpers.js";

/** One browser, two pages and a revocation: more than the default 30 s when the machine is loaded. */
const SHARE_TEST_MS = 60_000;

useBrowser();

describe("web UI: share links", () => {
  it(
    "a teammate watches a shared session on a phone until the owner revokes the link",
    async () => {
      const { page, blank, http } = await stack();
      // `cat` on a PTY: up at once, and it echoes what it is sent.
      const cat = async (name: string) =>
        (await http.post("/v1/sessions", { command: ["cat"], pty: true, name })).json.id as string;
      const id = await cat("demo-shell");
      await cat("not-shared");
      await http.post(`/v1/sessions/${id}/input`, { data: "shared-42\r" });

      const owner = await page({ hash: `#/s/${id}` });
      await owner.click("[data-test=share]");
      await owner.fill("dialog[open] input[name=name]", "alex");
      await owner.click("[data-test=share-create]");
      const url = (await owner.textContent("[data-test=share-url]"))!;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#token=[A-Za-z0-9_-]{43}$/);
      await owner.locator("[data-test=share-list] li.device", { hasText: "alex" }).waitFor();
      await owner.screenshot({ path: `${SCREENSHOTS}share-dialog.png` });
      await owner.click("dialog[open] button:has-text('Close')");

      // The teammate's phone: the session only, read-only, and the secret out of the address bar.
      const phone = await blank(new URL(url).pathname + new URL(url).hash, PHONE, true);
      await phone.waitForSelector("[data-test=share-banner]");
      expect(await phone.textContent("[data-test=share-banner]")).toContain("read-only");
      await phone.waitForFunction(() => document.querySelector(".xterm-rows")?.textContent?.includes("shared-42"));
      expect(await phone.evaluate(() => location.hash)).toBe(`#/s/${id}`);
      expect(await phone.isVisible(".sidebar")).toBe(false);
      expect(await phone.$("[data-test=share]")).toBeNull();
      expect(await phone.$("[data-test=stop]")).toBeNull();
      // Going elsewhere brings it back to its session.
      await phone.evaluate(() => (location.hash = "#/"));
      await phone.waitForFunction((sid) => location.hash === `#/s/${sid}`, id);
      await phone.screenshot({ path: `${SCREENSHOTS}share-phone.png` });

      // The owner's header shows who watches now (the list is polled).
      await owner.waitForFunction(
        () => document.querySelector("[data-test=presence]")?.getAttribute("title")?.includes("share:alex"),
        undefined,
        { timeout: 15_000 },
      );
      expect(await owner.textContent("[data-test=presence]")).toMatch(/\d+ watching/);

      // Revoked from the dialog: the phone says so, and has nothing left to show.
      await owner.click("[data-test=share]");
      await owner
        .locator("[data-test=share-list] li.device", { hasText: "alex" })
        .locator("[data-test=share-revoke]")
        .click();
      await owner.locator("[data-test=share-list] li", { hasText: "No live links." }).waitFor();
      const ended = await phone.waitForSelector("[data-test=share-ended]", { timeout: 10_000 });
      expect(await ended.textContent()).toContain("The owner revoked this share link");
      expect(await phone.$(".xterm-rows")).toBeNull();
    },
    SHARE_TEST_MS,
  );
});
