// The clients of a nemesis run: producers that append unique values to stream sessions through
// random nodes, and viewers that follow sessions over /v1/ws, SSE and /ws/session, resuming on
// random nodes. Each records what it was told, for the checker (checker.ts), and nothing else.
import WebSocket from "ws";
import { NEMESIS_TOKEN } from "./cluster.js";
import type { NemesisNode } from "./cluster.js";

/** How long a producer waits for an answer before it records the append as indeterminate. */
export const APPEND_TIMEOUT_MS = 10_000;
/** A viewer's connection lasts this long at most before it drops it and resumes elsewhere. */
const VIEW_MAX_MS = 3_000;

/** What a producer was told of one append. */
export type Outcome =
  | { kind: "ok"; seq: number }
  /** Refused with a code that says nothing was applied (or the connection was refused). */
  | { kind: "fail"; code: string }
  /** No answer, or one that does not say (a timeout, a cut connection, NODE_UNAVAILABLE). */
  | { kind: "info"; why: string };

export interface AppendOp {
  value: string;
  session: string;
  node: string;
  outcome: Outcome;
  /** When it was sent (ms since the epoch). */
  at: number;
}

/** The codes that promise the request was not applied (docs/protocol.md). */
const DEFINITE = new Set([
  "FENCED",
  "LOG_UNAVAILABLE",
  "SESSION_NOT_FOUND",
  "SESSION_NOT_RUNNING",
  "VALIDATION_FAILED",
  "RATE_LIMITED",
  "ECONNREFUSED",
]);

/** A seeded generator (mulberry32): the run's every random choice comes from it. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function request(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = APPEND_TIMEOUT_MS,
): Promise<{ status: number; json: Record<string, unknown>; pending: string | null }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${NEMESIS_TOKEN}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  return {
    status: res.status,
    json: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>),
    pending: res.headers.get("switchboard-log-pending"),
  };
}

/** Appends one value as an output line and says what the answer promises. */
export async function append(node: NemesisNode, session: string, value: string): Promise<Outcome> {
  if (node.url === "") return { kind: "fail", code: "ECONNREFUSED" };
  try {
    const res = await request(node.url, "POST", `/v1/sessions/${session}/events`, {
      type: "output",
      data: { stream: "stdout", data: `${value}\n` },
    });
    // Applied but not yet written (a full disk): the answer promises nothing about durability.
    if (res.status === 200 && res.pending !== null) return { kind: "info", why: `pending ${res.pending}` };
    if (res.status === 200) return { kind: "ok", seq: res.json["first"] as number };
    const code = String((res.json["error"] as { code?: string } | undefined)?.code ?? res.status);
    return DEFINITE.has(code) ? { kind: "fail", code } : { kind: "info", why: code };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    // Nothing was sent when the connection was refused; anything else may have reached the node.
    if (cause === "ECONNREFUSED") return { kind: "fail", code: "ECONNREFUSED" };
    return { kind: "info", why: cause ?? (error as Error).name };
  }
}

/** One event a viewer was given, as JSON text, by seq. */
export interface Seen {
  seq: number;
  json: string;
}

/** What one viewer was given over its life, across every connection it made. */
export interface ViewerRecord {
  name: string;
  session: string;
  /** Seq-based (/v1/ws, SSE) or byte-based (/ws/session). */
  bytes: boolean;
  events: Seen[];
  /** Output bytes by offset, in the order given (byte-based viewers). */
  output: Array<{ offset: number; bytes: Buffer }>;
  /** Resets the gateway sent (retention): the viewer goes on from `first`. */
  resets: Array<{ at: number; first: number }>;
  /** Broken protocol promises seen on the wire (a frame at the wrong offset, a wrong `from`). */
  problems: string[];
  connections: number;
}

/** The viewer's next position: the last seq it has, or the byte offset after its last byte. */
function position(v: ViewerRecord): number {
  if (v.bytes) {
    const last = v.output.at(-1);
    return last === undefined ? 0 : last.offset + last.bytes.length;
  }
  const lastEvent = v.events.at(-1)?.seq ?? 0;
  const lastReset = v.resets.at(-1);
  return lastReset !== undefined && lastReset.first - 1 > lastEvent ? lastReset.first - 1 : lastEvent;
}

/** One connection of a viewer, for at most `ms`; resolves when it closed (by the viewer or the node). */
async function viewOnce(
  v: ViewerRecord,
  node: NemesisNode,
  transport: "ws" | "sse" | "term",
  ms: number,
): Promise<void> {
  if (node.url === "" || !node.alive) return;
  v.connections++;
  const since = position(v);
  if (transport === "sse") {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), ms);
    try {
      const res = await fetch(`${node.url}/v1/sessions/${v.session}/stream?since=${since}`, {
        headers: { authorization: `Bearer ${NEMESIS_TOKEN}` },
        signal: abort.signal,
      });
      if (res.status !== 200) {
        await res.arrayBuffer();
        return;
      }
      const decoder = new TextDecoder();
      let text = "";
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        text += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = text.indexOf("\n\n")) >= 0) {
          const message = text.slice(0, end);
          text = text.slice(end + 2);
          const data = message
            .split("\n")
            .filter((l) => l.startsWith("data: "))
            .map((l) => l.slice(6))
            .join("\n");
          if (data === "") continue;
          if (message.includes("event: reset")) {
            const reset = JSON.parse(data) as { first: number };
            v.resets.push({ at: v.events.length, first: reset.first });
          } else if (!message.includes("event: ")) {
            const event = JSON.parse(data) as { seq: number };
            v.events.push({ seq: event.seq, json: data });
          }
        }
      }
    } catch {
      // Cut by the viewer's timer or by a fault: it resumes from its position on the next connection.
    } finally {
      clearTimeout(timer);
    }
    return;
  }
  const path = transport === "ws" ? "/v1/ws" : `/ws/session/${v.session}?since=${since}`;
  const ws = new WebSocket(`${node.url.replace("http", "ws")}${path}`, {
    headers: { authorization: `Bearer ${NEMESIS_TOKEN}` },
  });
  let at = since;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => ws.terminate(), ms);
    ws.on("message", (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as Record<string, unknown>;
      if (transport === "ws") {
        if (frame["op"] === "hello") ws.send(JSON.stringify({ op: "subscribe", session: v.session, since, ref: 1 }));
        else if (frame["op"] === "subscribed" && frame["from"] !== since + 1)
          v.problems.push(`subscribed from ${String(frame["from"])} after since=${since}`);
        else if (frame["op"] === "event" || frame["op"] === "events") {
          const events = (frame["op"] === "event" ? [frame["event"]] : frame["events"]) as Array<{ seq: number }>;
          for (const e of events) v.events.push({ seq: e.seq, json: JSON.stringify(e) });
        } else if (frame["op"] === "reset") v.resets.push({ at: v.events.length, first: frame["first"] as number });
        return;
      }
      const type = frame["type"];
      if (type !== "replay" && type !== "stdout" && type !== "stderr") return;
      const bytes = Buffer.from(frame["data"] as string, frame["enc"] === "base64" ? "base64" : "utf8");
      // A JSON replay frame's offset is the byte after its data.
      const offset = type === "replay" ? (frame["offset"] as number) - bytes.length : (frame["offset"] as number);
      if (offset !== at) v.problems.push(`output frame at ${offset}, the viewer is at ${at}`);
      v.output.push({ offset, bytes });
      at = offset + bytes.length;
    });
    ws.on("error", () => undefined);
    ws.on("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A viewer: connects to random nodes over its transports until `stopped`, resuming each time. */
export async function runViewer(
  v: ViewerRecord,
  nodes: readonly NemesisNode[],
  rng: Rng,
  stopped: () => boolean,
): Promise<void> {
  const transports = v.bytes ? (["term"] as const) : (["ws", "sse"] as const);
  while (!stopped()) {
    const node = rng.pick(nodes);
    await viewOnce(v, node, rng.pick(transports), rng.int(300, VIEW_MAX_MS));
    await sleep(rng.int(10, 200));
  }
}

/** A producer: appends unique values (`<name>-<n>`) to random sessions through random nodes until `stopped`. */
export async function runProducer(
  name: string,
  sessions: readonly string[],
  nodes: readonly NemesisNode[],
  rng: Rng,
  ops: AppendOp[],
  stopped: () => boolean,
): Promise<void> {
  for (let n = 0; !stopped(); n++) {
    const node = rng.pick(nodes);
    const session = rng.pick(sessions);
    const value = `${name}-${n}`;
    const at = Date.now();
    const outcome = await append(node, session, value);
    ops.push({ value, session, node: node.id, outcome, at });
    await sleep(rng.int(5, 60));
  }
}
