import { expect } from "vitest";
import fc from "fast-check";
import WebSocket from "ws";
import { BINARY_OUTPUT_HEADER_BYTES } from "../../src/protocol/index.js";
import { api, TEST_TOKEN } from "../helpers/gateway.js";
import type { ChildGateway } from "../helpers/serve-child.js";

/**
 * Clients of a cluster that drop their connection at random moments and resume with `since` on
 * a random node, over `/v1/ws`, SSE and `/ws/session/:id`: what each rebuilds of a session must
 * be the session's events (or bytes) exactly, no duplicate and no gap.
 */

/** How long one client may take to reach a session's end before the run fails (self-stopping). */
const CLIENT_DEADLINE_MS = 40_000;
/** A connection that delivers nothing for this long fails the run (every session ends: its exit comes). */
const STALL_MS = 8_000;
/** A node that has not copied a session yet answers 404: the client tries again after this. */
const NOT_YET_MS = 20;

interface SeenEvent {
  seq: number;
  type: string;
  bytes?: Buffer;
}

/** One connection of a client: where, how, and when it is cut. */
export interface Step {
  node: number;
  /** Seq-based clients: `/v1/ws` or SSE; byte-based clients: `/ws/session/:id` json or binary output. */
  transport: "ws" | "sse" | "json" | "binary";
  /** Cut after this many deliveries (frames or SSE events)… */
  cut: number;
  /** …or this long after the first delivery, whichever comes first (so every connection moves the client on). */
  cutMs: number;
}

export interface Client {
  session: number;
  /** Seq-based (`/v1/ws` and SSE mixed) or byte-based (`/ws/session/:id`). */
  bytes: boolean;
  steps: Step[];
}

const stepOf = (transports: Step["transport"][]) =>
  fc.record({
    node: fc.integer({ min: 0, max: 2 }),
    transport: fc.constantFrom(...transports),
    cut: fc.integer({ min: 1, max: 12 }),
    cutMs: fc.integer({ min: 0, max: 400 }),
  });

/** 50 clients, each on one of `sessions` sessions. */
export function clientsArb(sessions: number): fc.Arbitrary<Client[]> {
  const client = fc.boolean().chain((bytes) =>
    fc.record({
      session: fc.integer({ min: 0, max: sessions - 1 }),
      bytes: fc.constant(bytes),
      steps: fc.array(stepOf(bytes ? ["json", "binary"] : ["ws", "sse"]), { minLength: 1, maxLength: 6 }),
    }),
  );
  return fc.array(client, { minLength: 50, maxLength: 50 });
}

function seen(event: { seq: number; type: string; data?: unknown; enc?: string }): SeenEvent {
  if (event.type !== "output") return { seq: event.seq, type: event.type };
  const data = event.data as string;
  return { seq: event.seq, type: "output", bytes: Buffer.from(data, event.enc === "base64" ? "base64" : "utf8") };
}

/**
 * A cut: after `step.cut` deliveries or `step.cutMs` after the first, whichever first. A
 * connection that delivers nothing for {@link STALL_MS} is cut too, and `stop` then throws.
 */
function cutter(step: Step, where: string, cut: () => void) {
  let count = 0;
  let timer: NodeJS.Timeout | undefined;
  let stalled = false;
  const stall = () =>
    setTimeout(() => {
      stalled = true;
      cut();
    }, STALL_MS);
  let stallTimer = stall();
  return {
    counted() {
      count++;
      clearTimeout(stallTimer);
      stallTimer = stall();
      timer ??= setTimeout(cut, step.cutMs);
      if (count >= step.cut) cut();
    },
    stop() {
      clearTimeout(timer);
      clearTimeout(stallTimer);
      if (stalled) throw new Error(`${where} (${step.transport}): nothing delivered for ${STALL_MS} ms`);
    },
  };
}

/**
 * The data of an SSE response's events, as they come (named events such as `reset` left out),
 * until the stream ends or `signal` aborts (the body is cancelled then: an abort alone did not
 * always end a pending read of it).
 */
export async function* sseEvents(res: Response, signal?: AbortSignal): AsyncGenerator<string> {
  const reader = res.body!.getReader();
  const cancel = () => void reader.cancel().catch(() => undefined);
  signal?.addEventListener("abort", cancel, { once: true });
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    let end;
    while ((end = text.indexOf("\n\n")) >= 0) {
      const message = text.slice(0, end);
      text = text.slice(end + 2);
      const data = message
        .split("\n")
        .filter((l) => l.startsWith("data: "))
        .map((l) => l.slice(6))
        .join("\n");
      if (data !== "" && !message.includes("event: ")) yield data;
    }
  }
  signal?.removeEventListener("abort", cancel);
}

/** SSE from `since` until cut or the stream's end; `ended` once the stream ended on its own. */
async function readSse(base: string, id: string, since: number, step: Step) {
  const abort = new AbortController();
  const out: SeenEvent[] = [];
  const cut = cutter(step, `SSE ${base} ${id} since=${since}`, () => abort.abort());
  try {
    const res = await fetch(`${base}/v1/sessions/${id}/stream?since=${since}`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
      signal: abort.signal,
    });
    if (res.status === 204) return { events: out, ended: true };
    expect(res.status, await errorOf(res)).toBe(200);
    for await (const data of sseEvents(res, abort.signal)) {
      // Nothing after the cut counts: the client dropped the connection there.
      if (abort.signal.aborted) return { events: out, ended: false };
      out.push(seen(JSON.parse(data) as { seq: number; type: string }));
      cut.counted();
    }
    return { events: out, ended: !abort.signal.aborted };
  } catch (error) {
    if (!abort.signal.aborted) throw error;
    return { events: out, ended: false };
  } finally {
    cut.stop();
  }
}

async function errorOf(res: Response): Promise<string> {
  return res.status === 200 ? "" : await res.clone().text();
}

/**
 * Resolves once `ws` closed (the client's cut, or the gateway's close); rejects on a refused
 * upgrade or a failed check, unless the client had cut the connection already (`cutDone`).
 */
function socketRun(
  ws: WebSocket,
  onMessage: (data: Buffer, binary: boolean) => void,
  cutDone: () => boolean,
): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.on("message", (data: Buffer, binary: boolean) => {
      try {
        onMessage(data, binary);
      } catch (error) {
        ws.terminate();
        reject(error as Error);
      }
    });
    ws.on("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => reject(new Error(`upgrade refused ${res.statusCode}: ${body}`)));
    });
    // Cut before the upgrade was answered (a resume waiting for the node's copy): not a failure.
    ws.on("error", (error) => (cutDone() ? resolve() : reject(error)));
    ws.on("close", () => resolve());
  });
}

/** A WebSocket for one step, cut as the step says; `run` resolves once it closed (see socketRun). */
function stepSocket(url: string, step: Step, where: string) {
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
  let cutDone = false;
  const cut = cutter(step, where, () => {
    cutDone = true;
    ws.terminate();
  });
  return {
    ws,
    cut,
    async run(onMessage: (data: Buffer, binary: boolean) => void): Promise<void> {
      try {
        // Nothing after the cut counts: the client dropped the connection there.
        await socketRun(
          ws,
          (data, binary) => cutDone || onMessage(data, binary),
          () => cutDone,
        );
      } finally {
        cut.stop();
      }
    },
  };
}

/** `/v1/ws` subscribe from `since` until cut or the session's end. */
async function readWs(base: string, id: string, since: number, step: Step) {
  const { ws, cut, run } = stepSocket(
    `${base.replace("http", "ws")}/v1/ws`,
    step,
    `/v1/ws ${base} ${id} since=${since}`,
  );
  const out: SeenEvent[] = [];
  let ended = false;
  await run((data) => {
    const frame = JSON.parse(data.toString()) as Record<string, unknown>;
    switch (frame["op"]) {
      case "hello":
        ws.send(JSON.stringify({ op: "subscribe", session: id, since, ref: 1 }));
        return;
      case "subscribed":
        expect(frame["from"]).toBe(since + 1);
        if (frame["end"] !== undefined) {
          ended = true;
          ws.terminate();
        }
        return;
      case "event":
      case "events": {
        const events = (frame["op"] === "event" ? [frame["event"]] : frame["events"]) as Array<{
          seq: number;
          type: string;
        }>;
        out.push(...events.map(seen));
        if (events.some((e) => e.type === "exit")) {
          ended = true;
          ws.terminate();
        }
        cut.counted();
        return;
      }
      default:
        throw new Error(`unexpected frame ${data.toString()}`);
    }
  });
  return { events: out, ended };
}

/** `/ws/session/:id?since=` from byte `since` until cut or the session's exit: the bytes, checked against their offsets. */
async function readTerminal(base: string, id: string, since: number, step: Step) {
  const output = step.transport === "binary" ? "&output=binary" : "";
  const { ws, cut, run } = stepSocket(
    `${base.replace("http", "ws")}/ws/session/${id}?since=${since}${output}`,
    step,
    `/ws/session ${base} ${id} since=${since}`,
  );
  const chunks: Buffer[] = [];
  let at = since;
  let ended = false;
  const take = (bytes: Buffer, offset: number) => {
    expect(offset, `output frame at ${offset}, the client is at ${at}`).toBe(at);
    chunks.push(bytes);
    at += bytes.length;
    cut.counted();
  };
  await run((data, binary) => {
    if (binary) {
      const view = new DataView(data.buffer, data.byteOffset, BINARY_OUTPUT_HEADER_BYTES);
      const offset = view.getUint32(1) * 2 ** 32 + view.getUint32(5);
      take(Buffer.from(data.subarray(BINARY_OUTPUT_HEADER_BYTES)), offset);
      return;
    }
    const frame = JSON.parse(data.toString()) as { type: string; data?: string; enc?: string; offset?: number };
    const bytes = () => Buffer.from(frame.data!, frame.enc === "base64" ? "base64" : "utf8");
    switch (frame.type) {
      case "replay": {
        // A JSON replay frame's offset is the byte after its data.
        const b = bytes();
        take(b, frame.offset! - b.length);
        return;
      }
      case "stdout":
      case "stderr":
        take(bytes(), frame.offset!);
        return;
      case "connected":
        expect(frame.offset).toBe(at);
        return;
      case "exit":
        ended = true;
        ws.terminate();
        return;
      default:
        throw new Error(`unexpected frame ${data.toString()}`);
    }
  });
  return { bytes: Buffer.concat(chunks), ended };
}

/** What one client rebuilt of its session. */
export interface Rebuilt {
  events: SeenEvent[];
  bytes: Buffer;
  connections: number;
}

/** Runs one client to its session's end, each step a connection to a node cut at its moment. */
export async function runClient(
  nodes: readonly ChildGateway[],
  id: string,
  client: Client,
  /** Set once another client of the run failed: this one stops too. */
  abandoned: () => boolean,
): Promise<Rebuilt> {
  const deadline = Date.now() + CLIENT_DEADLINE_MS;
  const events: SeenEvent[] = [];
  const chunks: Buffer[] = [];
  let offset = 0;
  let connections = 0;
  for (let i = 0; ; i++) {
    if (abandoned()) throw new Error("another client failed");
    if (Date.now() > deadline)
      throw new Error(`client of ${id} not at the end after ${CLIENT_DEADLINE_MS} ms (${connections} connections)`);
    const step = client.steps[i % client.steps.length]!;
    const base = nodes[step.node]!.url;
    const listed = await api(base).get(`/v1/sessions/${id}`);
    if (listed.status === 404) {
      await new Promise((resolve) => setTimeout(resolve, NOT_YET_MS));
      continue;
    }
    connections++;
    if (client.bytes) {
      const got = await readTerminal(base, id, offset, step);
      chunks.push(got.bytes);
      offset += got.bytes.length;
      if (got.ended) return { events, bytes: Buffer.concat(chunks), connections };
      continue;
    }
    const since = events.at(-1)?.seq ?? 0;
    const got = step.transport === "sse" ? await readSse(base, id, since, step) : await readWs(base, id, since, step);
    events.push(...got.events);
    if (got.ended || events.at(-1)?.type === "exit") {
      const bytes = Buffer.concat(events.flatMap((e) => (e.bytes ? [e.bytes] : [])));
      return { events, bytes, connections };
    }
  }
}

/** A session's whole output as its owner serves it, and its number of events. */
export async function wholeSession(base: string, id: string): Promise<{ bytes: Buffer; head: number }> {
  const res = await fetch(`${base}/v1/sessions/${id}/output?max=${8 * 1024 * 1024}`, {
    headers: { authorization: `Bearer ${TEST_TOKEN}` },
  });
  expect(res.status).toBe(200);
  const events = await api(base).get(`/v1/sessions/${id}/events?since=0&limit=1000`);
  const list = events.json.events as Array<{ seq: number }>;
  return { bytes: Buffer.from(await res.arrayBuffer()), head: list.at(-1)?.seq ?? 0 };
}
