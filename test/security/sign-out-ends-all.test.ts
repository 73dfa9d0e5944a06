/**
 * Sign-out and revocation end everything of the sign-in or credential: its browser's push
 * subscription and the buttons of the notifications it got (logout), and its HTTP requests under
 * way — a transcript download — as well as its sockets (a device unpaired, a token a reload
 * removed). Regression tests for a red team's findings: after POST /v1/logout the browser still
 * got notifications whose Allow answered as the signed-out user; a revoked device's download
 * kept streaming.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { PUSH_SUBSCRIPTIONS_FILE } from "../../src/server/push/push-subscriptions.js";
import type { Gateway } from "../../src/server/gateway.js";
import { api, browserSignIn, testGateway } from "../helpers/gateway.js";
import { PushEndpoint } from "../helpers/push-endpoint.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

const OP1_TOKEN = "signout-op1-8e3b1d7a4c9f2e6b0a5d";
/** How soon a revoked credential's download must end. */
const REVOKE_WITHIN_MS = 1_000;
/** Output bytes of the session downloaded: more than the socket buffers and the export's queue hold. */
const TRANSCRIPT_BYTES = 24 * 1024 * 1024;

async function permissionRequest(http: ReturnType<typeof api>, name: string): Promise<string> {
  const agent = (await http.post("/v1/sessions", { kind: "agent", agent: "echo", name })).json;
  expect((await http.post(`/v1/sessions/${agent.id}/prompt`, { text: "/permission rm -rf build" })).status).toBe(202);
  return agent.id as string;
}

/** A session whose transcript is {@link TRANSCRIPT_BYTES} long, all of it logged. */
async function bigTranscript(gw: Gateway): Promise<string> {
  const admin = api(gw.url);
  const command = ["sh", "-c", `head -c ${TRANSCRIPT_BYTES} /dev/zero | tr '\\0' x`];
  const id = (await admin.post("/v1/sessions", { command, name: "phone-big" })).json.id as string;
  await waitFor(
    async () => (await admin.get(`/v1/sessions/${id}`)).json.outputBytes === TRANSCRIPT_BYTES,
    30_000,
    "the output logged",
  );
  return id;
}

/**
 * Starts downloading the transcript of `id` with `headers`, reads its first chunk, then stops
 * reading. `rest()` reads on to the end: the bytes read in all and whether the body was cut.
 */
async function startDownload(gw: Gateway, id: string, headers: Record<string, string>) {
  const res = await fetch(`${gw.url}/v1/sessions/${id}/transcript`, { headers });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  let bytes = (await reader.read()).value?.length ?? 0;
  return {
    async rest(): Promise<{ bytes: number; cut: boolean }> {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return { bytes, cut: false };
          bytes += value.length;
        }
      } catch {
        // The connection was cut under the body: what this test expects of a revoked credential.
        return { bytes, cut: true };
      }
    },
  };
}

describe("sign-out ends everything of the sign-in", () => {
  it("logout forgets the browser's push subscription and refuses the buttons it was sent; another sign-in keeps its own", async () => {
    let publicKey = "";
    const push = await PushEndpoint.start(() => publicKey);
    onTestFinished(() => push.close());
    const gw = await testGateway({
      config: { auth: { tokens: [{ name: "op1", token: OP1_TOKEN, role: "operator" }] } },
      pushAgent: push.agent,
      pushServiceHosts: ["127.0.0.1"],
    });
    publicKey = (await api(gw.url).get("/v1/push/key")).json.publicKey as string;
    const laptop = await browserSignIn(gw.url, OP1_TOKEN);
    const phone = await browserSignIn(gw.url, OP1_TOKEN);
    const asBrowser = (signIn: typeof laptop) => ({
      post: (path: string, body: unknown) => api(gw.url, "").post(path, body, signIn.headers),
    });
    expect((await asBrowser(laptop).post("/v1/push/subscriptions", push.subscription("/push/laptop"))).status).toBe(
      201,
    );
    expect((await asBrowser(phone).post("/v1/push/subscriptions", push.subscription("/push/phone"))).status).toBe(201);

    const op1 = api(gw.url, OP1_TOKEN);
    await permissionRequest(op1, "first");
    const sent = await push.waitFor(2);
    const laptopToken = sent.find((m) => m.path === "/push/laptop")!.payload["token"] as string;
    const phoneToken = sent.find((m) => m.path === "/push/phone")!.payload["token"] as string;

    expect((await asBrowser(laptop).post("/v1/logout", {})).status).toBe(200);
    // Its buttons answer nothing, and the gateway no longer holds its subscription.
    const refused = await api(gw.url, "").post("/v1/push/answer", { token: laptopToken, action: "allow" });
    expect([refused.status, refused.json.error.code]).toEqual([401, "PUSH_ACTION_INVALID"]);
    const saved = JSON.parse(readFileSync(join(gw.dataDir, PUSH_SUBSCRIPTIONS_FILE), "utf8")) as Array<{
      endpoint: string;
    }>;
    expect(saved.map((s) => new URL(s.endpoint).pathname)).toEqual(["/push/phone"]);
    // The next request is notified to the browser still signed in, and to it only.
    await permissionRequest(op1, "second");
    await push.waitFor(3);
    await new Promise((r) => setTimeout(r, 300));
    expect(push.received.map((m) => m.path)).toEqual(
      expect.arrayContaining(["/push/laptop", "/push/phone", "/push/phone"]),
    );
    expect(push.received.filter((m) => m.path === "/push/laptop")).toHaveLength(1);
    // The other sign-in's button still answers, as op1.
    const allowed = await api(gw.url, "").post("/v1/push/answer", { token: phoneToken, action: "allow" });
    expect(allowed.status, JSON.stringify(allowed.json)).toBe(200);
  });

  it("revoking a device ends its transcript download within 1 s", async () => {
    const gw = await testGateway();
    const admin = api(gw.url);
    const code = (await admin.post("/v1/devices/pairings", { name: "phone", sessions: ["phone-*"] })).json.code;
    const paired = (await api(gw.url, "").post("/v1/pair", { code })).json;
    const id = await bigTranscript(gw);
    const download = await startDownload(gw, id, { authorization: `Bearer ${paired.token}` });

    expect((await admin.call("DELETE", `/v1/devices/${paired.device.id}`)).status).toBe(200);
    const revokedAt = performance.now();
    const { bytes, cut } = await download.rest();
    expect(performance.now() - revokedAt).toBeLessThan(REVOKE_WITHIN_MS);
    expect(cut).toBe(true);
    expect(bytes).toBeLessThan(TRANSCRIPT_BYTES);
    // The credential is gone: a new download is refused.
    const again = await fetch(`${gw.url}/v1/sessions/${id}/transcript`, {
      headers: { authorization: `Bearer ${paired.token}` },
    });
    expect(again.status).toBe(401);
  });

  it("tracks a request only while it is under way", async () => {
    const gw = await testGateway();
    const admin = api(gw.url);
    // Keep-alive requests one after another, and some at once: each is released when it closes.
    for (let i = 0; i < 20; i++) expect((await admin.get("/v1/whoami")).status).toBe(200);
    await Promise.all(Array.from({ length: 20 }, () => admin.get("/v1/sessions")));
    await waitFor(() => gw.core.connections.tracked === 0, 2_000, "every request released");
  });

  it("a reload that removes a token ends its transcript download, and logout ends a browser's", async () => {
    const file = join(tempDir(), "config.json");
    const tokens = [{ name: "op1", token: OP1_TOKEN, role: "admin" }];
    writeFileSync(file, JSON.stringify({ auth: { tokens } }));
    const gw = await testGateway({ config: file, watchConfig: false });
    const id = await bigTranscript(gw);

    const signIn = await browserSignIn(gw.url, OP1_TOKEN);
    const browser = await startDownload(gw, id, signIn.headers);
    expect((await api(gw.url, "").post("/v1/logout", {}, signIn.headers)).status).toBe(200);
    let loggedOutAt = performance.now();
    expect(await browser.rest()).toMatchObject({ cut: true });
    expect(performance.now() - loggedOutAt).toBeLessThan(REVOKE_WITHIN_MS);

    const download = await startDownload(gw, id, { authorization: `Bearer ${OP1_TOKEN}` });
    writeFileSync(file, JSON.stringify({ auth: { tokens: [] } }));
    expect(gw.reload()).toMatchObject({ ok: true });
    loggedOutAt = performance.now();
    const { bytes, cut } = await download.rest();
    expect(performance.now() - loggedOutAt).toBeLessThan(REVOKE_WITHIN_MS);
    expect([cut, bytes < TRANSCRIPT_BYTES]).toEqual([true, true]);
  });
});
