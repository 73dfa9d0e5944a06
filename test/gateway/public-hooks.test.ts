import { createHmac } from "node:crypto";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { PUBLIC_HOOK_CONCURRENCY } from "../../src/plugins/http-hooks.js";
import { TEST_TOKEN, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";

const SIGNED_HOOK = fileURLToPath(new URL("../plugins/fixtures/signed-hook", import.meta.url));
const SECRET = "webhook-secret-0123456789";

/** `x-hub-signature-256` as a forge computes it: over the bytes it sends. */
const sign = (body: string | Buffer, secret = SECRET) =>
  `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;

/** A gateway with `github` (publicHooks on) and `internal` (off), both the signed-hook fixture. */
async function hookGateway() {
  const config = { secret: SECRET };
  const gw = await testGateway({
    config: {
      plugins: {
        entries: {
          github: { path: SIGNED_HOOK, publicHooks: true, config },
          internal: { path: SIGNED_HOOK, config },
        },
      },
    },
  });
  await waitFor(() => gw.core.plugins?.status().every((p) => p.state === "running"), 15_000, "the plugins to run");
  return gw;
}

/** A request with no token, as a webhook sender makes it. */
async function post(url: string, body: string | Buffer, headers: Record<string, string>) {
  const res = await fetch(url, {
    method: "POST",
    body: typeof body === "string" ? body : new Uint8Array(body),
    headers,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

describe("public hooks (/hooks/<plugin>/…)", () => {
  it("hand a webhook with no token to a plugin that opted in, with its raw bytes to check a signature over; no other plugin is reachable", async () => {
    const gw = await hookGateway();
    // Spacing no serializer would give back: the signature holds only over the bytes as sent.
    const json = '{"action":  "opened",\n "n": [1, 2]}';
    const ok = await post(`${gw.url}/hooks/github/events?delivery=7`, json, {
      "content-type": "application/json",
      "x-hub-signature-256": sign(json),
    });
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({
      public: true,
      method: "POST",
      path: "/events",
      query: { delivery: "7" },
      body: { action: "opened", n: [1, 2] },
      rawBytes: Buffer.byteLength(json),
      isBytes: true,
    });

    // A form (GitHub's other content type, Slack's slash commands): its fields, and the bytes.
    const form = "payload=%7B%22zen%22%3A%22hi%22%7D&team=a+b";
    const formAnswer = await post(`${gw.url}/hooks/github`, form, {
      "content-type": "application/x-www-form-urlencoded",
      "x-hub-signature-256": sign(form),
    });
    expect(formAnswer.json).toMatchObject({ path: "/", body: { payload: '{"zen":"hi"}', team: "a b" } });
    // Anything else arrives as bytes only; bytes that are not UTF-8 too.
    const bytes = Buffer.from([0xff, 0x00, 0xfe, 0x41]);
    const other = await post(`${gw.url}/hooks/github/raw`, bytes, {
      "content-type": "application/octet-stream",
      "x-hub-signature-256": sign(bytes),
    });
    expect(other.json).toMatchObject({ body: null, rawBytes: 4 });

    // The plugin decides: a wrong signature is its 401, not the gateway's.
    const forged = await post(`${gw.url}/hooks/github/events`, json, {
      "content-type": "application/json",
      "x-hub-signature-256": sign(json, "not-the-secret"),
    });
    expect(forged).toMatchObject({ status: 401, json: { error: "bad signature" } });

    // Credentials sent along are not handed over, and do not make the request any less public.
    const withToken = await post(`${gw.url}/hooks/github/events`, json, {
      "content-type": "application/json",
      "x-hub-signature-256": sign(json),
      authorization: `Bearer ${TEST_TOKEN}`,
      cookie: "sb_session=some-cookie",
    });
    expect(withToken.json.public).toBe(true);
    expect(withToken.json.headerNames).not.toContain("authorization");
    expect(withToken.json.headerNames).not.toContain("cookie");

    // The same plugin with a token: not public.
    const authed = await post(`${gw.url}/v1/plugins/github/http/events`, json, {
      "content-type": "application/json",
      "x-hub-signature-256": sign(json),
      authorization: `Bearer ${TEST_TOKEN}`,
    });
    expect(authed.json).toMatchObject({ public: false, path: "/events", body: { action: "opened" } });

    // A plugin that did not opt in, and one that does not exist, look the same: not found.
    const signedHeaders = { "content-type": "application/json", "x-hub-signature-256": sign(json) };
    for (const id of ["internal", "nope"]) {
      const answer = await post(`${gw.url}/hooks/${id}/events`, json, signedHeaders);
      expect(answer.status, id).toBe(404);
      expect(answer.json.error).toEqual({ code: "NOT_FOUND", message: `no public hook at /hooks/${id}` });
    }
    expect((await post(`${gw.url}/hooks/`, json, signedHeaders)).status).toBe(404);

    // Counted by plugin, access and status class; the 404s name no plugin and are not.
    const metrics = await (
      await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })
    ).text();
    const counted = [...metrics.matchAll(/^switchboard_plugin_hook_requests_total\{(.*)\} (\d+)$/gm)].map(
      (m) => `${m[1]} ${m[2]}`,
    );
    expect(counted.sort()).toEqual([
      'plugin="github",access="public",status="2xx" 4',
      'plugin="github",access="public",status="4xx" 1',
      'plugin="github",access="token",status="2xx" 1',
    ]);
  });

  it("refuses what the gateway can tell is wrong before the plugin sees it: method, JSON, size, another origin", async () => {
    const gw = await hookGateway();
    const put = await fetch(`${gw.url}/hooks/github/x`, { method: "PUT", body: "{}" });
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")).toBe("GET, HEAD, POST");
    const broken = '{"action": ';
    const invalid = await post(`${gw.url}/hooks/github/x`, broken, {
      "content-type": "application/json",
      "x-hub-signature-256": sign(broken),
    });
    expect(invalid).toMatchObject({ status: 400, json: { error: { code: "INVALID_JSON" } } });
    const limit = gw.core.plugins!.hookBodyBytes;
    const big = "x".repeat(limit + 1);
    const tooBig = await post(`${gw.url}/hooks/github/x`, big, {
      "content-type": "text/plain",
      "x-hub-signature-256": sign(big),
    });
    expect(tooBig).toMatchObject({ status: 413, json: { error: { code: "PAYLOAD_TOO_LARGE" } } });
    // The largest body passes, and reaches the plugin whole.
    const largest = "x".repeat(limit);
    const fits = await post(`${gw.url}/hooks/github/x`, largest, {
      "content-type": "text/plain",
      "x-hub-signature-256": sign(largest),
    });
    expect(fits).toMatchObject({ status: 200, json: { rawBytes: limit } });
    // A browser page of another origin cannot post to it.
    const page = await post(`${gw.url}/hooks/github/x`, "{}", {
      "content-type": "application/json",
      "x-hub-signature-256": sign("{}"),
      origin: "https://attacker.example",
    });
    expect(page).toMatchObject({ status: 403, json: { error: { code: "ORIGIN_NOT_ALLOWED" } } });
  });

  it(`holds at most ${PUBLIC_HOOK_CONCURRENCY} public requests in progress per plugin: past them RATE_LIMITED, with Retry-After`, async () => {
    const gw = await hookGateway();
    const slow = JSON.stringify({ op: "wait", ms: 1500 });
    const headers = { "content-type": "application/json", "x-hub-signature-256": sign(slow) };
    const held = Array.from({ length: PUBLIC_HOOK_CONCURRENCY }, () => post(`${gw.url}/hooks/github/x`, slow, headers));
    const quick = { "content-type": "application/json", "x-hub-signature-256": sign("{}") };
    await waitFor(
      async () => (await post(`${gw.url}/hooks/github/x`, "{}", quick)).status === 429,
      1000,
      "the hook to be full",
    );
    const over = await post(`${gw.url}/hooks/github/x`, slow, headers);
    expect(over).toMatchObject({ status: 429, json: { error: { code: "RATE_LIMITED" } } });
    expect(over.headers.get("retry-after")).toBe("1");
    // Requests with a token are not counted against the anonymous ones.
    const authed = await post(`${gw.url}/v1/plugins/github/http/x`, "{}", {
      "content-type": "application/json",
      "x-hub-signature-256": sign("{}"),
      authorization: `Bearer ${TEST_TOKEN}`,
    });
    expect(authed.status).toBe(200);
    expect((await Promise.all(held)).map((r) => r.status)).toEqual(Array(PUBLIC_HOOK_CONCURRENCY).fill(200));
    expect((await post(`${gw.url}/hooks/github/x`, "{}", quick)).status).toBe(200);
  });
});
