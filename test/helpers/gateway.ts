import { startGateway } from "../../src/server/gateway.js";
import type { Gateway, GatewayOptions } from "../../src/server/gateway.js";
import { createLogger } from "../../src/server/ops/logger.js";
import { afterTest } from "./cleanup.js";
import { tempDir } from "./tmp.js";

export const TEST_TOKEN = "test-admin-token-0123456789abcdef";

/** A real gateway on 127.0.0.1:0 with a temp data dir, closed after the test. */
export async function testGateway(options: Partial<GatewayOptions> = {}): Promise<Gateway & { dataDir: string }> {
  const dataDir = options.dataDir ?? tempDir();
  const gateway = await startGateway({
    host: "127.0.0.1",
    port: 0,
    token: TEST_TOKEN,
    logger: createLogger({ level: "silent" }),
    ...options,
    dataDir,
  } as GatewayOptions);
  afterTest(() => gateway.close());
  return Object.assign(gateway, { dataDir });
}

/** A small HTTP client bound to one gateway and token. */
export function api(base: string, token: string = TEST_TOKEN) {
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(base + path, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      // Non-JSON bodies (raw output, metrics) are returned as text.
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json: json as any };
  };
  return {
    get: (path: string, headers?: Record<string, string>) => call("GET", path, undefined, headers),
    post: (path: string, body?: unknown, headers?: Record<string, string>) => call("POST", path, body ?? {}, headers),
    del: (path: string) => call("DELETE", path),
    call,
  };
}

/** A session as `POST /v1/sessions` answers it. */
export interface CreatedSession {
  id: string;
  pid: number;
  head: number;
  outputBytes: number;
  state: string;
  [key: string]: unknown;
}

/** Creates a session through `POST /v1/sessions` with `token` (the gateway's admin token by default); throws unless 201. */
export async function createSession(
  gw: Gateway,
  body: Record<string, unknown>,
  token: string = gw.token,
): Promise<CreatedSession> {
  const r = await api(gw.url, token).post("/v1/sessions", body);
  if (r.status !== 201) throw new Error(`POST /v1/sessions -> ${r.status} ${r.text}`);
  return r.json as CreatedSession;
}

/** A browser's sign-in (`POST /v1/login`): the `Cookie` header it sends, and the key that opens it. */
export interface BrowserSignIn {
  /** `sb_session=…`, as a browser sends it (to every port of the host). */
  cookie: string;
  /** The `cookieKey` the login answered. */
  key: string;
  /** Both, as the UI sends them over HTTP. */
  headers: Record<string, string>;
}

/** Signs in as a browser does (`POST /v1/login`); fails the test unless the gateway answers 200. */
export async function browserSignIn(base: string, token: string = TEST_TOKEN): Promise<BrowserSignIn> {
  const res = await fetch(`${base}/v1/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token }),
  });
  const body = (await res.json()) as { cookieKey?: unknown };
  if (res.status !== 200 || typeof body.cookieKey !== "string") {
    throw new Error(`POST /v1/login answered ${res.status}: ${JSON.stringify(body)}`);
  }
  const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0]!;
  return { cookie, key: body.cookieKey, headers: { cookie, "x-switchboard-cookie-key": body.cookieKey } };
}
