/**
 * `serve --tls-cert/--tls-key`: the gateway serves HTTPS and WSS itself (Node's TLS, HTTP/1.1)
 * with a self-signed certificate made for the test by openssl.
 */
import { request } from "node:https";
import { get as plainGet } from "node:http";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { TEST_TOKEN, testGateway } from "../helpers/gateway.js";
import { tempDir } from "../helpers/tmp.js";
import { serveInChild } from "../helpers/serve-child.js";
import { cli } from "../cli/helpers.js";
import { selfSigned } from "../helpers/self-signed.js";
import { EXIT } from "../../src/cli/exit-codes.js";

function httpsJson(
  url: string,
  ca: Buffer,
  options: { method?: string; headers?: Record<string, string>; body?: unknown } = {},
): Promise<{ status: number; headers: Record<string, unknown>; json: any }> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = request(
      url,
      {
        method: options.method ?? "GET",
        ca,
        headers: { ...options.headers, ...(body ? { "content-type": "application/json" } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            json: JSON.parse(Buffer.concat(chunks).toString()),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe("HTTPS", () => {
  it("serves the API, the cookie sign-in (Secure) and WebSockets over TLS", async () => {
    const { cert, key } = selfSigned();
    const gw = await testGateway({ tls: { cert, key } });
    expect(gw.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const auth = { authorization: `Bearer ${TEST_TOKEN}` };
    expect((await httpsJson(`${gw.url}/v1/whoami`, cert, { headers: auth })).json).toEqual({
      id: "token:admin",
      name: "admin",
      role: "admin",
    });

    const login = await httpsJson(`${gw.url}/v1/login`, cert, { method: "POST", body: { token: TEST_TOKEN } });
    expect(login.status).toBe(200);
    expect(String(login.headers["set-cookie"])).toMatch(/; Secure/);

    const created = await httpsJson(`${gw.url}/v1/sessions`, cert, {
      method: "POST",
      headers: auth,
      body: { command: ["sh", "-c", "echo over-tls; sleep 30"], pty: true },
    });
    expect(created.status).toBe(201);
    const ws = new WebSocket(`${gw.url.replace("https", "wss")}/v1/ws`, ["switchboard.v1"], {
      headers: auth,
      ca: cert,
    });
    const text: string[] = [];
    ws.on("message", (data) => {
      const frame = JSON.parse(data.toString());
      const events = frame.op === "events" ? frame.events : frame.op === "event" ? [frame.event] : [];
      for (const e of events) if (e.type === "output") text.push(String(e.data));
    });
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    ws.send(JSON.stringify({ op: "subscribe", session: created.json.id, since: 0 }));
    const deadline = Date.now() + 10_000;
    while (!text.join("").includes("over-tls") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(text.join("")).toContain("over-tls");
    ws.close();

    // Plain HTTP to the TLS port gets no answer of the API.
    const plain = await new Promise<string>((resolve) => {
      const req = plainGet(gw.url.replace("https", "http") + "/healthz", (res) => resolve(String(res.statusCode)));
      req.on("error", (error) => resolve((error as NodeJS.ErrnoException).code ?? "error"));
    });
    expect(plain).not.toBe("200");
  });

  it("serve --tls-cert/--tls-key listens on https; one without the other is a usage error", async () => {
    const { certFile, keyFile, cert } = selfSigned();
    const child = await serveInChild({
      dataDir: tempDir(),
      port: 0,
      args: ["--tls-cert", certFile, "--tls-key", keyFile],
    });
    expect(child.url).toMatch(/^https:\/\//);
    expect((await httpsJson(`${child.url}/healthz`, cert)).json).toEqual({ ok: true });
    const half = await cli(["serve", "--tls-cert", certFile, "--port", "0", "--data-dir", tempDir()], {});
    expect(half.code).toBe(EXIT.USAGE);
    expect(half.stderr).toContain("--tls-cert and --tls-key go together");
  });
});
