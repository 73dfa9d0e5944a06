// The "credentials" lane (schedule.ts): a credential that streams on every transport — a
// `/v1/ws` subscription and a `/ws/session` terminal following a ticking PTY from 0, an SSE
// stream, a 16 MiB download read slowly — is signed out (a browser sign-in) or unpaired (a
// device) mid-stream; each connection is then timed until the gateway has closed it.
import { request } from "node:http";
import type { IncomingMessage } from "node:http";
import WebSocket from "ws";
import type { Rng } from "../../cluster/nemesis/workload.js";
import { sleep } from "../../cluster/nemesis/workload.js";
import { establishedByGateway } from "./server-socket.js";
import { HOSTILE_TOKENS } from "./targets.js";
import type { ActorInput, CredentialRecord, CutConnection } from "./targets.js";

/**
 * How long after the sign-out or revoke its connections are watched before they count as never
 * ended: past CUT_WITHIN_MS (checker.ts), with room to say by how much.
 */
const CUT_WATCH_MS = 1_500;
/**
 * How often the watch reads the kernel's socket table while a connection is still open on the
 * client's side. Each read costs ~6 ms of kernel CPU whatever the number of sockets (it walks
 * the whole hash table), so at 20 ms the watch itself took a third of a core from the gateway.
 */
const CUT_POLL_MS = 100;
/** How often the watch looks for closes the client saw. */
const CLIENT_POLL_MS = 10;
/** How long a connection may take to open before it counts as refused. */
const OPEN_MS = 3_000;
/** The download's reading pace: slow, so the gateway is mid-body when the credential ends. */
const DOWNLOAD_BYTES_PER_S = 2 * 1024 * 1024;

/**
 * The loopback address an action's requests come from: its own, so the refusals of ended
 * credentials (each counts toward an address's slowdown, AUTH_FAILURES_ALLOWED) do not slow down
 * the next actions' sign-ins and pairings.
 */
function addressOf(action: number): string {
  return `127.0.0.${10 + (action % 200)}`;
}

/** How a credential is presented: bearer token, or browser cookie and key. */
type Credential = { kind: "bearer"; token: string } | { kind: "cookie"; cookie: string; key: string };

function headersOf(c: Credential): Record<string, string> {
  return c.kind === "bearer"
    ? { authorization: `Bearer ${c.token}` }
    : { cookie: c.cookie, "x-switchboard-cookie-key": c.key };
}

/** One streaming connection of the credential, until it ends (or is dropped). */
interface Stream {
  transport: CutConnection["transport"];
  /** Resolves once it streams (true) or was refused (false). */
  opened: Promise<boolean>;
  localPort: number | undefined;
  endedAt: number | undefined;
  note: string;
  drop(): void;
}

function wsStream(input: ActorInput, c: Credential, from: string, transport: "v1-ws" | "ws-session"): Stream {
  const ticker = input.sessions.ticker;
  const path = transport === "v1-ws" ? "/v1/ws" : `/ws/session/${ticker}?since=0`;
  const url = input.url.replace(/^http/, "ws") + path;
  const ws =
    c.kind === "bearer"
      ? new WebSocket(url, { headers: headersOf(c), localAddress: from })
      : new WebSocket(url, ["switchboard.v1", `switchboard.cookie-key.${c.key}`], {
          headers: { cookie: c.cookie },
          localAddress: from,
        });
  const s: Stream = {
    transport,
    opened: new Promise((resolve) => {
      ws.once("open", () => resolve(true));
      ws.once("unexpected-response", (_req, res) => {
        s.note = `upgrade answered ${res.statusCode}`;
        res.resume();
        resolve(false);
      });
      ws.once("error", (error) => {
        s.note ||= error.message;
        resolve(false);
      });
    }),
    localPort: undefined,
    endedAt: undefined,
    note: "",
    drop: () => ws.terminate(),
  };
  ws.on("error", () => undefined);
  ws.once("upgrade", (res: IncomingMessage) => (s.localPort = res.socket.localPort));
  ws.on("message", (data: Buffer) => {
    if (transport !== "v1-ws") return;
    const frame = JSON.parse(data.toString()) as { op?: string };
    if (frame.op === "hello") ws.send(JSON.stringify({ op: "subscribe", session: ticker, since: 0, ref: "t" }));
  });
  ws.once("close", (code) => {
    s.endedAt = Date.now();
    s.note ||= `closed ${code}`;
  });
  return s;
}

/** An SSE stream of the ticker, or the big session's output read at DOWNLOAD_BYTES_PER_S. */
function httpStream(input: ActorInput, c: Credential, from: string, transport: "sse" | "download"): Stream {
  const path =
    transport === "sse"
      ? `/v1/sessions/${input.sessions.ticker}/stream?since=0${c.kind === "cookie" ? `&cookieKey=${c.key}` : ""}`
      : `/v1/sessions/${input.sessions.big}/transcript?format=raw`;
  const headers = transport === "sse" && c.kind === "cookie" ? { cookie: c.cookie } : headersOf(c);
  const req = request(input.url + path, { headers, agent: false, localAddress: from });
  const s: Stream = {
    transport,
    opened: new Promise((resolve) => {
      req.once("response", (res) => {
        if (res.statusCode !== 200) {
          s.note = `answered ${res.statusCode}`;
          res.resume();
          resolve(false);
          return;
        }
        resolve(true);
        const started = Date.now();
        let received = 0;
        res.on("data", (chunk: Buffer) => {
          received += chunk.length;

          if (transport !== "download") return;
          const ahead = received / DOWNLOAD_BYTES_PER_S - (Date.now() - started) / 1000;
          if (ahead > 0) {
            res.pause();
            setTimeout(() => res.resume(), ahead * 1000).unref();
          }
        });
        res.once("close", () => {
          s.endedAt = Date.now();
          s.note ||= `${res.complete ? "complete" : "cut"} after ${(received / 2 ** 20).toFixed(1)} MiB`;
        });
      });
      req.once("error", (error) => {
        s.note ||= error.message;
        s.endedAt ??= Date.now();
        resolve(false);
      });
    }),
    localPort: undefined,
    endedAt: undefined,
    note: "",
    drop: () => req.destroy(),
  };
  req.once("socket", (socket) => socket.once("connect", () => (s.localPort = socket.localPort)));
  req.end();
  return s;
}

/** One request from `from`; resolves with its status, JSON body and cookie. */
function call(
  input: ActorInput,
  from: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<{ status: number; json: any; setCookie: string }> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(input.url + path, {
      method,
      headers: { ...headers, ...(text !== undefined ? { "content-type": "application/json" } : {}) },
      localAddress: from,
      agent: false,
      timeout: 10_000,
    });
    req.once("timeout", () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
    req.once("error", reject);
    req.once("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.once("end", () => {
        const answer = Buffer.concat(chunks).toString();
        resolve({
          status: res.statusCode ?? 0,
          json: answer.startsWith("{") ? JSON.parse(answer) : {},
          setCookie: (res.headers["set-cookie"]?.[0] ?? "").split(";")[0]!,
        });
      });
    });
    req.end(text);
  });
}

/** A fresh credential to end later, and how to end it. */
async function credentialFor(
  input: ActorInput,
  from: string,
  how: CredentialRecord["how"],
  name: string,
): Promise<{ credential: Credential; end: () => Promise<number> }> {
  const admin = { authorization: `Bearer ${input.admin}` };
  if (how === "sign-out") {
    const login = await call(input, from, "POST", "/v1/login", {}, { token: HOSTILE_TOKENS.trudy });
    if (login.status !== 200) throw new Error(`login answered ${login.status}`);
    const credential: Credential = { kind: "cookie", cookie: login.setCookie, key: login.json.cookieKey as string };
    return {
      credential,
      end: async () => (await call(input, from, "POST", "/v1/logout", headersOf(credential), {})).status,
    };
  }
  const made = await call(input, from, "POST", "/v1/devices/pairings", admin, {
    name,
    role: "viewer",
    sessions: ["hostile-*"],
  });
  if (made.status !== 201) throw new Error(`a pairing code answered ${made.status}`);
  const paired = await call(
    input,
    from,
    "POST",
    "/v1/pair",
    {},
    { code: made.json.code, signIn: how === "revoke-sign-in" },
  );
  if (paired.status !== 200) throw new Error(`pairing answered ${paired.status}`);
  const credential: Credential =
    how === "revoke-token"
      ? { kind: "bearer", token: paired.json.token as string }
      : { kind: "cookie", cookie: paired.setCookie, key: paired.json.cookieKey as string };
  const id = paired.json.device.id as string;
  return { credential, end: async () => (await call(input, from, "DELETE", `/v1/devices/${id}`, admin)).status };
}

export async function credentialMidstream(
  input: ActorInput,
  rng: Rng,
  action: number,
  kind: "sign-out-midstream" | "revoke-midstream",
): Promise<CredentialRecord> {
  const how: CredentialRecord["how"] =
    kind === "sign-out-midstream" ? "sign-out" : rng.int(0, 2) === 0 ? "revoke-sign-in" : "revoke-token";
  const from = addressOf(action);
  const { credential, end } = await credentialFor(input, from, how, `hostile-device-${action}-${rng.int(0, 1e9)}`);
  const streams = [
    wsStream(input, credential, from, "v1-ws"),
    wsStream(input, credential, from, "ws-session"),
    httpStream(input, credential, from, "sse"),
    httpStream(input, credential, from, "download"),
  ];
  const opened = await Promise.all(streams.map((s) => Promise.race([s.opened, sleep(OPEN_MS).then(() => false)])));
  await sleep(rng.int(300, 1_500));
  const asked = Date.now();
  const status = await end();
  const endedAt = Date.now();
  const gatewayPort = Number(new URL(input.url).port);
  // What the gateway ended while it handled the request counts as ended at once.
  const watched = streams.filter((s, i) => opened[i] && (s.endedAt === undefined || s.endedAt >= asked));
  const closedAt = new Map<Stream, number>();
  // A close the client saw counts at once; the socket table is read only for what it has not seen.
  let tableRead = -Infinity;
  for (let now = Date.now(); now <= endedAt + CUT_WATCH_MS; now = Date.now()) {
    for (const s of watched) if (!closedAt.has(s) && s.endedAt !== undefined) closedAt.set(s, s.endedAt);
    const pending = watched.filter((s) => !closedAt.has(s));
    if (pending.length === 0) break;
    if (now - tableRead >= CUT_POLL_MS) {
      tableRead = now;
      const open = establishedByGateway(
        gatewayPort,
        pending.flatMap((s) => (s.localPort !== undefined ? [s.localPort] : [])),
      );
      for (const s of pending) if (s.localPort === undefined || !open.has(s.localPort)) closedAt.set(s, now);
    }
    await sleep(CLIENT_POLL_MS);
  }
  const connections: CutConnection[] = streams.map((s, i) => {
    const state = !opened[i] ? "refused" : watched.includes(s) ? "open" : "ended-before";
    const at = closedAt.get(s);
    return {
      transport: s.transport,
      state,
      endedAfterMs: state !== "open" ? 0 : at === undefined ? null : Math.max(0, at - endedAt),
      ...(s.note !== "" ? { note: s.note } : {}),
    };
  });
  const whoamiAfter = (await call(input, from, "GET", "/v1/whoami", headersOf(credential))).status;
  for (const s of streams) s.drop();
  return { action, how, status, connections, whoamiAfter };
}
