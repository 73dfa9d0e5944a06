/**
 * The web UI in a real browser (Chromium driven by playwright-core; set-up in ./ui-helpers.ts).
 * A phone as a first-class client: paired from the desktop page's QR code, installable, and
 * notified by Web Push. The browser's push service cannot run here, so the phone's
 * `pushManager.subscribe` answers a subscription at the test's own push service
 * (https://127.0.0.1); what the gateway sends there is decrypted and delivered to the service
 * worker through the DevTools protocol (`ServiceWorker.deliverPushMessage`).
 */
import QRCode from "qrcode";
import { describe, expect, it, onTestFinished } from "vitest";
import { SCREENSHOTS, PHONE, SHORT_REQUEST_TIMEOUT, browser, createAgent, stack, useBrowser } from "./ui-helpers.js";
import { PushEndpoint } from "../helpers/push-endpoint.js";
import { waitFor } from "../helpers/wait-for.js";

useBrowser();

/** An event of the DevTools protocol's BackgroundService domain (what Application › Push Messaging shows). */
interface BackgroundServiceEvent {
  service: string;
  eventName: string;
  eventMetadata: { key: string; value: string }[];
}

describe("web UI: notifications on a phone", () => {
  it("pairs a phone from the desktop's QR, installs, and a pushed permission request's Allow answers it", async () => {
    let publicKey = "";
    const push = await PushEndpoint.start(() => publicKey);
    onTestFinished(() => push.close());
    const s = await stack(undefined, undefined, { pushAgent: push.agent, pushServiceHosts: ["127.0.0.1"] });
    publicKey = (await s.http.get("/v1/push/key")).json.publicKey as string;

    // The desktop pairs a phone: the QR code's URL, as the page shows it.
    const desktop = await s.page();
    await desktop.click("[data-test=nav-pair]");
    await desktop.fill("dialog[open] input[name=name]", "phone");
    await desktop.click("[data-test=pair-create]");
    const url = new URL((await desktop.textContent("[data-test=pair-url]"))!);
    const qr = (await desktop.getAttribute("[data-test=pair-qr]", "src"))!;
    expect(decodeURIComponent(qr.slice(qr.indexOf(",") + 1))).toBe(
      await QRCode.toString(url.href, { type: "svg", errorCorrectionLevel: "M", margin: 2 }),
    );

    // The phone: its browser's push service is the test's (a subscription at its endpoint).
    const context = await browser.newContext({ viewport: PHONE, hasTouch: true, isMobile: true, colorScheme: "dark" });
    onTestFinished(() => context.close());
    await context.grantPermissions(["notifications"], { origin: s.proxy.url });
    const subscription = push.subscription("/push/phone");
    await context.addInitScript((json: { endpoint: string; keys: { p256dh: string; auth: string } }) => {
      let subscribed: PushSubscription | null = null;
      const fake = {
        endpoint: json.endpoint,
        toJSON: () => ({ ...json, expirationTime: null }),
        unsubscribe: async () => ((subscribed = null), true),
      } as unknown as PushSubscription;
      PushManager.prototype.getSubscription = async () => subscribed;
      PushManager.prototype.subscribe = async () => (subscribed = fake);
    }, subscription);
    const phone = await context.newPage();
    phone.on("pageerror", (error) => console.error("page error:", error));
    await phone.goto(`${s.proxy.url}${url.pathname}${url.hash}`);
    await phone.waitForSelector("[data-test=whoami]");
    expect(await phone.textContent("[data-test=whoami] .who-name")).toBe("device:phone");

    // Installable: the manifest and the service worker meet Chromium's criteria.
    await phone.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
    const cdp = await context.newCDPSession(phone);
    const { installabilityErrors } = (await cdp.send("Page.getInstallabilityErrors")) as {
      installabilityErrors: { errorId: string }[];
    };
    // A test's context is incognito, which Chromium never installs from: every other criterion holds.
    expect(installabilityErrors.filter((e) => e.errorId !== "in-incognito")).toEqual([]);

    // Alerts → "On this device": the subscription reaches the gateway as the phone's.
    await phone.click("[data-test=alerts] summary");
    // The header is one line within the screen, and the panel on the screen, whole.
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    const box = (await phone.locator(".alerts-panel").boundingBox())!;
    expect(box.x).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width).toBeLessThanOrEqual(PHONE.width);
    await phone.click("[data-test=alerts-push]");
    await phone.waitForSelector("[data-test=alerts-push]:checked:enabled");
    expect(await phone.textContent(".alerts-status")).toContain("notified with the page closed");
    await phone.screenshot({ path: `${SCREENSHOTS}phone-alerts.png` });
    // "Send a test notification": one push, to this phone's subscription.
    await phone.click("[data-test=alerts-push-test]");
    const [tested] = await push.waitFor(1, 15_000);
    expect(tested!.path).toBe("/push/phone");
    expect(tested!.payload).toMatchObject({ reason: "test", sessionId: "", title: "Switchboard" });
    await phone.locator(".toast", { hasText: "Test notification sent" }).waitFor();
    await phone.click("[data-test=alerts] summary");

    // A real permission request of the echo agent: the gateway pushes it, encrypted, to the phone.
    const id = await createAgent(s.http, "deploy-bot");
    await s.http.post(`/v1/sessions/${id}/prompt`, { text: "/permission deploy to production" });
    const [, message] = await push.waitFor(2, 15_000);
    expect(message!.path).toBe("/push/phone");
    expect(message!.payload).toMatchObject({
      reason: "permission",
      sessionId: id,
      title: "deploy-bot needs an answer",
    });

    // Delivered to the phone's service worker, it shows a notification with Allow and Reject.
    // Chromium's record of the push and notification events says what became of the delivery
    // (deliverPushMessage answers before it is dispatched): a failure prints it.
    const registrations: { registrationId: string; scopeURL: string }[] = [];
    cdp.on("ServiceWorker.workerRegistrationUpdated", (e: { registrations: typeof registrations }) =>
      registrations.push(...e.registrations),
    );
    const workerLog: BackgroundServiceEvent[] = [];
    cdp.on(
      "BackgroundService.backgroundServiceEventReceived",
      (e: { backgroundServiceEvent: BackgroundServiceEvent }) => workerLog.push(e.backgroundServiceEvent),
    );
    for (const service of ["pushMessaging", "notifications"] as const) {
      await cdp.send("BackgroundService.startObserving", { service });
      await cdp.send("BackgroundService.setRecording", { service, shouldRecord: true });
    }
    await cdp.send("ServiceWorker.enable");
    const registration = await waitFor(() => registrations.find((r) => r.scopeURL === `${s.proxy.url}/`), 10_000);
    await cdp.send("ServiceWorker.deliverPushMessage", {
      origin: s.proxy.url,
      registrationId: registration.registrationId,
      data: JSON.stringify(message!.payload),
    });
    const completed = await waitFor(() => {
      const event = workerLog.find((e) => e.eventName === "Push event completed");
      if (event === undefined)
        throw new Error(`the push event has not completed; Chromium's record: ${JSON.stringify(workerLog)}`);
      return event;
    }, 30_000);
    expect(completed.eventMetadata, JSON.stringify(workerLog)).toContainEqual({ key: "Status", value: "Success" });
    expect(workerLog.map((e) => e.eventName)).toContain("Notification displayed");
    const shown = await waitFor(
      () =>
        phone.evaluate(async () => {
          const notifications = await (await navigator.serviceWorker.ready).getNotifications();
          return notifications.map((n) => ({
            title: n.title,
            body: n.body,
            tag: n.tag,
            actions: (n as Notification & { actions: unknown }).actions,
          }))[0];
        }),
      10_000,
      "the notification",
    );
    expect(shown).toEqual({
      title: "deploy-bot needs an answer",
      body: message!.payload["body"],
      tag: `${id}:permission`,
      actions: [
        expect.objectContaining({ action: "allow", title: "Allow" }),
        expect.objectContaining({ action: "reject", title: "Reject" }),
      ],
    });

    // Allow, as the worker's click handler gets it (headless Chromium has no notification to click).
    const worker = context.serviceWorkers()[0] ?? (await context.waitForEvent("serviceworker"));
    await worker.evaluate(async () => {
      const scope = self as unknown as {
        registration: ServiceWorkerRegistration;
        handleNotificationClick(n: Notification, action: string): Promise<void>;
      };
      const [notification] = await scope.registration.getNotifications();
      await scope.handleNotificationClick(notification!, "allow");
    });
    const resolved = await waitFor(
      async () =>
        ((await s.http.get(`/v1/sessions/${id}/events`)).json.events as any[]).find(
          (e) => e.type === "permission.resolved",
        ),
      10_000,
      "the answer",
    );
    expect(resolved).toMatchObject({ outcome: "selected", optionId: "allow", by: { name: "device:phone" } });
  }, 90_000);

  it("says no push service answered when subscribing hangs, instead of waiting forever", async () => {
    const s = await stack();
    const page = await s.page({ viewport: PHONE, touch: true, storage: SHORT_REQUEST_TIMEOUT });
    await page.context().grantPermissions(["notifications"], { origin: s.proxy.url });
    // A browser whose push service never answers (Chromium without Google's services).
    await page.context().addInitScript(() => {
      PushManager.prototype.getSubscription = async () => null;
      PushManager.prototype.subscribe = () => new Promise<PushSubscription>(() => undefined);
    });
    await page.reload();
    await page.waitForSelector("[data-test=whoami]");
    await page.click("[data-test=alerts] summary");
    await page.click("[data-test=alerts-push]");
    const toast = page.locator(".toast", { hasText: "No push service answered within 2 s" });
    await toast.waitFor({ timeout: 10_000 });
    await page.waitForSelector("[data-test=alerts-push]:not(:checked):enabled");
    expect(await page.isVisible("[data-test=alerts-push-test]")).toBe(false);
  });
});
