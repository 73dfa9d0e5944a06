/**
 * Trusted-proxy sign-in (`auth.trustedProxy`) with a real nginx in front on loopback: nginx
 * checks a password (auth_basic) and passes the user on in X-Remote-User, connecting to the
 * gateway from 127.0.0.2. The gateway takes that header from 127.0.0.2 only.
 */
import { request } from "node:http";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { ConfigInput } from "../../src/server/config/config.js";
import { parseConfig } from "../../src/server/config/config.js";
import { testGateway } from "../helpers/gateway.js";
import { startNginx } from "../helpers/nginx.js";

const PROXY_ADDRESS = "127.0.0.2";
const CONFIG: ConfigInput = {
  auth: {
    tokens: [],
    trustedProxy: {
      addresses: [PROXY_ADDRESS],
      userHeader: "X-Remote-User",
      roleMap: { alice: "operator", bob: { role: "viewer", sessions: ["shared-*"] } },
    },
  },
};
const PASSWORDS = "alice:{PLAIN}wonderland\nbob:{PLAIN}builder\ncarol:{PLAIN}nobody-mapped-me\n";

/** The gateway, and nginx in front of it asking for a password and naming the user to the gateway. */
async function proxiedGateway() {
  const gw = await testGateway({ config: parseConfig(CONFIG) });
  const port = new URL(gw.url).port;
  const nginx = await startNginx(
    `    location / {
      auth_basic "switchboard";
      auth_basic_user_file DIR/htpasswd;
      proxy_pass http://127.0.0.1:${port};
      proxy_bind ${PROXY_ADDRESS};
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Remote-User $remote_user;
    }`,
    { htpasswd: PASSWORDS },
  );
  return { gw, nginx };
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
}

/** A plain HTTP request from `localAddress` (any of 127.0.0.0/8), answered as status and JSON. */
function call(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: unknown; localAddress?: string } = {},
): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = request(
      url,
      {
        method: options.method ?? "GET",
        headers: { ...options.headers, ...(body ? { "content-type": "application/json" } : {}) },
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            // nginx's own pages (401) are HTML.
            json = text;
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe("trusted-proxy sign-in", () => {
  it("takes the user the proxy names, whatever user header the client sent it", async () => {
    const { nginx } = await proxiedGateway();
    const alice = await call(`${nginx.url}/v1/whoami`, {
      headers: { authorization: basic("alice", "wonderland"), "x-remote-user": "bob" },
    });
    expect(alice).toEqual({ status: 200, json: { name: "alice", role: "operator", id: "proxy:alice" } });
    const bob = await call(`${nginx.url}/v1/whoami`, { headers: { authorization: basic("bob", "builder") } });
    expect(bob.json).toEqual({ name: "bob", role: "viewer", id: "proxy:bob" });
    // nginx itself refuses a wrong password: nothing reaches the gateway.
    expect((await call(`${nginx.url}/v1/whoami`, { headers: { authorization: basic("alice", "x") } })).status).toBe(
      401,
    );
  });

  it("ignores the same header from any other address", async () => {
    const { gw } = await proxiedGateway();
    for (const localAddress of ["127.0.0.1", "127.0.0.3"]) {
      const direct = await call(`${gw.url}/v1/whoami`, { headers: { "x-remote-user": "alice" }, localAddress });
      expect({ localAddress, status: direct.status, code: direct.json.error?.code }).toEqual({
        localAddress,
        status: 401,
        code: "UNAUTHORIZED",
      });
    }
    // From the proxy's address, the header is the identity (what nginx relies on above).
    const fromProxy = await call(`${gw.url}/v1/whoami`, {
      headers: { "x-remote-user": "alice" },
      localAddress: PROXY_ADDRESS,
    });
    expect(fromProxy.json).toEqual({ name: "alice", role: "operator", id: "proxy:alice" });
  });

  it("refuses a user the role map does not name, saying where to add it", async () => {
    const { nginx } = await proxiedGateway();
    const carol = await call(`${nginx.url}/v1/whoami`, {
      headers: { authorization: basic("carol", "nobody-mapped-me") },
    });
    expect(carol.status).toBe(401);
    expect(carol.json.error.message).toContain("auth.trustedProxy.roleMap");
  });

  it("owns sessions as the proxy's user and keeps a viewer to its globs, over HTTP and a WebSocket through the proxy", async () => {
    const { nginx } = await proxiedGateway();
    const alice = { authorization: basic("alice", "wonderland") };
    const created = await call(`${nginx.url}/v1/sessions`, {
      method: "POST",
      headers: alice,
      body: { command: ["cat"], pty: true, name: "shared-notes" },
    });
    expect(created.status).toBe(201);
    expect(created.json.owner).toBe("alice");
    const bob = { authorization: basic("bob", "builder") };
    const refused = await call(`${nginx.url}/v1/sessions`, {
      method: "POST",
      headers: bob,
      body: { command: ["cat"] },
    });
    expect(refused.json.error.code).toBe("FORBIDDEN");

    const ws = new WebSocket(`${nginx.url.replace("http", "ws")}/v1/ws`, ["switchboard.v1"], { headers: bob });
    const frames: any[] = [];
    ws.on("message", (data) => frames.push(JSON.parse(data.toString())));
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    ws.send(JSON.stringify({ op: "subscribe", session: created.json.id, ref: "s1" }));
    const deadline = Date.now() + 10_000;
    while (!frames.some((f) => f.ref === "s1") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(frames.find((f) => f.ref === "s1")?.op).toBe("subscribed");
    ws.close();
  });

  it("refuses a config whose addresses are not IP addresses", () => {
    expect(() =>
      parseConfig({
        auth: {
          tokens: [],
          trustedProxy: { addresses: ["proxy.local"], userHeader: "X-User", roleMap: { "*": "viewer" } },
        },
      }),
    ).toThrow(/an IP address/);
  });
});
