/**
 * Devices and pairing: a one-time code made by an admin is exchanged for a device credential
 * (token or browser sign-in) with the role and globs asked for, stored hashed in the data dir;
 * codes are single use, expire, are rate-limited and never logged; unpairing ends the device's
 * connections at once.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { sha256 } from "../../src/server/identity/identity.js";
import { DEVICES_FILE } from "../../src/server/identity/devices.js";
import { PairingCodes } from "../../src/server/identity/pairing-codes.js";
import { AUTH_FAILURES_ALLOWED } from "../../src/server/http/rate-limit.js";
import { createLogger } from "../../src/server/ops/logger.js";
import type { Gateway } from "../../src/server/gateway.js";
import { TEST_TOKEN, api, createSession, testGateway } from "../helpers/gateway.js";
import { sleep } from "../helpers/sleep.js";
import { tempDir } from "../helpers/tmp.js";
import { Mux, WsClient } from "./helpers.js";

async function makeCode(gw: Gateway, body: Record<string, unknown> = {}): Promise<{ code: string; [k: string]: any }> {
  const r = await api(gw.url).post("/v1/devices/pairings", body);
  expect(r.status, r.text).toBe(201);
  return r.json;
}

async function redeem(gw: Gateway, body: Record<string, unknown>) {
  return api(gw.url, "").post("/v1/pair", body);
}

async function pairedToken(gw: Gateway, body: Record<string, unknown> = {}): Promise<string> {
  const { code } = await makeCode(gw, body);
  const r = await redeem(gw, { code });
  expect(r.status, r.text).toBe(200);
  return r.json.token as string;
}

describe("pairing codes", () => {
  it("exchanges a code once for a device credential with the role and globs asked for", async () => {
    const gw = await testGateway();
    const build = await createSession(gw, { command: ["cat"], pty: true, name: "build-1" });
    const other = await createSession(gw, { command: ["cat"], pty: true, name: "deploy" });
    const pairing = await makeCode(gw, { name: "phone", role: "viewer", sessions: ["build-*"] });
    expect(pairing.path).toBe(`/#pair=${pairing.code}`);
    expect(pairing.code).toMatch(/^[A-Za-z0-9_-]{22}$/);

    const first = await redeem(gw, { code: pairing.code });
    expect(first.status, first.text).toBe(200);
    expect(first.json.device).toMatchObject({ name: "phone", role: "viewer", sessions: ["build-*"] });
    const device = api(gw.url, first.json.token as string);
    expect((await device.get("/v1/whoami")).json).toMatchObject({
      name: "device:phone",
      role: "viewer",
      id: expect.stringMatching(/^device:[A-Za-z0-9_-]{12}$/),
    });
    const listed = (await device.get("/v1/sessions")).json.sessions.map((s: { id: string }) => s.id);
    expect(listed).toContain(build.id);
    expect(listed).not.toContain(other.id);
    expect((await device.post(`/v1/sessions/${build.id}/input`, { data: "x" })).json.error.code).toBe("FORBIDDEN");

    const again = await redeem(gw, { code: pairing.code });
    expect(again.status).toBe(401);
    expect(again.json.error.code).toBe("PAIRING_CODE_INVALID");
  });

  it("refuses a code past its TTL", async () => {
    const clock = new ManualClock(Date.now());
    const gw = await testGateway({ clock });
    const { code } = await makeCode(gw, { ttlMs: 60_000 });
    clock.advance(60_001);
    const r = await redeem(gw, { code });
    expect(r.status).toBe(401);
    expect(r.json.error.code).toBe("PAIRING_CODE_INVALID");
  });

  it("lets only admins make codes, list and unpair devices", async () => {
    const gw = await testGateway();
    const viewer = api(gw.url, await pairedToken(gw, { name: "tablet", role: "operator" }));
    expect((await viewer.post("/v1/devices/pairings", {})).json.error.code).toBe("FORBIDDEN");
    expect((await viewer.get("/v1/devices")).json.error.code).toBe("FORBIDDEN");
    const [device] = (await api(gw.url).get("/v1/devices")).json.devices;
    expect((await viewer.del(`/v1/devices/${device.id}`)).json.error.code).toBe("FORBIDDEN");
  });

  it("slows an address down after repeated wrong codes, even when it then brings a right one", async () => {
    const gw = await testGateway();
    const { code } = await makeCode(gw);
    for (let i = 0; i < AUTH_FAILURES_ALLOWED; i++) {
      const r = await redeem(gw, { code: "A".repeat(22) });
      expect(r.json.error.code).toBe("PAIRING_CODE_INVALID");
    }
    const limited = await redeem(gw, { code });
    expect(limited.status).toBe(429);
    expect(limited.json.error.code).toBe("RATE_LIMITED");
  });

  it("never writes a code or a device token to the gateway log", async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: "trace", destination: { write: (line: string) => void lines.push(line) } });
    const gw = await testGateway({ logger });
    const { code } = await makeCode(gw, { name: "phone" });
    const r = await redeem(gw, { code });
    const token = r.json.token as string;
    await redeem(gw, { code });
    const log = lines.join("");
    expect(log).toContain("device paired");
    expect(log).not.toContain(code);
    expect(log).not.toContain(token);
  });

  it("redeems exactly the codes it made, each once (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 30 }), { maxLength: 20 }), fc.nat({ max: 5 }), (guesses, n) => {
        const codes = new PairingCodes();
        const made = Array.from({ length: n + 1 }, (_, i) =>
          codes.create({ name: `d${i}`, role: "viewer", sessions: ["*"] }, 60_000, 0),
        );
        for (const guess of guesses) expect(codes.redeem(guess, 1)).toBeUndefined();
        made.forEach(({ code }, i) => {
          expect(codes.redeem(code, 1)?.name).toBe(`d${i}`);
          expect(codes.redeem(code, 1)).toBeUndefined();
        });
        expect(codes.size).toBe(0);
      }),
    );
  });
});

describe("device credentials", () => {
  it("are stored as hashes in the data dir, mode 0600, and survive a restart", async () => {
    const first = await testGateway();
    const token = await pairedToken(first, { name: "phone" });
    const file = join(first.dataDir, DEVICES_FILE);
    const text = readFileSync(file, "utf8");
    expect(text).not.toContain(token);
    expect(text).toContain(sha256(token).toString("hex"));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    await first.close();
    const second = await testGateway({ dataDir: first.dataDir });
    expect((await api(second.url, token).get("/v1/whoami")).json).toMatchObject({
      name: "device:phone",
      role: "operator",
      id: expect.stringMatching(/^device:/),
    });
  });

  it("refuses a second device with a name already paired", async () => {
    const gw = await testGateway();
    await pairedToken(gw, { name: "phone" });
    const r = await api(gw.url).post("/v1/devices/pairings", { name: "phone" });
    expect(r.status).toBe(409);
    expect(r.json.error.code).toBe("DEVICE_NAME_TAKEN");
  });

  it("ends the device's WebSockets and browser sign-in at once when it is unpaired", async () => {
    const gw = await testGateway();
    const { id } = await createSession(gw, { command: ["cat"], pty: true, name: "work" });
    const token = await pairedToken(gw, { name: "phone" });
    // The same device signed in as a browser too, through a second code (signIn: no token reaches the page).
    const { code } = await makeCode(gw, { name: "phone-browser" });
    const browser = await redeem(gw, { code, signIn: true });
    expect(browser.status, browser.text).toBe(200);
    expect(browser.json.token).toBeUndefined();
    const cookie = (browser.headers.get("set-cookie") ?? "").split(";")[0]!;
    const cookieHeaders = { cookie, "x-switchboard-cookie-key": browser.json.cookieKey as string };
    expect((await api(gw.url, "").get("/v1/whoami", cookieHeaders)).json.name).toBe("device:phone-browser");

    const mux = await Mux.open(gw, null, { headers: { authorization: `Bearer ${token}` } });
    expect((await mux.request({ op: "subscribe", session: id })).op).toBe("subscribed");
    const admin = await Mux.open(gw, null, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });

    const devices = (await api(gw.url).get("/v1/devices")).json.devices as Array<{ id: string; name: string }>;
    expect(devices.map((d) => d.name).sort()).toEqual(["phone", "phone-browser"]);
    const phone = devices.find((d) => d.name === "phone")!;
    const revoked = await api(gw.url).del(`/v1/devices/${phone.id}`);
    expect(revoked.status).toBe(200);
    const closed = await mux.client.closed;
    expect(closed.code).toBe(1008);
    expect(mux.frames.some((f) => f["op"] === "error" && /unpaired/.test(String(f["message"])))).toBe(true);
    expect(admin.client.closeCode).toBeUndefined();
    expect((await api(gw.url, token).get("/v1/whoami")).status).toBe(401);

    const browserDevice = devices.find((d) => d.name === "phone-browser")!;
    await api(gw.url).del(`/v1/devices/${browserDevice.id}`);
    expect((await api(gw.url, "").get("/v1/whoami", cookieHeaders)).status).toBe(401);
    expect((await api(gw.url).del(`/v1/devices/${browserDevice.id}`)).json.error.code).toBe("DEVICE_NOT_FOUND");
    await expect(WsClient.open(gw, "/v1/ws", null, { headers: { authorization: `Bearer ${token}` } })).rejects.toThrow(
      /401/,
    );
  });

  it("keeps a device's and a proxy user's connections across a reload that leaves them as they were", async () => {
    const file = join(tempDir(), "config.json");
    const proxy = { addresses: ["127.0.0.2"], userHeader: "X-Remote-User", roleMap: { alice: "operator" } };
    writeFileSync(file, JSON.stringify({ auth: { tokens: [], trustedProxy: proxy } }));
    const gw = await testGateway({ config: file, watchConfig: false });
    const token = await pairedToken(gw, { name: "phone" });
    const device = await Mux.open(gw, null, { headers: { authorization: `Bearer ${token}` } });
    const alice = await Mux.open(gw, null, { headers: { "x-remote-user": "alice" }, localAddress: "127.0.0.2" });
    const tokens = [{ name: "otto", token: "otto-token-0123456789abcdef", role: "operator" }];
    writeFileSync(file, JSON.stringify({ auth: { tokens, trustedProxy: proxy } }));
    expect(gw.reload()).toMatchObject({ ok: true });
    await sleep(500);
    expect([device.client.closeCode, alice.client.closeCode]).toEqual([undefined, undefined]);
    // The proxy setting gone: its users' connections end; the device's go on.
    writeFileSync(file, JSON.stringify({ auth: { tokens } }));
    expect(gw.reload()).toMatchObject({ ok: true });
    expect((await alice.client.closed).code).toBe(1008);
    await sleep(300);
    expect(device.client.closeCode).toBeUndefined();
  });
});
