/**
 * Structure-aware fuzzing of a gateway in a child process (so a crash is an observed exit):
 * frames, bodies and query strings generated from the zod schemas of src/protocol by walking
 * them (test/security/schema-arbitrary.ts) — the right shapes with wrong, deep, huge and hostile
 * values in every field — sent over /v1/ws, /ws/session, HTTP bodies, HTTP and SSE query
 * strings, by two callers with no right to change what they aim at (`mallory`, an operator who
 * sees only her own stream session, and `vera`, a viewer of bob's sessions). Holds: the process
 * never exits, every refusal is a documented code with its documented status (never INTERNAL),
 * and no session's list entry, log, output or control holder changes.
 *
 * CI runs a fixed seed and a few hundred cases per transport (well under a minute). `npm run
 * fuzz` runs longer: FUZZ_RUNS (cases per transport), FUZZ_SECONDS (time limit per transport)
 * and FUZZ_SEED (default random) tune it.
 */
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  AbortBody,
  AppendEventsBody,
  ClientFrame,
  ContentBlock,
  ControlBody,
  CreateSession,
  ERROR_CODES,
  EventTypes,
  InputBody,
  LIMITS,
  PermissionBody,
  PromptBody,
  ResizeBody,
  SIGNALS,
  SignalBody,
  TerminalClientFrame,
  isErrorCode,
  textNestsDeeperThan,
} from "../../src/protocol/index.js";
import { ChildFrame, RUNTIME_METHODS, RUNTIME_PARAMS } from "../../src/plugins/ipc.js";
import { InboundMessageSchema } from "../../src/routing/index.js";
import type { Gateway } from "../../src/server/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";
import { TOKENS, authTokens, http } from "./helpers.js";
import type { Defer, Who } from "./helpers.js";
import { FuzzConnections, checkFrames, createTargets, errorBody, settledState, stateOf } from "./fuzz-kit.js";
import type { FrameJudge } from "./fuzz-kit.js";
import { encodeFuzzValue, fuzzValue, hostileValue } from "./schema-arbitrary.js";
import { waitFor } from "../helpers/wait-for.js";

const LONG = process.env["FUZZ_RUNS"] !== undefined || process.env["FUZZ_SECONDS"] !== undefined;
/** Cases per transport, and the time limit of each, in CI: the file stays well under a minute. */
const RUNS = Number(process.env["FUZZ_RUNS"] ?? 250);
const TIME_LIMIT_MS = Number(process.env["FUZZ_SECONDS"] ?? 6) * 1000;
const SEED = process.env["FUZZ_SEED"] !== undefined ? Number(process.env["FUZZ_SEED"]) : LONG ? Date.now() : 34;
const TEST_TIMEOUT_MS = TIME_LIMIT_MS + 30_000;
const FUZZERS = ["mallory", "vera"] as const satisfies readonly Who[];
type Fuzzer = (typeof FUZZERS)[number];

const stats = {
  cases: { mux: 0, terminal: 0, body: 0, query: 0, ipc: 0 },
  codes: new Map<string, number>(),
  closes: new Map<number, number>(),
  problems: [] as string[],
};
const count = <K>(map: Map<K, number>, key: K) => map.set(key, (map.get(key) ?? 0) + 1);

function fail(problem: string): never {
  stats.problems.push(problem);
  throw new Error(problem);
}

/** A refusal must carry a documented code, not INTERNAL, with its documented HTTP status. */
function checkRefusal(code: unknown, status: number | undefined, where: string, message: unknown): void {
  if (typeof code !== "string" || !isErrorCode(code)) fail(`${where}: undocumented code ${JSON.stringify(code)}`);
  count(stats.codes, code);
  if (code === "INTERNAL") fail(`${where}: INTERNAL (${String(message).slice(0, 200)})`);
  if (status !== undefined && ERROR_CODES[code].status !== status)
    fail(`${where}: ${code} with status ${status}, documented ${ERROR_CODES[code].status}`);
}

/* ---------- the gateway (a child process) and its sessions ---------- */

let child: ChildGateway;
let gw: Gateway;
let exit: string | undefined;
const ids = { adminTerm: "", bobTerm: "", bobStream: "", mallory: "" };
let before = "";
const cleanups: Array<() => unknown> = [];
const defer: Defer = (fn) => void cleanups.push(fn);

function alive(where: string): void {
  if (exit !== undefined) fail(`${where}: the gateway process ${exit}`);
}

// Made here, not in beforeAll: its removal then runs after the afterAll below has stopped the
// gateway, which otherwise could still write into it (a full run left it behind).
const dataDir = tempDir();

beforeAll(async () => {
  const config = join(dataDir, "config.json");
  // Each fuzzing plugin is a copy of the fixture beside its own frames (a plugin's config is too small for them).
  const plugins = Object.fromEntries(
    pluginFrames().map((frames, i) => {
      const dir = join(dataDir, `ipc-fuzz-${i}`);
      mkdirSync(dir);
      copyFileSync(join(IPC_FUZZ_PLUGIN, "index.mjs"), join(dir, "index.mjs"));
      writeFileSync(join(dir, "frames.mjs"), `export const frames = ${JSON.stringify(frames)};\n`);
      return [`ipc-fuzz-${i}`, { path: dir }];
    }),
  );
  writeFileSync(config, JSON.stringify({ auth: { tokens: authTokens() }, plugins: { entries: plugins } }));
  child = await serveInChild({ dataDir, config, token: TOKENS.admin, defer });
  child.child.once("exit", (code, signal) => (exit = `exited with ${signal ?? code}`));
  gw = { url: child.url } as Gateway;
  Object.assign(ids, await createTargets(gw));
  await http(gw, "bob").post(`/v1/sessions/${ids.bobTerm}/control`, { action: "acquire" });
  await http(gw, "bob").post(`/v1/sessions/${ids.bobTerm}/input`, { data: "bob\n" });
  await http(gw, "bob").post(`/v1/sessions/${ids.bobStream}/events`, [{ type: "note", data: { n: 1 } }]);
  before = await settledState(gw, ["bob\\r\\nbob"]);
}, 60_000);

afterAll(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

/* ---------- generators ---------- */

const targetIds = () => [ids.adminTerm, ids.bobTerm, ids.bobStream, ids.mallory];
/** Session ids that exist (so a value gets past the lookup), sometimes hostile ones. */
const sessionId = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 3 }).map((i) => targetIds()[i]!) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);
const OVERRIDES = {
  session: sessionId,
  // Prompt content kept to a few blocks of short text: 65-70 blocks of 256 KiB text each (the
  // generic bounds) made 15 MB frames whose generation alone took the run's time.
  content: fc.array(fuzzValue(ContentBlock, { overrides: { text: fc.string({ maxLength: 40 }) } }), { maxLength: 4 }),
  signal: fc.constantFrom<unknown>(...SIGNALS, "sigint", "BOGUS"),
  types: fc.array(fc.constantFrom("output", "exit", "control", "input", "nope"), { maxLength: 4 }),
};

/** Whether `text` is a frame or body `schema` accepts (never parsing a value too deep to check safely). */
function accepts(schema: z.ZodType, text: string): boolean {
  if (textNestsDeeperThan(text, LIMITS.JSON_DEPTH)) return false;
  try {
    return schema.safeParse(JSON.parse(text)).success;
  } catch {
    // Not JSON (a lone surrogate is still JSON): refused before the schema.
    return false;
  }
}

const params = (numRuns: number) => ({
  numRuns,
  seed: SEED,
  interruptAfterTimeLimit: TIME_LIMIT_MS,
  markInterruptAsFailure: false,
  maxSkipsPerRun: 1000,
  endOnFailure: true,
});

/* ---------- WebSocket ---------- */

const connections = new FuzzConnections(() => gw, defer);
const judge: FrameJudge = {
  refusal: (code, message, where) => checkRefusal(code, undefined, where, message),
  closed: (code) => count(stats.closes, code),
  fail,
};

const muxCase = fc.record({
  who: fc.constantFrom<Fuzzer>(...FUZZERS),
  text: fuzzValue(ClientFrame, { overrides: OVERRIDES }).map(encodeFuzzValue),
});

let pingT = 1e12;
async function runMux(c: { who: Fuzzer; text: string }): Promise<void> {
  if (accepts(ClientFrame, c.text)) {
    const frame = ClientFrame.parse(JSON.parse(c.text));
    // Valid steering of mallory's own session is no bad input.
    if (c.who === "mallory" && "session" in frame && frame.session === ids.mallory)
      fc.pre(["subscribe", "unsubscribe", "ping"].includes(frame.op));
  }
  const client = await connections.mux(c.who);
  stats.cases.mux++;
  const from = client.frames.length;
  client.ws.send(c.text);
  const t = ++pingT;
  if (client.ws.readyState === client.ws.OPEN) client.send({ op: "ping", t });
  await client
    .waitFor((f) => f["op"] === "pong" && f["t"] === t, "pong", from, 15_000)
    .catch((error: unknown) => {
      if (client.closeCode === undefined)
        fail(`/v1/ws ${c.who}: no answer (${(error as Error).message.slice(0, 200)})`);
    });
  alive(`/v1/ws ${c.who}`);
  const valid = accepts(ClientFrame, c.text);
  const allowed = new Set(["pong", "subscribed", "event", "events", "reset", ...(valid ? ["ack"] : [])]);
  checkFrames(
    client.frames.slice(from),
    client.closeCode,
    allowed,
    "op",
    `/v1/ws ${c.who} ${c.text.slice(0, 80)}`,
    judge,
  );
}

const terminalCase = fc.record({
  who: fc.constantFrom<Fuzzer>(...FUZZERS),
  text: fuzzValue(TerminalClientFrame, { overrides: OVERRIDES }).map(encodeFuzzValue),
});

async function runTerminal(c: { who: Fuzzer; text: string }): Promise<void> {
  // mallory writes to her own stream session (which takes no input); vera to bob's terminal (she may only watch).
  const session = c.who === "mallory" ? ids.mallory : ids.bobTerm;
  const client = await connections.terminal(c.who, session);
  stats.cases.terminal++;
  const from = client.frames.length;
  const pongs = () => client.frames.filter((f) => f["type"] === "pong").length;
  const pongsBefore = pongs();
  const extra = accepts(TerminalClientFrame, c.text) && JSON.parse(c.text).type === "ping" ? 1 : 0;
  client.ws.send(c.text);
  if (client.ws.readyState === client.ws.OPEN) client.send({ type: "ping" });
  await client
    .until(() => pongs() >= pongsBefore + 1 + extra, "pong", 15_000)
    .catch((error: unknown) => {
      if (client.closeCode === undefined) fail(`/ws/session ${c.who}: no answer (${(error as Error).message})`);
    });
  alive(`/ws/session ${c.who}`);
  checkFrames(client.frames.slice(from), client.closeCode, new Set(["pong"]), "type", `/ws/session ${c.who}`, judge);
}

/* ---------- HTTP bodies ---------- */

interface BodyRoute {
  method: string;
  path: string;
  schema: z.ZodType;
}
const BODY_ROUTES: BodyRoute[] = [
  { method: "POST", path: "/v1/sessions", schema: CreateSession },
  { method: "POST", path: "/v1/sessions/:id/input", schema: InputBody },
  { method: "POST", path: "/v1/sessions/:id/signal", schema: SignalBody },
  { method: "POST", path: "/v1/sessions/:id/resize", schema: ResizeBody },
  { method: "POST", path: "/v1/sessions/:id/control", schema: ControlBody },
  { method: "POST", path: "/v1/sessions/:id/events", schema: AppendEventsBody },
  { method: "POST", path: "/v1/sessions/:id/prompt", schema: PromptBody },
  { method: "POST", path: "/v1/sessions/:id/abort", schema: AbortBody },
  { method: "POST", path: "/v1/sessions/:id/permission", schema: PermissionBody },
  { method: "POST", path: "/v1/messages", schema: InboundMessageSchema },
  { method: "POST", path: "/v1/login", schema: z.strictObject({ token: z.string().min(1).max(512) }) },
];

const bodyCase = fc.constantFrom(...BODY_ROUTES).chain((route) =>
  fc.record({
    who: fc.constantFrom<Fuzzer>(...FUZZERS),
    route: fc.constant(route),
    id: sessionId,
    body: fuzzValue(route.schema, { overrides: OVERRIDES }).map(encodeFuzzValue),
  }),
);

/** Sends a request; fails the property when the gateway does not answer. */
async function request(where: string, url: string, init: RequestInit, sse = false): Promise<void> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 15_000);
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: controller.signal });
  } catch (error) {
    alive(where);
    fail(`${where}: no answer (${(error as Error).message})`);
  } finally {
    clearTimeout(timer);
  }
  if (res.status >= 200 && res.status < 300) {
    if (sse && res.headers.get("content-type")?.startsWith("text/event-stream")) controller.abort();
    else await res.arrayBuffer();
    if (init.method !== "GET") fail(`${where}: accepted with ${res.status}`);
    return;
  }
  const text = await res.text();
  // Node's own answer to a request line and headers over 16 KiB (docs/protocol.md): no body.
  if (res.status === 431 && text === "") {
    count(stats.codes, "431 (request head too large)");
    return;
  }
  const error = errorBody(text, res.status, where, fail);
  checkRefusal(error.code, res.status, where, error.message);
}

async function runBody(c: { who: Fuzzer; route: BodyRoute; id: string; body: string }): Promise<void> {
  const own = c.who === "mallory" && c.id === ids.mallory;
  // A valid write mallory may make (her session, a new session) is not a bad input.
  if (accepts(c.route.schema, c.body)) fc.pre(c.who === "vera" || (!own && c.route.path.includes(":id")));
  stats.cases.body++;
  const where = `${c.who} ${c.route.method} ${c.route.path} ${c.body.slice(0, 80)}`;
  await request(where, `${gw.url}${c.route.path.replace(":id", encodeURIComponent(c.id))}`, {
    method: c.route.method,
    headers: { authorization: `Bearer ${TOKENS[c.who]}`, "content-type": "application/json" },
    body: c.body,
  });
  alive(where);
}

/* ---------- HTTP and SSE query strings ---------- */

/** A query value: what its schema would take (a `types` list, a number), or a hostile value as text. */
const queryValue = fc.oneof(
  fuzzValue(EventTypes).map((v) => (Array.isArray(v) ? v.join(",") : encodeFuzzValue(v))),
  fc.oneof(fc.nat(), fc.integer({ min: -5, max: 1e9 })).map(String),
  hostileValue.map((v) => (typeof v === "string" ? v : encodeFuzzValue(v))),
  fc.constantFrom("99999999999999999999", "1e999", "-0", "0x10", " 1", "1 ", "%", "%zz"),
);
const QUERY_ROUTES = [
  "/v1/sessions",
  "/v1/sessions/:id",
  "/v1/sessions/:id/events",
  "/v1/sessions/:id/output",
  "/v1/sessions/:id/stream",
];
const queryCase = fc.record({
  who: fc.constantFrom<Fuzzer>(...FUZZERS),
  path: fc.constantFrom(...QUERY_ROUTES),
  id: sessionId,
  query: fc.array(
    fc.tuple(
      fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom("since", "limit", "types", "state", "cookieKey", "output", "follow") },
        { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
      ),
      queryValue,
    ),
    { maxLength: 4 },
  ),
  lastEventId: fc.option(fc.oneof(fc.nat().map(String), fc.string({ maxLength: 20 })), { freq: 5 }),
});

async function runQuery(c: {
  who: Fuzzer;
  path: string;
  id: string;
  query: Array<[string, string]>;
  lastEventId: string | null;
}): Promise<void> {
  stats.cases.query++;
  const qs = new URLSearchParams(c.query).toString();
  const path = c.path.replace(":id", encodeURIComponent(c.id));
  const where = `${c.who} GET ${path}?${qs.slice(0, 120)}`;
  const lastEventId = c.lastEventId !== null ? { "last-event-id": c.lastEventId.replace(/[\r\n]/g, "") } : {};
  await request(
    where,
    `${gw.url}${path}${qs ? `?${qs}` : ""}`,
    { method: "GET", headers: { authorization: `Bearer ${TOKENS[c.who]}`, ...lastEventId } },
    c.path.endsWith("/stream"),
  );
  alive(where);
}

/* ---------- plugin IPC frames ---------- */

const IPC_FUZZ_PLUGIN = resolve("test/security/fixtures/ipc-fuzz");
/** Plugins started with frames of their own, and frames each: in the plugins' config, so generated before the gateway starts. */
const IPC_PLUGINS = LONG ? 16 : 4;
const IPC_FRAMES = LONG ? 400 : 60;
/** Frames up to the plugin frame limit (1 MiB, `limits.frameBytes` of plugins) and a little past it. */
const IPC_FRAME_CHARS = 1_200_000;

/** A frame a plugin may write: a request of any runtime method with params shaped by its schema, or any other frame. */
const ipcFrame = fc.oneof(
  fc.constantFrom(...RUNTIME_METHODS).chain((method) =>
    fc.record({
      t: fc.constant("req"),
      id: fc.nat(),
      method: fc.constant(method),
      params: fuzzValue(RUNTIME_PARAMS[method]),
    }),
  ),
  fuzzValue(ChildFrame),
);

/**
 * Each plugin's frames: those of a valid shape first (each is handled and the plugin goes on),
 * then one the host refuses, which ends the plugin as a protocol violation (and again after each
 * restart, until it is left failed).
 */
function pluginFrames(): string[][] {
  const texts = fc
    .sample(ipcFrame, { numRuns: IPC_PLUGINS * IPC_FRAMES, seed: SEED })
    .map(encodeFuzzValue)
    .filter((text) => text.length <= IPC_FRAME_CHARS);
  // A `fatal` frame is the plugin's own word that it failed (kept as its lastError): no input to judge.
  const valid = texts.filter((t) => accepts(ChildFrame, t) && (JSON.parse(t) as { t: unknown }).t !== "fatal");
  const refused = texts.filter((t) => !accepts(ChildFrame, t));
  stats.cases.ipc = valid.length + Math.min(refused.length, IPC_PLUGINS);
  return Array.from({ length: IPC_PLUGINS }, (_, i) => [
    ...valid.filter((_, j) => j % IPC_PLUGINS === i),
    ...(refused[i] !== undefined ? [refused[i]] : []),
  ]);
}

/* ---------- the suite ---------- */

describe("structure-aware fuzzing of a gateway in a child process", () => {
  it(
    "answers /v1/ws frames shaped by ClientFrame with documented errors, and lives",
    async () => {
      await fc.assert(fc.asyncProperty(muxCase, runMux), params(RUNS));
      expect(stats.cases.mux).toBeGreaterThan(50);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "answers /ws/session frames shaped by TerminalClientFrame with documented errors, and lives",
    async () => {
      await fc.assert(fc.asyncProperty(terminalCase, runTerminal), params(RUNS));
      expect(stats.cases.terminal).toBeGreaterThan(50);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "answers HTTP bodies shaped by every body schema with documented errors, and lives",
    async () => {
      await fc.assert(fc.asyncProperty(bodyCase, runBody), params(RUNS));
      expect(stats.cases.body).toBeGreaterThan(50);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "answers HTTP and SSE query strings with documented errors or reads, and lives",
    async () => {
      await fc.assert(fc.asyncProperty(queryCase, runQuery), params(RUNS));
      expect(stats.cases.query).toBeGreaterThan(50);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "ends a plugin whose IPC frames it refuses as a protocol violation, handles the rest, and lives",
    async () => {
      const admin = http(gw, "admin");
      const settled = await waitFor(
        async () => {
          alive("plugin IPC");
          const list = (await admin.get("/v1/plugins")).json.plugins as Array<{
            id: string;
            state: string;
            lastError: string | null;
          }>;
          const done = (id: string) => child.log.some((l) => l["plugin"] === id && l["msg"] === "ipc-fuzz done");
          const ended = list.filter((p) => p.id.startsWith("ipc-fuzz-") && (p.lastError !== null || done(p.id)));
          return ended.length === IPC_PLUGINS ? ended : undefined;
        },
        60_000,
        "every fuzzing plugin to finish or be ended",
      );
      for (const plugin of settled) {
        if (plugin.lastError === null) continue;
        // A refusal names what was wrong; a plugin's runner may also give up on answers to
        // requests it never made (it exits). A host that tripped over a frame it had accepted is a bug.
        const outcome = /^(protocol violation|exited with)/.exec(plugin.lastError)?.[1];
        if (outcome === undefined) fail(`plugin ${plugin.id}: ended with ${plugin.lastError.slice(0, 200)}`);
        count(stats.codes, `plugin: ${outcome}`);
      }
      expect(stats.cases.ipc).toBeGreaterThan(IPC_PLUGINS);
    },
    TEST_TIMEOUT_MS + 60_000,
  );

  it("never exited, and changed no session's list entry, controller, log or output", async () => {
    await connections.closeAll();
    expect(exit).toBeUndefined();
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    const after = await stateOf(gw);
    console.log(
      [
        `schema fuzz (seed ${SEED}): ${JSON.stringify(stats.cases)}`,
        `schema fuzz: error codes ${JSON.stringify(Object.fromEntries([...stats.codes].sort((a, b) => b[1] - a[1])))}`,
        `schema fuzz: close codes ${JSON.stringify(Object.fromEntries(stats.closes))}`,
      ].join("\n"),
    );
    expect(stats.problems).toEqual([]);
    expect(after).toBe(before);
  }, 30_000);
});
