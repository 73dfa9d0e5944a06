/**
 * Fuzzing: fast-check drives one live gateway with malformed HTTP bodies on every
 * route and malformed WebSocket frames on /v1/ws and /ws/session, as two callers with no right
 * to steer what they aim at: `mallory` (an operator who sees only her own stream session and
 * sends it only invalid writes) and `vera` (a viewer of bob's `shared-*` sessions). Assertions:
 * the gateway stays up, every answer is a documented error code with its documented status (or
 * a read), and no session's state or log changes. The figures are printed and copied into
 * docs/security.md.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  AbortBody,
  AppendEventsBody,
  CLIENT_OPS,
  CLOSE_CODES,
  ClientFrame,
  ControlBody,
  CreateSession,
  ERROR_CODES,
  InputBody,
  PermissionBody,
  PromptBody,
  ResizeBody,
  SignalBody,
  TerminalClientFrame,
  isErrorCode,
} from "../../src/protocol/index.js";
import { InboundMessageSchema } from "../../src/routing/index.js";
import type { Gateway } from "../../src/server/gateway.js";
import { TOKENS, WsClient, http, secGateway } from "./helpers.js";
import type { Defer, Who } from "./helpers.js";
import { FuzzConnections, checkFrames, createTargets, errorBody, settledState, stateOf } from "./fuzz-kit.js";
import type { FrameJudge } from "./fuzz-kit.js";
import { waitFor } from "../helpers/wait-for.js";

/** Runs per property; with the time limits below the whole file stays well under a minute. */
const RUNS = { http: 1500, mux: 1500, terminal: 1000, upgrade: 300 } as const;
const TIME_LIMIT_MS = 12_000;
const FUZZERS = ["mallory", "vera"] as const satisfies readonly Who[];

const stats = {
  cases: { http: 0, mux: 0, terminal: 0, upgrade: 0 },
  crashes: 0,
  internalErrors: 0,
  unexpected: [] as string[],
  codes: new Map<string, number>(),
  closes: new Map<number, number>(),
  stateChanges: 0,
};
const count = <K>(map: Map<K, number>, key: K) => map.set(key, (map.get(key) ?? 0) + 1);

/** Records a refusal; returns a problem when it is not documented. */
function checkError(code: unknown, status: number | undefined, where: string): string | undefined {
  if (typeof code !== "string" || !isErrorCode(code)) return `${where}: undocumented code ${JSON.stringify(code)}`;
  count(stats.codes, code);
  if (code === "INTERNAL") stats.internalErrors++;
  if (code === "INTERNAL") return `${where}: INTERNAL`;
  if (status !== undefined && ERROR_CODES[code].status !== status)
    return `${where}: ${code} with status ${status}, documented ${ERROR_CODES[code].status}`;
  return undefined;
}

function fail(problem: string): never {
  stats.unexpected.push(problem);
  throw new Error(problem);
}

/* ---------- the gateway and its sessions ---------- */

let gw: Gateway;
const ids = { adminTerm: "", bobTerm: "", bobStream: "", mallory: "" };
let before = "";
const cleanups: Array<() => unknown> = [];
const defer: Defer = (fn) => void cleanups.push(fn);

/** Sessions whose info or log differ between two snapshots (plus any session added or removed). */
function changedSessions(a: string, b: string): number {
  const pa = JSON.parse(a) as { list: Array<{ id: string }>; logs: string[] };
  const pb = JSON.parse(b) as { list: Array<{ id: string }>; logs: string[] };
  let changed = Math.abs(pa.list.length - pb.list.length);
  pa.list.forEach((s, i) => {
    const t = pb.list[i];
    if (
      !t ||
      JSON.stringify(s) !== JSON.stringify(t) ||
      pa.logs[2 * i] !== pb.logs[2 * i] ||
      pa.logs[2 * i + 1] !== pb.logs[2 * i + 1]
    )
      changed++;
  });
  return changed;
}

beforeAll(async () => {
  gw = await secGateway({ defer });
  Object.assign(ids, await createTargets(gw));
  // Give every log something to lose.
  await http(gw, "admin").post(`/v1/sessions/${ids.adminTerm}/input`, { data: "admin\n" });
  await http(gw, "bob").post(`/v1/sessions/${ids.bobTerm}/input`, { data: "bob\n" });
  await http(gw, "bob").post(`/v1/sessions/${ids.bobStream}/events`, [
    { type: "output", data: { data: "bob's stream\n" } },
    { type: "note", data: { n: 1 } },
  ]);
  await http(gw, "mallory").post(`/v1/sessions/${ids.mallory}/events`, {
    type: "output",
    data: { data: "mallory's stream\n" },
  });
  before = await settledState(gw, ["bob\\r\\nbob", "admin\\r\\nadmin"]);
}, 30_000);

afterAll(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

/* ---------- generators ---------- */

const HUGE = { k200: "x".repeat(200_000), k300: "y".repeat(300 * 1024), m11: "z".repeat(1_100_000) };
const targetIds = () => [ids.adminTerm, ids.bobTerm, ids.bobStream, ids.mallory];
/** Ids as they go in a path: the four sessions, random strings, long ones, malformed escapes. */
const pathId = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 3 }).map((i) => targetIds()[i]!) },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }).map((s) => encodeURIComponent(s)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "x".repeat(300),
      "%00",
      "%E0%A4%A",
      "%",
      "a%2Fb",
      "..",
      "%2e%2e",
      "AAAAAAAAAAAAAAAAAAAAAA",
    ),
  },
);
/** Ids as they go in a frame: the four sessions or random strings. */
const frameId = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 3 }).map((i) => targetIds()[i]!) },
  { weight: 1, arbitrary: fc.string({ maxLength: 140 }) },
);

const FIELDS = [
  "data",
  "enc",
  "signal",
  "cols",
  "rows",
  "action",
  "force",
  "type",
  "text",
  "all",
  "requestId",
  "optionId",
  "command",
  "cwd",
  "env",
  "kind",
  "name",
  "pty",
  "token",
  "agent",
  "since",
  "types",
  "ref",
  "t",
  "session",
  "op",
];
const anyValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.string({ unit: "binary", maxLength: 50 }),
  fc.constantFrom(-1, 0, 1e308, Number.MAX_SAFE_INTEGER + 2, "", "INT", "acquire", "base64", "stream"),
);
const wrongTypes = fc.dictionary(fc.constantFrom(...FIELDS), anyValue, { maxKeys: 5 });

/** Invalid UTF-8 sequences: stray continuation bytes, overlongs, surrogates, truncations, 0xFF. */
const BAD_UTF8 = [
  [0xff],
  [0xfe, 0xff],
  [0x80],
  [0xc0, 0xaf],
  [0xe0, 0x80, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0xe2, 0x82],
  [0xf0, 0x9f],
];
const withBadUtf8 = fc
  .tuple(
    fc.oneof(
      fc.json({ maxDepth: 2 }),
      wrongTypes.map((o) => JSON.stringify(o)),
    ),
    fc.constantFrom(...BAD_UTF8),
    fc.nat(),
  )
  .map(([text, bad, at]) => {
    const bytes = Buffer.from(text, "utf8");
    const cut = bytes.length === 0 ? 0 : at % bytes.length;
    return Buffer.concat([bytes.subarray(0, cut), Buffer.from(bad), bytes.subarray(cut)]);
  });
const huge = fc.constantFrom(
  `{"data":"${HUGE.k200}"}`,
  `{"command":["${HUGE.k300}"]}`,
  `{"kind":"stream","name":"${HUGE.k200}"}`,
  `{"type":"x","data":"${HUGE.m11}"}`,
  `"${HUGE.k300}"`,
  `[${'{"type":"a"},'.repeat(1200)}{"type":"a"}]`,
);

/** Bodies: random JSON, wrong types, huge strings, invalid UTF-8, random bytes, nothing. */
const randomBody = fc.oneof(
  { weight: 40, arbitrary: fc.json({ maxDepth: 3 }).map((t) => Buffer.from(t)) },
  { weight: 50, arbitrary: wrongTypes.map((o) => Buffer.from(JSON.stringify(o))) },
  { weight: 20, arbitrary: fc.array(wrongTypes, { maxLength: 4 }).map((a) => Buffer.from(JSON.stringify(a))) },
  { weight: 20, arbitrary: withBadUtf8 },
  { weight: 10, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
  { weight: 10, arbitrary: fc.constant(Buffer.alloc(0)) },
  {
    weight: 10,
    arbitrary: fc
      .constantFrom("{", "[", "nul", '{"a":}', "1e999999", '"\\ud800"', '{"__proto__":{"x":1}}')
      .map((t) => Buffer.from(t)),
  },
  { weight: 8, arbitrary: huge.map((t) => Buffer.from(t)) },
);

/** One valid body of a route with one field changed, removed or added: the inputs closest to passing. */
function nearValid(examples: ReadonlyArray<Record<string, unknown> | unknown[]>): fc.Arbitrary<Buffer> {
  return fc
    .tuple(
      fc.constantFrom(...examples),
      fc.constantFrom("set", "delete", "add", "wrap"),
      fc.nat(),
      anyValue,
      fc.constantFrom(...FIELDS),
    )
    .map(([example, how, at, value, extra]) => {
      const copy = JSON.parse(JSON.stringify(example)) as Record<string, unknown>;
      const keys = Object.keys(copy);
      const key = keys[at % Math.max(1, keys.length)] ?? extra;
      if (how === "set") copy[key] = value;
      else if (how === "delete") delete copy[key];
      else if (how === "add") copy[keys.includes(extra) ? `${extra}_` : extra] = value;
      else return Buffer.from(JSON.stringify([copy, value]));
      return Buffer.from(JSON.stringify(copy));
    });
}
const contentType = fc.constantFrom<string | undefined>(
  "application/json",
  "application/json",
  "application/json; charset=utf-8",
  "APPLICATION/JSON",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/jsonp",
  undefined,
);

interface Route {
  method: string;
  path: string;
  /** Valid bodies, mutated by `nearValid`. */
  examples?: ReadonlyArray<Record<string, unknown> | unknown[]>;
  /** The body schema, to keep a valid write from reaching mallory's own session. */
  schema?: z.ZodType;
  /** Whether a valid call would change a session mallory may steer. */
  writes?: boolean;
}
const LOGIN = z.strictObject({ token: z.string().min(1).max(512) });
const ROUTES: Route[] = [
  {
    method: "POST",
    path: "/v1/sessions",
    schema: CreateSession,
    writes: true,
    examples: [
      { command: ["cat"], pty: true, cols: 80, rows: 24, env: { A: "b" }, cwd: "/tmp", name: "n" },
      { kind: "stream", name: "n" },
      { kind: "agent", agent: "echo" },
    ],
  },
  { method: "GET", path: "/v1/sessions" },
  { method: "GET", path: "/v1/sessions/:id" },
  { method: "DELETE", path: "/v1/sessions/:id", writes: true },
  { method: "GET", path: "/v1/sessions/:id/events" },
  { method: "GET", path: "/v1/sessions/:id/stream" },
  { method: "GET", path: "/v1/sessions/:id/output" },
  {
    method: "POST",
    path: "/v1/sessions/:id/input",
    schema: InputBody,
    writes: true,
    examples: [{ data: "x" }, { data: "eA==", enc: "base64" }],
  },
  { method: "POST", path: "/v1/sessions/:id/signal", schema: SignalBody, writes: true, examples: [{ signal: "INT" }] },
  {
    method: "POST",
    path: "/v1/sessions/:id/resize",
    schema: ResizeBody,
    writes: true,
    examples: [{ cols: 80, rows: 24 }],
  },
  {
    method: "POST",
    path: "/v1/sessions/:id/control",
    schema: ControlBody,
    writes: true,
    examples: [{ action: "acquire", force: true }],
  },
  {
    method: "POST",
    path: "/v1/sessions/:id/events",
    schema: AppendEventsBody,
    writes: true,
    examples: [
      { type: "output", data: { stream: "stdout", data: "x" } },
      [{ type: "note", data: 1 }],
      { type: "exit", data: { exitCode: 0 } },
    ],
  },
  { method: "POST", path: "/v1/sessions/:id/prompt", schema: PromptBody, writes: true, examples: [{ text: "hi" }] },
  { method: "POST", path: "/v1/sessions/:id/abort", schema: AbortBody, writes: true, examples: [{ all: true }] },
  {
    method: "POST",
    path: "/v1/sessions/:id/permission",
    schema: PermissionBody,
    writes: true,
    examples: [{ requestId: "r", optionId: "o" }],
  },
  // Token guessing is the auth limiter's business (limits.test.ts): valid logins are skipped.
  {
    method: "POST",
    path: "/v1/login",
    schema: LOGIN,
    writes: true,
    examples: [{ token: "sec-guess-0000000000000000" }],
  },
  { method: "POST", path: "/v1/logout" },
  { method: "GET", path: "/v1/whoami" },
  { method: "GET", path: "/metrics" },
  { method: "POST", path: "/v1/route", examples: [{ channel: "webhook", text: "hi" }] },
  {
    method: "POST",
    path: "/v1/messages",
    schema: InboundMessageSchema,
    writes: true,
    examples: [{ channel: "webhook", text: "hi", peer: { kind: "direct", id: "p" } }],
  },
  { method: "GET", path: "/v1/plugins" },
  { method: "GET", path: "/v1/plugins/:id" },
  { method: "POST", path: "/v1/plugins/:id/restart" },
  { method: "POST", path: "/v1/plugins/:id/http/hook" },
  { method: "PUT", path: "/v1/sessions/:id/input" },
  { method: "PATCH", path: "/v1/sessions" },
];

/** Whether the server would accept `bytes` under `schema`, decoding them as it does. */
function parses(schema: z.ZodType | undefined, bytes: Buffer): boolean {
  if (!schema) return true;
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString("utf8"));
  } catch {
    // Not JSON: the server refuses it before the schema.
    return false;
  }
  return schema.safeParse(value).success;
}

const query = fc.record(
  {
    since: fc.oneof(fc.nat(), fc.string({ maxLength: 20 }), fc.constant("99999999999999999999")),
    limit: fc.oneof(fc.integer({ min: -5, max: 20_000 }), fc.string({ maxLength: 10 })),
    types: fc.oneof(fc.constantFrom("output,exit", "control", ",,,"), fc.string({ maxLength: 30 })),
  },
  { requiredKeys: [] },
);

/** `null` 19 times in 20: a header that, when present, decides the answer on its own. */
const rarely = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | null> =>
  fc.oneof({ weight: 19, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });

const httpCase = fc.constantFrom(...ROUTES).chain((route) =>
  fc.record({
    who: fc.constantFrom(...FUZZERS),
    route: fc.constant(route),
    id: pathId,
    body: route.examples
      ? fc.oneof({ weight: 2, arbitrary: randomBody }, { weight: 1, arbitrary: nearValid(route.examples) })
      : randomBody,
    contentType,
    query,
    origin: rarely(fc.constantFrom("https://attacker.example", "null", "http://localhost:1")),
    lastEventId: rarely(fc.string({ maxLength: 20 })),
  }),
);

/* ---------- HTTP ---------- */

async function runHttp(c: typeof httpCase extends fc.Arbitrary<infer T> ? T : never): Promise<void> {
  const own = c.who === "mallory" && c.id === ids.mallory;
  const hasBody = c.route.method !== "GET" && c.route.method !== "DELETE";
  const path = c.route.path.replace(":id", c.id);
  if (
    c.route.writes &&
    (own || !c.route.path.includes(":id")) &&
    (c.route.method === "DELETE" || parses(c.route.schema, c.body))
  ) {
    // A valid write to something mallory may change (her session, a new session, a login) is not a bad input.
    fc.pre(c.who === "vera" && c.route.path !== "/v1/login");
  }
  const qs = new URLSearchParams(Object.entries(c.query).map(([k, v]) => [k, String(v)])).toString();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 10_000);
  stats.cases.http++;
  const where = `${c.who} ${c.route.method} ${c.route.path}`;
  let res: Response;
  try {
    res = await fetch(`${gw.url}${path}${c.route.method === "GET" && qs ? `?${qs}` : ""}`, {
      method: c.route.method,
      signal: controller.signal,
      headers: {
        authorization: `Bearer ${TOKENS[c.who]}`,
        ...(hasBody && c.contentType !== undefined ? { "content-type": c.contentType } : {}),
        ...(c.origin !== null ? { origin: c.origin } : {}),
        ...(c.lastEventId !== null ? { "last-event-id": c.lastEventId } : {}),
      },
      ...(hasBody ? { body: new Uint8Array(c.body) } : {}),
    });
  } catch (error) {
    stats.crashes++;
    fail(`${where}: no answer (${(error as Error).message})`);
  } finally {
    clearTimeout(timer);
  }
  if (res.status >= 200 && res.status < 300) {
    if (res.headers.get("content-type")?.startsWith("text/event-stream")) controller.abort();
    else await res.arrayBuffer();
    // Reads, dry-run routing and a logout with no cookie to revoke are the only successes a fuzzer may get.
    if (c.route.method !== "GET" && c.route.path !== "/v1/logout" && c.route.path !== "/v1/route")
      fail(`${where}: accepted with ${res.status}`);
    return;
  }
  const text = await res.text();
  const error = errorBody(text, res.status, where, fail);
  const problem = checkError(error.code, res.status, where);
  if (problem) fail(`${problem} (${error.message.slice(0, 200)})`);
}

/* ---------- WebSocket ---------- */

/** A WebSocket frame as sent: text (valid UTF-8), raw bytes as a text frame (maybe invalid UTF-8), or binary. */
type WsFrame = { kind: "text"; text: string } | { kind: "raw-text"; bytes: Buffer } | { kind: "binary"; bytes: Buffer };

function wsFrames(
  tag: "op" | "type",
  names: readonly string[],
  templates: (id: string) => fc.Arbitrary<Record<string, unknown>>,
): fc.Arbitrary<WsFrame> {
  const shaped = fc
    .tuple(fc.oneof(fc.constantFrom(...names), fc.string({ maxLength: 12 })), frameId, wrongTypes)
    .map(([name, session, fields]) => ({ ...fields, [tag]: name, ...(tag === "op" ? { session } : {}) }));
  return fc.oneof(
    { weight: 30, arbitrary: fc.json({ maxDepth: 3 }).map((text): WsFrame => ({ kind: "text", text })) },
    { weight: 50, arbitrary: shaped.map((o): WsFrame => ({ kind: "text", text: JSON.stringify(o) })) },
    {
      weight: 40,
      arbitrary: frameId.chain(templates).map((o): WsFrame => ({ kind: "text", text: JSON.stringify(o) })),
    },
    { weight: 20, arbitrary: withBadUtf8.map((bytes): WsFrame => ({ kind: "raw-text", bytes })) },
    {
      weight: 20,
      arbitrary: fc.uint8Array({ maxLength: 300 }).map((b): WsFrame => ({ kind: "binary", bytes: Buffer.from(b) })),
    },
    {
      weight: 10,
      arbitrary: fc.string({ unit: "binary", maxLength: 300 }).map((text): WsFrame => ({ kind: "text", text })),
    },
    {
      weight: 3,
      arbitrary: fc.constantFrom(HUGE.k200, HUGE.m11).map((big): WsFrame => ({
        kind: "text",
        text: JSON.stringify({ [tag]: tag === "op" ? "input" : "stdin", session: ids.bobTerm, data: big }),
      })),
    },
  );
}

/** Valid-looking /v1/ws frames for any session: steering other users' sessions is the point. */
const muxTemplates = (session: string) =>
  fc.oneof(
    fc.record({ op: fc.constant("input"), session: fc.constant(session), data: fc.string({ maxLength: 20 }) }),
    fc.record({
      op: fc.constant("signal"),
      session: fc.constant(session),
      signal: fc.constantFrom("INT", "KILL", "TERM", "sigstop", "BOGUS"),
    }),
    fc.record({
      op: fc.constant("resize"),
      session: fc.constant(session),
      cols: fc.integer({ min: -2, max: 3000 }),
      rows: fc.integer({ min: -2, max: 1200 }),
    }),
    fc.record({
      op: fc.constant("control"),
      session: fc.constant(session),
      action: fc.constantFrom("acquire", "release", "steal"),
      force: fc.boolean(),
    }),
    fc.record({
      op: fc.constantFrom("prompt", "abort", "permission", "subscribe", "unsubscribe"),
      session: fc.constant(session),
      text: fc.string({ maxLength: 10 }),
    }),
    fc.record({
      op: fc.constant("subscribe"),
      session: fc.constant(session),
      since: fc.integer({ min: -1, max: 100 }),
    }),
    fc.record({ op: fc.constant("mode"), session: fc.constant(session), modeId: fc.string({ maxLength: 10 }) }),
    fc.record({
      op: fc.constant("config"),
      session: fc.constant(session),
      configId: fc.constantFrom("model", "think", ""),
      value: fc.oneof(fc.string({ maxLength: 10 }), fc.boolean()),
    }),
  );

const terminalTemplates = () =>
  fc.oneof(
    fc.record({ type: fc.constant("stdin"), data: fc.oneof(fc.string({ maxLength: 20 }), anyValue) }),
    fc.record({ type: fc.constant("signal"), signal: fc.oneof(fc.constantFrom("INT", "KILL", "HUP"), anyValue) }),
    fc.record({
      type: fc.constant("resize"),
      cols: fc.integer({ min: -2, max: 3000 }),
      rows: fc.integer({ min: -2, max: 1200 }),
    }),
    fc.record({ type: fc.constant("ping") }, { requiredKeys: ["type"] }),
  );

const muxCase = fc.record({ who: fc.constantFrom(...FUZZERS), frame: wsFrames("op", CLIENT_OPS, muxTemplates) });
const terminalCase = fc.record({
  who: fc.constantFrom(...FUZZERS),
  frame: wsFrames("type", ["stdin", "signal", "resize", "ping"], terminalTemplates),
});

function sendFrame(client: WsClient, frame: WsFrame): void {
  if (frame.kind === "text") client.ws.send(frame.text);
  else client.ws.send(frame.bytes, { binary: frame.kind === "binary" });
}

function parsedFrame(frame: WsFrame): unknown {
  if (frame.kind !== "text") return undefined;
  try {
    return JSON.parse(frame.text);
  } catch {
    // Not JSON: certainly not a valid frame.
    return undefined;
  }
}

/** One open connection per fuzzing identity and endpoint, reopened after a documented close. */
const connections = new FuzzConnections(() => gw, defer);
const judge: FrameJudge = {
  refusal(code, message, where) {
    const problem = checkError(code, undefined, where);
    if (problem) fail(`${problem} (${String(message).slice(0, 200)})`);
  },
  closed(code) {
    count(stats.closes, code);
    if (code === CLOSE_CODES.INTERNAL || code === 1006) stats.crashes++;
  },
  fail,
};

let pingT = 1e12;
async function runMux(c: { who: (typeof FUZZERS)[number]; frame: WsFrame }): Promise<void> {
  const parsed = parsedFrame(c.frame);
  const valid = ClientFrame.safeParse(parsed);
  // A valid steering frame on mallory's own session is not a bad input.
  if (valid.success && c.who === "mallory" && "session" in valid.data && valid.data.session === ids.mallory) {
    fc.pre(["subscribe", "unsubscribe", "ping"].includes(valid.data.op));
  }
  const client = await connections.mux(c.who);
  stats.cases.mux++;
  const from = client.frames.length;
  sendFrame(client, c.frame);
  const t = ++pingT;
  if (client.ws.readyState === client.ws.OPEN) client.send({ op: "ping", t });
  await client
    .waitFor((f) => f["op"] === "pong" && f["t"] === t, "pong", from, 10_000)
    .catch((error: unknown) => {
      if (client.closeCode === undefined) {
        stats.crashes++;
        fail(`/v1/ws ${c.who}: no answer (${(error as Error).message.slice(0, 200)})`);
      }
    });
  // An ack is a success: only a valid unsubscribe (after a subscribe) may earn one.
  const allowed = new Set([
    "pong",
    "subscribed",
    "event",
    "events",
    "reset",
    ...(valid.success && valid.data.op === "unsubscribe" ? ["ack"] : []),
  ]);
  checkFrames(client.frames.slice(from), client.closeCode, allowed, "op", `/v1/ws ${c.who} ${c.frame.kind}`, judge);
}

async function runTerminal(c: { who: (typeof FUZZERS)[number]; frame: WsFrame }): Promise<void> {
  // mallory types into her own stream session (which takes no input); vera into bob's terminal (which she may only watch).
  const session = c.who === "mallory" ? ids.mallory : ids.bobTerm;
  const client = await connections.terminal(c.who, session);
  stats.cases.terminal++;
  const from = client.frames.length;
  const pongsBefore = client.frames.filter((f) => f["type"] === "pong").length;
  const extraPong = TerminalClientFrame.safeParse(parsedFrame(c.frame)).data?.type === "ping" ? 1 : 0;
  sendFrame(client, c.frame);
  if (client.ws.readyState === client.ws.OPEN) client.send({ type: "ping" });
  const pongs = () => client.frames.filter((f) => f["type"] === "pong").length;
  await client
    .until(() => pongs() >= pongsBefore + 1 + extraPong, "terminal pong", 10_000)
    .catch((error: unknown) => {
      // A close is judged below; silence on an open socket is a hang.
      if (client.closeCode === undefined) {
        stats.crashes++;
        fail(`/ws/session ${c.who}: no answer (${(error as Error).message})`);
      }
    });
  checkFrames(
    client.frames.slice(from),
    client.closeCode,
    new Set(["pong"]),
    "type",
    `/ws/session ${c.who} ${c.frame.kind}`,
    judge,
  );
}

const upgradeCase = fc.record({
  who: fc.constantFrom(...FUZZERS),
  // Malformed percent escapes in the path are left out: a known gap (ws-terminal.ts answers 500), tested on its own below.
  id: fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 0, max: 3 }).map((i) => targetIds()[i]!) },
    { weight: 2, arbitrary: fc.string({ maxLength: 40 }).map((s) => encodeURIComponent(s)) },
  ),
  since: fc.option(fc.oneof(fc.nat({ max: 100 }).map(String), fc.string({ maxLength: 20 }).map(encodeURIComponent)), {
    freq: 2,
  }),
  control: fc.option(fc.constantFrom("acquire", "force", "take", ""), { freq: 2 }),
});

async function runUpgrade(c: typeof upgradeCase extends fc.Arbitrary<infer T> ? T : never): Promise<void> {
  // Taking control of her own session is not a bad input.
  fc.pre(!(c.who === "mallory" && c.id === ids.mallory && (c.control === "acquire" || c.control === "force")));
  stats.cases.upgrade++;
  const query = [c.since !== null ? `since=${c.since}` : "", c.control !== null ? `control=${c.control}` : ""]
    .filter(Boolean)
    .join("&");
  const where = `upgrade ${c.who} ${query}`;
  try {
    const client = await WsClient.open(gw, `/ws/session/${c.id}${query ? `?${query}` : ""}`, c.who, { defer });
    await client.close();
    const visible =
      (c.who === "vera" && (c.id === ids.bobTerm || c.id === ids.bobStream)) ||
      (c.who === "mallory" && c.id === ids.mallory);
    if (!visible) fail(`${where}: opened a session it may not see`);
  } catch (error) {
    const refused = error as { status?: number; body?: string };
    if (refused.status === undefined) {
      stats.crashes++;
      fail(`${where}: ${(error as Error).message}`);
    }
    const code = (JSON.parse(refused.body ?? "{}") as { error?: { code?: unknown } }).error?.code;
    const problem = checkError(code, refused.status, where);
    if (problem) fail(problem);
  }
}

/* ---------- the suite ---------- */

const params = (numRuns: number) => ({
  numRuns,
  interruptAfterTimeLimit: TIME_LIMIT_MS,
  markInterruptAsFailure: false,
  maxSkipsPerRun: 1000,
  endOnFailure: true,
});

describe("fuzzing a live gateway", () => {
  it("answers malformed HTTP bodies on every route with documented errors", async () => {
    await fc.assert(fc.asyncProperty(httpCase, runHttp), params(RUNS.http));
    expect(stats.cases.http).toBeGreaterThan(200);
  }, 60_000);

  it("answers malformed /v1/ws frames with documented errors or documented closes", async () => {
    await fc.assert(fc.asyncProperty(muxCase, runMux), params(RUNS.mux));
    expect(stats.cases.mux).toBeGreaterThan(200);
  }, 60_000);

  it("answers malformed /ws/session frames and upgrades with documented errors", async () => {
    await fc.assert(fc.asyncProperty(terminalCase, runTerminal), params(RUNS.terminal));
    await fc.assert(fc.asyncProperty(upgradeCase, runUpgrade), params(RUNS.upgrade));
    expect(stats.cases.terminal).toBeGreaterThan(100);
    expect(stats.cases.upgrade).toBeGreaterThan(50);
  }, 60_000);

  it("stays up and changes no session's state or log", async () => {
    await connections.closeAll();
    // SSE readers and subscriptions end asynchronously: wait for the viewer counts to settle.
    await waitFor(
      async () =>
        ((await http(gw, "admin").get("/v1/sessions")).json.sessions as Array<{ viewers: number }>).every(
          (s) => s.viewers === 0,
        ),
      5_000,
      "viewers gone",
    );
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    const after = await stateOf(gw);
    stats.stateChanges = changedSessions(before, after);
    const total = stats.cases.http + stats.cases.mux + stats.cases.terminal + stats.cases.upgrade;
    console.log(
      [
        `fuzz: ${total} bad inputs tried (HTTP ${stats.cases.http}, /v1/ws ${stats.cases.mux}, /ws/session frames ${stats.cases.terminal}, /ws/session upgrades ${stats.cases.upgrade})`,
        `fuzz: crashes ${stats.crashes}, internal errors ${stats.internalErrors}, state changes ${stats.stateChanges}, undocumented answers ${stats.unexpected.length}`,
        `fuzz: error codes ${JSON.stringify(Object.fromEntries([...stats.codes].sort((a, b) => b[1] - a[1])))}`,
        `fuzz: close codes ${JSON.stringify(Object.fromEntries(stats.closes))}`,
      ].join("\n"),
    );
    expect(stats.crashes).toBe(0);
    expect(stats.internalErrors).toBe(0);
    expect(stats.unexpected).toEqual([]);
    expect(after).toBe(before);
    expect(stats.stateChanges).toBe(0);
  }, 30_000);
});

// GAP: ws-terminal.ts decodes the session id with a bare decodeURIComponent, so a malformed
// escape in the path throws a URIError before the upgrade and answers 500 INTERNAL (the HTTP
// router treats the same path as not found). Drop `.fails` once it answers 404.
describe("fuzzing: regressions of fixed gaps", () => {
  it("answers 404 to a /ws/session upgrade whose path has a malformed percent escape", async () => {
    await expect(WsClient.open(gw, "/ws/session/%E0%A4%A", "vera", { defer })).rejects.toMatchObject({ status: 404 });
  });
});
