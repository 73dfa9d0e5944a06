/**
 * The web UI in a real browser (Chromium driven by playwright-core; set-up in ./ui-helpers.ts).
 * Pairing a phone: "Pair a device" on the desktop shows a QR code of a one-time URL; the phone
 * that opens it is signed in as that device; revoking it signs the phone out at once.
 */
import QRCode from "qrcode";
import { describe, expect, it } from "vitest";
import { PHONE, SCREENSHOTS, createShell, open, stack, useBrowser, waitForPrompt } from "./ui-helpers.js";

useBrowser();

describe("web UI: pairing a device", () => {
  it("pairs a phone from the desktop page's QR code, and revoking it signs the phone out", async () => {
    const { page, blank, http } = await stack();
    const desktop = await page();
    await desktop.click("[data-test=nav-pair]");
    // A loopback-only gateway: nothing offered that a phone cannot open, and what to do instead.
    const warning = await desktop.waitForSelector("[data-test=pair-loopback]");
    expect(await warning.textContent()).toMatch(
      /A phone cannot reach this gateway.*--host 0\.0\.0\.0.*--tls-cert.*tailscale serve/,
    );
    expect(await desktop.$$("dialog[open] [data-test=pair-base] option")).toHaveLength(0);
    await desktop.fill("dialog[open] input[name=name]", "my phone");
    await desktop.selectOption("dialog[open] select[name=role]", "viewer");
    await desktop.click("[data-test=pair-create]");
    const url = (await desktop.textContent("[data-test=pair-url]"))!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#pair=[A-Za-z0-9_-]{22}$/);
    // The picture is the QR code of that URL.
    const src = (await desktop.getAttribute("[data-test=pair-qr]", "src"))!;
    const svg = decodeURIComponent(src.slice(src.indexOf(",") + 1));
    expect(svg).toBe(await QRCode.toString(url, { type: "svg", errorCorrectionLevel: "M", margin: 2 }));
    const shown = await desktop.$eval("[data-test=pair-qr]", (img) => (img as HTMLImageElement).naturalWidth);
    expect(shown).toBeGreaterThan(0);
    await desktop.screenshot({ path: `${SCREENSHOTS}pair-device.png` });

    const phone = await blank(new URL(url).pathname + new URL(url).hash, PHONE, true);
    await phone.waitForSelector("[data-test=whoami]");
    expect(await phone.textContent("[data-test=whoami] .who-name")).toBe("device:my phone");
    expect(await phone.textContent("[data-test=whoami] .role")).toBe("viewer");
    // The code is out of the address bar, and spent.
    expect(await phone.evaluate(() => location.hash)).toBe("");
    expect((await http.call("POST", "/v1/pair", { code: new URL(url).hash.slice(6) })).json.error.code).toBe(
      "PAIRING_CODE_INVALID",
    );

    // Reopened, the dialog lists the phone; Revoke signs it out there at once.
    await desktop.click("dialog[open] button:has-text('Close')");
    await desktop.click("[data-test=nav-pair]");
    const row = desktop.locator("[data-test=device-list] li.device", { hasText: "my phone" });
    await row.waitFor();
    await row.locator("[data-test=device-revoke]").click();
    await desktop.locator("[data-test=device-list] li", { hasText: "None yet." }).waitFor();
    await phone.waitForSelector(".login-card", { timeout: 15_000 });
    expect(await phone.textContent(".login-card .form-error")).toContain("This device was unpaired by an admin");
  });

  it("offers the address a phone reaches, secure first, and makes the link with it", async () => {
    const s = await stack({ allowedHosts: ["switchboard.example.com"] });
    const desktop = await s.page();
    await desktop.click("[data-test=nav-pair]");
    await desktop.waitForSelector("dialog[open] [data-test=pair-base] option", { state: "attached" });
    const offered = await desktop.$$eval("dialog[open] [data-test=pair-base] option", (os) =>
      os.map((o) => (o as HTMLOptionElement).value),
    );
    expect(offered).toEqual(["https://switchboard.example.com"]);
    expect(await desktop.$("[data-test=pair-loopback]")).toBeNull();
    expect(await desktop.textContent("[data-test=pair-base-hint]")).toContain("notifications work");
    await desktop.click("[data-test=pair-create]");
    expect(await desktop.textContent("[data-test=pair-url]")).toMatch(
      /^https:\/\/switchboard\.example\.com\/#pair=[A-Za-z0-9_-]{22}$/,
    );
    await desktop.screenshot({ path: `${SCREENSHOTS}pair-addresses.png` });
  });

  it("says so on the phone when the pairing link was already used", async () => {
    const s = await stack();
    const code = (await s.http.post("/v1/devices/pairings", { name: "tablet" })).json.code as string;
    expect((await s.http.call("POST", "/v1/pair", { code })).status).toBe(200);
    const phone = await s.blank(`/#pair=${code}`, PHONE, true);
    await phone.waitForSelector(".login-card");
    expect(await phone.textContent(".login-card")).toContain("That pairing link did not work");
  });

  it("names the phone in the desktop's control bar when the phone is in control", async () => {
    const s = await stack();
    const id = await createShell(s.http, "both-screens");
    await waitForPrompt(s.http, id);
    const code = (await s.http.post("/v1/devices/pairings", { name: "phone" })).json.code as string;
    const phone = await s.blank(`/#pair=${code}`, PHONE, true);
    await phone.waitForSelector("[data-test=whoami]");
    await open(phone, `#/s/${id}`);
    await phone.waitForSelector(".terminal-view[data-control=mine]");
    const desktop = await s.page({ hash: `#/s/${id}`, take: false });
    await desktop.waitForSelector(".terminal-view[data-control=other]");
    expect(await desktop.textContent(".control-bar")).toContain("your phone is in control in the web UI");
  });
});
