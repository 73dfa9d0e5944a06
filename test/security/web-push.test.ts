/**
 * Web Push from the gateway to a push service the test runs on 127.0.0.1: each message is
 * checked as a browser would (VAPID signature, RFC 8291 decryption by hand), and a permission
 * notification's action token answers a real permission request of the echo agent, once.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it, onTestFinished } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { PushActionTokens, PUSH_ACTION_TTL_MAX_MS } from "../../src/server/push/push-action-tokens.js";
import { PUSH_LINE_CHARS, oneTapOptions, payloadOf } from "../../src/server/push/push-notifier.js";
import { PUSH_SUBSCRIPTIONS_FILE } from "../../src/server/push/push-subscriptions.js";
import { VAPID_FILE } from "../../src/server/push/vapid-keys.js";
import type { Gateway } from "../../src/server/gateway.js";
import { createLogger } from "../../src/server/ops/logger.js";
import { api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { PushEndpoint } from "../helpers/push-endpoint.js";

const SCRIPTED_AGENT = fileURLToPath(new URL("../agents/fixtures/scripted-agent.mjs", import.meta.url));
/** A permission request's options as Gemini CLI sends them: the session-wide Allow first. */
const GEMINI_OPTIONS = [
  { optionId: "proceed_always", name: "Allow for this session", kind: "allow_always" },
  { optionId: "proceed_once", name: "Allow", kind: "allow_once" },
  { optionId: "cancel", name: "Reject", kind: "reject_once" },
];

interface Setup {
  gw: Gateway & { dataDir: string };
  push: PushEndpoint;
  /** The gateway's log lines, at trace level. */
  log: string[];
  admin: ReturnType<typeof api>;
  /** A paired device's API client and its token. */
  device(name: string, role?: "operator" | "viewer", sessions?: string[]): Promise<ReturnType<typeof api>>;
}

async function setup(): Promise<Setup> {
  let publicKey = "";
  const push = await PushEndpoint.start(() => publicKey);
  onTestFinished(() => push.close());
  const lines: string[] = [];
  const logger = createLogger({ level: "trace", destination: { write: (line: string) => void lines.push(line) } });
  const gw = await testGateway({ pushAgent: push.agent, pushServiceHosts: ["127.0.0.1"], logger });
  const admin = api(gw.url);
  publicKey = (await admin.get("/v1/push/key")).json.publicKey as string;
  return {
    gw,
    log: lines,
    push,
    admin,
    async device(name, role = "operator", sessions = ["*"]) {
      const code = (await admin.post("/v1/devices/pairings", { name, role, sessions })).json.code as string;
      const paired = await api(gw.url, "").post("/v1/pair", { code });
      expect(paired.status, paired.text).toBe(200);
      return api(gw.url, paired.json.token as string);
    },
  };
}

async function permissionRequest(http: ReturnType<typeof api>, name: string) {
  const agent = (await http.post("/v1/sessions", { kind: "agent", agent: "echo", name })).json;
  expect((await http.post(`/v1/sessions/${agent.id}/prompt`, { text: "/permission rm -rf build" })).status).toBe(202);
  const request = await waitFor(
    async () =>
      ((await http.get(`/v1/sessions/${agent.id}/events`)).json.events as any[]).find(
        (e) => e.type === "permission.request",
      ),
    10_000,
    "the permission request",
  );
  return { id: agent.id as string, request };
}

async function resolved(http: ReturnType<typeof api>, id: string) {
  return waitFor(
    async () =>
      ((await http.get(`/v1/sessions/${id}/events`)).json.events as any[]).find(
        (e) => e.type === "permission.resolved",
      ),
    10_000,
    "the answer",
  );
}

describe("web push", () => {
  it("sends a permission request encrypted to the subscribed device, whose Allow answers it once", async () => {
    const { gw, log, push, admin, device } = await setup();
    const phone = await device("phone");
    expect((await phone.post("/v1/push/subscriptions", push.subscription())).status).toBe(201);
    // The keys and subscriptions live in the data dir, readable by the gateway's user only.
    const vapid = JSON.parse(readFileSync(join(gw.dataDir, VAPID_FILE), "utf8"));
    expect(vapid.publicKey).toBe((await admin.get("/v1/push/key")).json.publicKey);
    expect(statSync(join(gw.dataDir, VAPID_FILE)).mode & 0o777).toBe(0o600);
    expect(statSync(join(gw.dataDir, PUSH_SUBSCRIPTIONS_FILE)).mode & 0o777).toBe(0o600);

    const { id, request } = await permissionRequest(admin, "deploy-bot");
    const [message] = await push.waitFor(1);
    expect(message!.path).toBe("/push/browser-1");
    expect(message!.claims.sub).toMatch(/^mailto:/);
    expect(message!.headers["urgency"]).toBe("high");
    expect(message!.payload).toEqual({
      reason: "permission",
      sessionId: id,
      title: "deploy-bot needs an answer",
      body: request.title,
      token: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      actions: ["allow", "reject"],
    });
    const token = message!.payload["token"] as string;

    // The button needs no other credential: the token is it.
    const anonymous = api(gw.url, "");
    const answer = await anonymous.post("/v1/push/answer", { token, action: "allow" });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json).toMatchObject({ ok: true, sessionId: id, optionId: "allow" });
    const done = await resolved(admin, id);
    expect(done).toMatchObject({
      requestId: request.requestId,
      outcome: "selected",
      optionId: "allow",
      by: { name: "device:phone" },
    });
    // Single use: the same token, or Reject with it, answers nothing.
    const again = await anonymous.post("/v1/push/answer", { token, action: "reject" });
    expect(again.status).toBe(401);
    expect(again.json.error.code).toBe("PUSH_ACTION_INVALID");
    expect(again.json.error.message).toContain("open the session to answer");
    // Answered and audited, and no log line holds the token or the endpoint's path (a capability).
    expect(log.join("")).toContain("permission answered from a notification");
    expect(log.join("")).not.toContain(token);
    expect(log.join("")).not.toContain("/push/browser-1");
  });

  it("answers Allow with the request's allow_once, never an always option listed first (Gemini CLI's order)", async () => {
    const { gw, push, admin, device } = await setup();
    const phone = await device("phone");
    expect((await phone.post("/v1/push/subscriptions", push.subscription())).status).toBe(201);
    const created = await admin.post("/v1/sessions", {
      kind: "agent",
      name: "gemini-like",
      agent: { adapter: "acp", command: [process.execPath, SCRIPTED_AGENT] },
    });
    expect(created.status, created.text).toBe(201);
    const id = created.json.id as string;
    const ask = (options: { optionId: string; name: string; kind: string }[]) =>
      admin.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify({ op: "permission", options }) });

    // As Gemini CLI lists them: "Allow for this session" first.
    expect((await ask(GEMINI_OPTIONS)).status).toBe(202);
    const [first] = await push.waitFor(1);
    expect(first!.payload["actions"]).toEqual(["allow", "reject"]);
    const allowed = await api(gw.url, "").post("/v1/push/answer", { token: first!.payload["token"], action: "allow" });
    expect(allowed.status, allowed.text).toBe(200);
    expect(allowed.json.optionId).toBe("proceed_once");
    expect(await resolved(admin, id)).toMatchObject({ outcome: "selected", optionId: "proceed_once" });

    // Only "always" options: no button answers it, the notification only opens the session.
    expect((await ask(GEMINI_OPTIONS.filter((o) => !o.kind.endsWith("_once")))).status).toBe(202);
    // The first run's "finished" notification comes between the two requests.
    const second = (await push.waitFor(3)).filter((m) => m.payload["reason"] === "permission")[1];
    expect(second, "the second permission notification").toBeDefined();
    expect(second!.payload).not.toHaveProperty("token");
    expect(second!.payload).not.toHaveProperty("actions");
  });

  it("notifies an agent's question with no button, a url one by its host alone", async () => {
    const { push, admin, device } = await setup();
    const phone = await device("phone");
    expect((await phone.post("/v1/push/subscriptions", push.subscription())).status).toBe(201);
    const created = await admin.post("/v1/sessions", {
      kind: "agent",
      name: "login-bot",
      agent: { adapter: "acp", command: [process.execPath, SCRIPTED_AGENT] },
    });
    const id = created.json.id as string;
    const script = {
      op: "elicit",
      mode: "url",
      message: "Sign in to the registry",
      url: "https://auth.example:8443/device/path-secret?code=one-time-secret#frag",
    };
    expect((await admin.post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify(script) })).status).toBe(202);
    const [message] = await push.waitFor(1);
    expect(message!.headers["urgency"]).toBe("high");
    // Only "open": an answer may need content, so no token and no buttons.
    expect(message!.payload).toEqual({
      reason: "elicitation",
      sessionId: id,
      title: "login-bot (inline:acp) asks a question",
      body: "Sign in to the registry · opens auth.example:8443",
    });
    expect(JSON.stringify(message!.payload)).not.toMatch(/secret|code=/);
  });

  it("picks exactly allow_once and reject_once for the one-tap buttons", () => {
    expect(oneTapOptions(GEMINI_OPTIONS)).toEqual({ allow: "proceed_once", reject: "cancel" });
    expect(oneTapOptions([{ optionId: "a", kind: "allow_always" }])).toEqual({ allow: undefined, reject: undefined });
  });

  it("notifies a finished run and an ended session with the session's name and one line", async () => {
    const { push, admin, device } = await setup();
    const phone = await device("phone");
    await phone.post("/v1/push/subscriptions", push.subscription());
    const agent = (await admin.post("/v1/sessions", { kind: "agent", agent: "echo", name: "writer" })).json;
    await admin.post(`/v1/sessions/${agent.id}/prompt`, { text: "first line\nthe last line" });
    const [finished] = await push.waitFor(1);
    expect(finished!.payload).toEqual({
      reason: "finished",
      sessionId: agent.id,
      title: "writer is done",
      body: "the last line",
    });
    expect(finished!.headers["urgency"]).toBe("normal");
    const shell = (await admin.post("/v1/sessions", { command: ["sh", "-c", "exit 3"], name: "tests" })).json;
    const messages = await push.waitFor(2);
    expect(messages[1]!.payload).toEqual({
      reason: "exited",
      sessionId: shell.id,
      title: "tests ended",
      body: "Exited with code 3.",
    });
  });

  it("notifies a viewer without buttons, and nobody of a session they may not see", async () => {
    const { push, admin, device } = await setup();
    const viewer = await device("tablet", "viewer", ["build-*"]);
    await viewer.post("/v1/push/subscriptions", push.subscription("/push/tablet"));
    await permissionRequest(admin, "secret-work");
    const { id } = await permissionRequest(admin, "build-7");
    const [message] = await push.waitFor(1);
    expect(message!.payload).toMatchObject({ reason: "permission", sessionId: id, title: "build-7 needs an answer" });
    expect(message!.payload["token"]).toBeUndefined();
    // Both requests were raised before the one the tablet may see: no second message comes.
    await new Promise((r) => setTimeout(r, 300));
    expect(push.received).toHaveLength(1);
  });

  it("binds a token to its request: it answers no other, and none once the request is answered", async () => {
    const { gw, push, admin, device } = await setup();
    const phone = await device("phone");
    await phone.post("/v1/push/subscriptions", push.subscription());
    const first = await permissionRequest(admin, "one");
    const second = await permissionRequest(admin, "two");
    const messages = await push.waitFor(2);
    const tokenOf = (id: string) => messages.find((m) => m.payload["sessionId"] === id)!.payload["token"] as string;
    // Answered in the UI first: the notification's buttons then answer nothing.
    await admin.post(`/v1/sessions/${first.id}/permission`, { requestId: first.request.requestId, optionId: "reject" });
    await resolved(admin, first.id);
    const late = await api(gw.url, "").post("/v1/push/answer", { token: tokenOf(first.id), action: "allow" });
    expect(late.json.error.code).toBe("PUSH_ACTION_INVALID");
    // The second's token answers the second, with Reject.
    const rejected = await api(gw.url, "").post("/v1/push/answer", { token: tokenOf(second.id), action: "reject" });
    expect(rejected.status, rejected.text).toBe(200);
    expect(await resolved(admin, second.id)).toMatchObject({ requestId: second.request.requestId, optionId: "reject" });
  });

  it("forgets an unpaired device's subscriptions and the buttons it was sent", async () => {
    const { gw, push, admin, device } = await setup();
    const phone = await device("phone");
    await phone.post("/v1/push/subscriptions", push.subscription());
    const { id } = await permissionRequest(admin, "agent");
    const [message] = await push.waitFor(1);
    const deviceId = (await admin.get("/v1/devices")).json.devices[0].id as string;
    expect((await admin.call("DELETE", `/v1/devices/${deviceId}`)).status).toBe(200);
    const answer = await api(gw.url, "").post("/v1/push/answer", { token: message!.payload["token"], action: "allow" });
    expect(answer.json.error.code).toBe("PUSH_ACTION_INVALID");
    expect(JSON.parse(readFileSync(join(gw.dataDir, PUSH_SUBSCRIPTIONS_FILE), "utf8"))).toEqual([]);
    await admin.call("DELETE", `/v1/sessions/${id}`);
  });

  it("forgets a subscription its push service says is gone (410)", async () => {
    const { gw, push, admin, device } = await setup();
    const phone = await device("phone");
    await phone.post("/v1/push/subscriptions", push.subscription());
    push.status = 410;
    await admin.post("/v1/sessions", { command: ["true"], name: "quick" });
    await push.waitFor(1);
    await waitFor(
      () => JSON.parse(readFileSync(join(gw.dataDir, PUSH_SUBSCRIPTIONS_FILE), "utf8")).length === 0,
      10_000,
      "the subscription forgotten",
    );
  });

  it("takes endpoints of the browsers' push services only: the gateway posts to them", async () => {
    const gw = await testGateway();
    const admin = api(gw.url);
    const keys = { p256dh: "B".repeat(87), auth: "A".repeat(22) };
    for (const endpoint of [
      "https://169.254.169.254/latest/meta-data",
      "https://127.0.0.1:9/push",
      "https://fcm.googleapis.com.evil.example/x",
      "https://notify.windows.com.evil.example/x",
    ]) {
      const r = await admin.post("/v1/push/subscriptions", { endpoint, keys });
      expect(r.status, endpoint).toBe(400);
      expect(r.json.error).toMatchObject({
        code: "VALIDATION_FAILED",
        message: expect.stringContaining("push service"),
      });
    }
    for (const endpoint of [
      "https://fcm.googleapis.com/fcm/send/abc",
      "https://updates.push.services.mozilla.com/wpush/v2/abc",
      "https://wns2-par02p.notify.windows.com/w/?token=abc",
      "https://web.push.apple.com/abc",
    ])
      expect((await admin.post("/v1/push/subscriptions", { endpoint, keys })).status, endpoint).toBe(201);
  });

  it("takes only https push endpoints and well-formed keys", async () => {
    const { push, device } = await setup();
    const phone = await device("phone");
    const good = push.subscription();
    for (const bad of [
      { ...good, endpoint: good.endpoint.replace("https:", "http:") },
      { ...good, endpoint: "https://" },
      { ...good, keys: { ...good.keys, p256dh: "short" } },
      { ...good, keys: { p256dh: good.keys.p256dh } },
    ]) {
      const r = await phone.post("/v1/push/subscriptions", bad);
      expect(r.status, JSON.stringify(bad)).toBe(400);
      expect(r.json.error.code).toBe("VALIDATION_FAILED");
    }
  });
});

describe("push action tokens", () => {
  const grant = {
    sessionId: "s",
    requestId: "r",
    principal: "device:Zk3q9VwYb2Xr",
    signIn: undefined,
    options: { allow: "a" },
  };

  it("redeem once, expire with the request or after the longest life, and die with their request", () => {
    const clock = new ManualClock(1_000);
    const tokens = new PushActionTokens();
    const once = tokens.issue(grant, clock.now() + 60_000, clock.now());
    expect(tokens.redeem(once, clock.now())).toEqual(grant);
    expect(tokens.redeem(once, clock.now())).toBeUndefined();

    const expiring = tokens.issue(grant, clock.now() + 60_000, clock.now());
    clock.advance(60_000);
    expect(tokens.redeem(expiring, clock.now())).toBeUndefined();

    const capped = tokens.issue(grant, clock.now() + 10 * PUSH_ACTION_TTL_MAX_MS, clock.now());
    clock.advance(PUSH_ACTION_TTL_MAX_MS);
    expect(tokens.redeem(capped, clock.now())).toBeUndefined();

    const settled = tokens.issue(grant, clock.now() + 60_000, clock.now());
    const other = tokens.issue({ ...grant, requestId: "r2" }, clock.now() + 60_000, clock.now());
    tokens.settled("s", "r");
    expect(tokens.redeem(settled, clock.now())).toBeUndefined();
    expect(tokens.redeem(other, clock.now())).toMatchObject({ requestId: "r2" });
    expect(tokens.redeem("not a token", clock.now())).toBeUndefined();
    expect(tokens.size).toBe(0);
  });
});

describe("notification text", () => {
  const base = { seq: 1, ts: 0, runId: "r" };

  it("is one line of at most PUSH_LINE_CHARS, without controls or characters that reorder text", () => {
    const long = payloadOf("s", "id", {
      ...base,
      type: "chat.final",
      text: `x\n${"é".repeat(500)}\n\n`,
      stopReason: "end_turn",
    });
    expect(Array.from(long!.body)).toHaveLength(PUSH_LINE_CHARS);
    expect(long!.body.endsWith("…")).toBe(true);
    const hostile = payloadOf("s", "id", {
      ...base,
      type: "permission.request",
      requestId: "q",
      title: "run\u001b[31m rm\r\n-rf \u202Egnp.exe",
      options: [],
      expiresAt: 0,
    });
    expect(hostile!.body).toBe("run [31m rm -rf ?gnp.exe");
    expect(payloadOf("s", "id", { ...base, type: "exit", exitCode: null, signal: "SIGKILL" })!.body).toBe(
      "Killed by SIGKILL.",
    );
    expect(payloadOf("s", "id", { ...base, type: "chat.delta", text: "x" } as never)).toBeUndefined();
    const question = {
      ...base,
      type: "elicitation.request",
      requestId: "q",
      message: "Which\ndb?",
      expiresAt: 0,
    } as const;
    const form = { type: "object", properties: {} } as const;
    expect(payloadOf("s", "id", { ...question, mode: "form", requestedSchema: form }, "claude")).toEqual({
      reason: "elicitation",
      sessionId: "id",
      title: "s (claude) asks a question",
      body: "Which db?",
    });
    expect(payloadOf("s", "id", { ...question, mode: "url", url: "javascript:alert(1)" })!.body).toBe(
      "Which db? · opens a link that is not a web page",
    );
  });

  it("a permission request names the command or the files it would approve, bounded", () => {
    const ask = (title: string, toolCall: object) =>
      payloadOf("s", "id", {
        ...base,
        type: "permission.request",
        requestId: "q",
        title,
        toolCall,
        options: [],
        expiresAt: 0,
      })!.body;
    expect(ask("Run a command", { kind: "execute", rawInput: { command: ["bash", "-lc", "rm -rf build"] } })).toBe(
      "Run a command: $ rm -rf build",
    );
    // A title that names the file says enough.
    expect(ask("Edit src/a.ts", { kind: "edit", locations: [{ path: "src/a.ts" }] })).toBe("Edit src/a.ts");
    expect(
      ask("Write files", {
        content: [1, 2, 3].map((n) => ({ type: "diff", path: `f${n}.ts`, oldText: null, newText: "" })),
      }),
    ).toBe("Write files: f1.ts, f2.ts and 1 more");
    const long = ask("Run", { rawInput: { command: `echo ${"x".repeat(400)}\nrm -rf /` } });
    expect(Array.from(long)).toHaveLength(PUSH_LINE_CHARS);
    expect(long.startsWith("Run: $ echo xxx")).toBe(true);
  });
});
