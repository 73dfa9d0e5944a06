/**
 * A name is not an identity: sessions, notifications and their buttons belong to a principal
 * (`token:NAME`, `device:ID`, `proxy:USER`), never to whoever shows the same name. Regression
 * tests for a red team's findings: a trusted-proxy user named like a token read the token's
 * sessions and answered its permission requests from a notification; a device paired under a
 * revoked device's name inherited its sessions.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import type { Gateway } from "../../src/server/gateway.js";
import { PUSH_SUBSCRIPTIONS_FILE, PushSubscriptions } from "../../src/server/push/push-subscriptions.js";
import { tempDir } from "../helpers/tmp.js";
import { api, testGateway } from "../helpers/gateway.js";
import { PushEndpoint } from "../helpers/push-endpoint.js";
import { waitFor } from "../helpers/wait-for.js";

const OP1_TOKEN = "principal-op1-5d2a8c1e9f3b7a4c6e0d";
const PROXY_ADDRESS = "127.0.0.2";

/** A call from the trusted proxy's address naming `user` in its header. */
function fromProxy(gw: Gateway, user: string, method: string, path: string, body?: unknown) {
  const url = new URL(path, gw.url);
  return new Promise<{ status: number; json: any }>((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        localAddress: PROXY_ADDRESS,
        headers: { "x-forwarded-user": user, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on("error", reject);
    req.end(body !== undefined ? JSON.stringify(body) : undefined);
  });
}

async function proxiedGateway(push?: PushEndpoint): Promise<Gateway> {
  return testGateway({
    config: {
      auth: {
        tokens: [{ name: "op1", token: OP1_TOKEN, role: "operator" }],
        trustedProxy: { addresses: [PROXY_ADDRESS], userHeader: "X-Forwarded-User", roleMap: { "*": "operator" } },
      },
    },
    ...(push ? { pushAgent: push.agent, pushServiceHosts: ["127.0.0.1"] } : {}),
  });
}

async function pairedDevice(gw: Gateway, name: string) {
  const admin = api(gw.url);
  // Its own sessions only: no glob matches the sessions these tests make.
  const sessions = ["phone-*"];
  const code = (await admin.post("/v1/devices/pairings", { name, role: "operator", sessions })).json.code as string;
  const paired = await api(gw.url, "").post("/v1/pair", { code });
  expect(paired.status, paired.text).toBe(200);
  return { http: api(gw.url, paired.json.token as string), device: paired.json.device as { id: string } };
}

describe("a name is not an identity", () => {
  it("a proxy user named like a token sees none of the token's sessions, and the token none of the user's", async () => {
    const gw = await proxiedGateway();
    const op1 = api(gw.url, OP1_TOKEN);
    const mine = (await op1.post("/v1/sessions", { kind: "stream", name: "op1-work" })).json;

    expect((await fromProxy(gw, "op1", "GET", "/v1/sessions")).json.sessions).toEqual([]);
    for (const path of [`/v1/sessions/${mine.id}`, `/v1/sessions/${mine.id}/events`]) {
      const r = await fromProxy(gw, "op1", "GET", path);
      expect([r.status, r.json.error.code], path).toEqual([404, "SESSION_NOT_FOUND"]);
    }
    const theirs = await fromProxy(gw, "op1", "POST", "/v1/sessions", { kind: "stream", name: "proxy-work" });
    expect(theirs.json).toMatchObject({ owner: "op1", ownerId: "proxy:op1" });
    const listed = (await op1.get("/v1/sessions")).json.sessions as Array<{ id: string }>;
    expect(listed.map((s) => s.id)).toEqual([mine.id]);
    // The same name shown, two principals.
    expect(mine).toMatchObject({ owner: "op1", ownerId: "token:op1" });
    const who = await fromProxy(gw, "op1", "GET", "/v1/whoami");
    expect(who.json).toEqual({ name: "op1", role: "operator", id: "proxy:op1" });
  });

  it("a proxy user named like a token is not notified of the token's sessions, and its Allow answers as itself", async () => {
    let publicKey = "";
    const push = await PushEndpoint.start(() => publicKey);
    onTestFinished(() => push.close());
    const gw = await proxiedGateway(push);
    publicKey = (await api(gw.url).get("/v1/push/key")).json.publicKey as string;
    const subscribed = await fromProxy(gw, "op1", "POST", "/v1/push/subscriptions", push.subscription());
    expect(subscribed.status).toBe(201);

    const op1 = api(gw.url, OP1_TOKEN);
    const tokens = (await op1.post("/v1/sessions", { kind: "agent", agent: "echo", name: "token-agent" })).json;
    expect((await op1.post(`/v1/sessions/${tokens.id}/prompt`, { text: "/permission rm -rf build" })).status).toBe(202);
    const proxys = (await fromProxy(gw, "op1", "POST", "/v1/sessions", { kind: "agent", agent: "echo", name: "p" }))
      .json;
    await fromProxy(gw, "op1", "POST", `/v1/sessions/${proxys.id}/prompt`, { text: "/permission rm -rf dist" });
    // The user's own request is notified; the token's, asked first, never is.
    const [message] = await push.waitFor(1);
    expect(message!.payload).toMatchObject({ reason: "permission", sessionId: proxys.id });
    await new Promise((r) => setTimeout(r, 300));
    expect(push.received.map((m) => m.payload["sessionId"])).toEqual([proxys.id]);

    const answer = await api(gw.url, "").post("/v1/push/answer", { token: message!.payload["token"], action: "allow" });
    expect(answer.status, JSON.stringify(answer.json)).toBe(200);
    const resolved = await waitFor(
      async () =>
        ((await fromProxy(gw, "op1", "GET", `/v1/sessions/${proxys.id}/events`)).json.events as any[]).find(
          (e) => e.type === "permission.resolved",
        ),
      10_000,
      "the answer",
    );
    expect(resolved.by).toMatchObject({ name: "op1", id: "proxy:op1" });
  });

  it("a device paired again under a revoked device's name sees none of its sessions", async () => {
    const gw = await testGateway();
    const admin = api(gw.url);
    const first = await pairedDevice(gw, "phone");
    const old = (await first.http.post("/v1/sessions", { kind: "stream", name: "old-phone-work" })).json;
    expect((await admin.call("DELETE", `/v1/devices/${first.device.id}`)).status).toBe(200);

    const second = await pairedDevice(gw, "phone");
    expect(second.device.id).not.toBe(first.device.id);
    expect((await second.http.get("/v1/whoami")).json).toMatchObject({ name: "device:phone" });
    expect((await second.http.get("/v1/sessions")).json.sessions).toEqual([]);
    const read = await second.http.get(`/v1/sessions/${old.id}`);
    expect([read.status, read.json.error.code]).toEqual([404, "SESSION_NOT_FOUND"]);
    expect(old.ownerId).toBe(`device:${first.device.id}`);
  });

  it("keeps a session stored with an owner name (before principal ids) its rightful owner's only", async () => {
    const gw = await proxiedGateway();
    const op1 = api(gw.url, OP1_TOKEN);
    const phone = await pairedDevice(gw, "phone");
    const byToken = (await op1.post("/v1/sessions", { kind: "stream", name: "legacy-token" })).json.id as string;
    const byPhone = (await phone.http.post("/v1/sessions", { kind: "stream", name: "legacy-phone" })).json.id as string;
    const byProxy = (await fromProxy(gw, "pat", "POST", "/v1/sessions", { kind: "stream", name: "legacy-pat" })).json
      .id as string;
    // As a record written before principal ids reads back: the owner's name, no ownerId.
    for (const id of [byToken, byPhone, byProxy]) delete gw.core.sessions.get(id)!.record.ownerId;
    const idsOf = async (r: Promise<{ json: any }>) =>
      ((await r).json.sessions as Array<{ id: string }>).map((s) => s.id);

    expect(await idsOf(op1.get("/v1/sessions"))).toEqual([byToken]);
    expect(await idsOf(phone.http.get("/v1/sessions"))).toEqual([byPhone]);
    expect(await idsOf(fromProxy(gw, "pat", "GET", "/v1/sessions"))).toEqual([byProxy]);
    // The owner name `op1` is the configured token's: the proxy user of that name has no claim on it.
    expect(await idsOf(fromProxy(gw, "op1", "GET", "/v1/sessions"))).toEqual([]);
    // A device paired after the session was made, under the same name, has none of it.
    await api(gw.url).call("DELETE", `/v1/devices/${phone.device.id}`);
    const again = await pairedDevice(gw, "phone");
    expect(await idsOf(again.http.get("/v1/sessions"))).toEqual([]);
  });

  it("drops push subscriptions saved by name before principal ids, and keeps the others", () => {
    const file = join(tempDir(), PUSH_SUBSCRIPTIONS_FILE);
    const keys = { p256dh: "B".repeat(87), auth: "A".repeat(22) };
    const endpoint = (path: string) => `https://fcm.googleapis.com/fcm/send/${path}`;
    const kept = { principal: "token:op1", endpoint: endpoint("kept"), ...keys, since: 2 };
    const named = { identity: "op1", endpoint: endpoint("named"), ...keys, since: 1 };
    writeFileSync(file, JSON.stringify([named, kept]));
    const subscriptions = new PushSubscriptions(file);
    expect(subscriptions.droppedNamed).toBe(1);
    expect(subscriptions.list()).toEqual([kept]);
    expect(JSON.parse(readFileSync(file, "utf8"))).toEqual([kept]);
  });

  it("refuses two configured tokens with one name: a token is known by its name", async () => {
    await expect(
      testGateway({
        config: {
          auth: {
            tokens: [
              { name: "op1", token: OP1_TOKEN, role: "operator" },
              { name: "op1", token: `${OP1_TOKEN}-other`, role: "viewer" },
            ],
          },
        },
      }),
    ).rejects.toThrow(/auth\.tokens\.1\.name: name op1/);
  });
});
