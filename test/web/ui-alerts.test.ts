/**
 * The web UI in a real browser (Chromium driven by playwright-core; set-up in ./ui-helpers.ts).
 * Alerts: browser notifications, the count in the title and the favicon, settings per user.
 */
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { waitFor } from "../helpers/wait-for.js";
import { createAgent, stack, useBrowser } from "./ui-helpers.js";

useBrowser();

interface Recorded {
  notifications: { title: string; body: string; tag: string }[];
  permissionAsked: number;
}

/** Wraps `window.Notification` before the page's own script runs, recording what it is asked. */
function recordNotifications(): void {
  const recorded: Recorded = { notifications: [], permissionAsked: 0 };
  (window as unknown as { recorded: Recorded }).recorded = recorded;
  const Real = window.Notification;
  class Recording extends Real {
    constructor(title: string, options?: NotificationOptions) {
      super(title, options);
      recorded.notifications.push({ title, body: options?.body ?? "", tag: options?.tag ?? "" });
    }
    static override requestPermission(callback?: NotificationPermissionCallback): Promise<NotificationPermission> {
      recorded.permissionAsked++;
      return Real.requestPermission(callback);
    }
  }
  window.Notification = Recording as typeof Notification;
}

const recorded = (page: Page): Promise<Recorded> =>
  page.evaluate(() => (window as unknown as { recorded: Recorded }).recorded);

describe("web UI alerts", () => {
  it("notifies and counts in the title and favicon when an agent asks for permission; the choice is kept per user", async () => {
    const s = await stack();
    const id = await createAgent(s.http, "asker");
    const page = await s.page({ init: recordNotifications, permissions: ["notifications"] });
    await page.waitForSelector(`.main .row[data-session="${id}"]`);
    const storageKey = await page.evaluate(() =>
      Object.keys(localStorage).find((k) => k.startsWith("switchboard.alerts.")),
    );
    // Nothing is asked, and nothing chosen, on load.
    expect(storageKey).toBeUndefined();
    expect((await recorded(page)).permissionAsked).toBe(0);
    expect(await page.title()).toBe("Switchboard");

    await page.click("[data-test=alerts] summary");
    await page.check("[data-test=alerts-notify]");
    await waitFor(
      async () =>
        (await page.evaluate(() => localStorage.getItem("switchboard.alerts.admin"))) ===
        JSON.stringify({ notify: true, sound: false }),
    );

    await s.http.post(`/v1/sessions/${id}/prompt`, { text: "/permission edit the file" });
    await page.waitForFunction(() => document.title === "(1) Switchboard", null, { timeout: 10_000 });
    await waitFor(async () => {
      expect((await recorded(page)).notifications).toEqual([
        {
          title: "asker needs an answer",
          body: "The agent asks for permission and waits until someone answers.",
          tag: `${id}:permission`,
        },
      ]);
      return true;
    }, 5_000);
    const favicon = await page.getAttribute("link[rel=icon]", "href");
    expect(decodeURIComponent(favicon!)).toContain(">1</text>");
    // Permission was granted to the context: the click did not have to ask.
    expect((await recorded(page)).permissionAsked).toBe(0);

    // Answered (as "Reject"), the count goes; the refusal is not shown as a success.
    const events = await s.http.get(`/v1/sessions/${id}/events?types=permission.request`);
    const requestId = events.json.events[0].requestId as string;
    await s.http.post(`/v1/sessions/${id}/permission`, { requestId, optionId: "reject" });
    await page.waitForFunction(() => document.title === "Switchboard", null, { timeout: 10_000 });
    expect(await page.getAttribute("link[rel=icon]", "href")).toBe("favicon.svg");
    // The run finishing is news too: "done", with the last line it wrote.
    await waitFor(async () => {
      expect((await recorded(page)).notifications.map((n) => n.title)).toEqual([
        "asker needs an answer",
        "asker is done",
      ]);
      return true;
    }, 5_000);
    expect((await recorded(page)).notifications[1]!.body).toBe("Rejected. edit the file");

    await page.click(`.main .row[data-session="${id}"]`);
    await page.waitForSelector(".permission[data-resolved=true]");
    expect(await page.getAttribute(".permission[data-resolved=true]", "data-outcome")).toBe("rejected");
    const color = await page.$eval("[data-test=permission-outcome]", (el) => getComputedStyle(el).color);
    // The dark theme's --red (styles.css).
    expect(color).toBe("rgb(242, 90, 118)");

    // Reloaded, the choice is still there; another user's is their own.
    await page.reload();
    await page.waitForSelector("[data-test=whoami]");
    expect(await page.isChecked("[data-test=alerts-notify]")).toBe(true);
    expect(await page.isChecked("[data-test=alerts-sound]")).toBe(false);
    await page.evaluate(() => localStorage.setItem("switchboard.alerts.someone-else", '{"notify":false,"sound":true}'));
    await page.reload();
    await page.waitForSelector("[data-test=whoami]");
    expect(await page.isChecked("[data-test=alerts-notify]")).toBe(true);
    expect(await page.isChecked("[data-test=alerts-sound]")).toBe(false);
  });

  it("notifies when a session exits, and asks the browser's permission only from the click", async () => {
    const s = await stack();
    const res = await s.http.post("/v1/sessions", {
      command: ["sh", "-c", "echo bye; sleep 300"],
      name: "short-lived",
    });
    const id = res.json.id as string;
    const page = await s.page({ init: recordNotifications });
    const context = page.context();
    await page.waitForSelector(`.main .row[data-session="${id}"]`);
    expect((await recorded(page)).permissionAsked).toBe(0);
    // Not granted: the click asks, and the box stays off until the browser says yes (headless
    // Chromium never answers its prompt).
    await page.click("[data-test=alerts] summary");
    await page.click("[data-test=alerts-notify]");
    await waitFor(async () => (await recorded(page)).permissionAsked === 1);
    expect(await page.isChecked("[data-test=alerts-notify]")).toBe(false);
    expect(await page.textContent(".alerts-status")).toBe("Allow notifications in the browser's prompt.");

    await context.grantPermissions(["notifications"], { origin: s.proxy.url });
    await page.click("[data-test=alerts-notify]");
    await waitFor(async () => (await page.isChecked("[data-test=alerts-notify]")) === true);
    expect(await page.evaluate(() => localStorage.getItem("switchboard.alerts.admin"))).toBe(
      JSON.stringify({ notify: true, sound: false }),
    );
    expect((await s.http.del(`/v1/sessions/${id}`)).status).toBe(200);
    await waitFor(async () => (await s.http.get(`/v1/sessions/${id}`)).json.state === "exited", 10_000, "the exit");
    await waitFor(async () => {
      expect((await recorded(page)).notifications).toEqual([
        { title: "short-lived: Killed (SIGTERM)", body: "The session ended.", tag: `${id}:exited` },
      ]);
      return true;
    }, 5_000);
  });
});
