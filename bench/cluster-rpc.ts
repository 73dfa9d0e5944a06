/**
 * Cluster mode: steering a session from a node that does not run it (forwarded to the owner
 * through Redis, see docs/cluster.md "Requests to the owner") beside the same steering on the
 * owner, interleaved in one run: a keystroke's echo over `/ws/session`, an HTTP `input`, and an
 * agent prompt's time to `run.started` over `/v1/ws`. The floor beside them: two bare Redis hops
 * between two processes (XADD, XREAD BLOCK, XADD back, XREAD BLOCK), the least a forwarded
 * keystroke and its echo's copy cost.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { WebSocket } from "ws";
import { connectRedis } from "../src/cluster/redis-client.js";
import { childNode, redisServer } from "./cluster.js";
import type { ChildNode } from "./cluster.js";
import type { BenchRow, BenchSection } from "./types.js";
import { fmt, percentile } from "./stats.js";

/** The token bench/cluster.ts's `childNode` starts its nodes with. */
const TOKEN = "bench-token-0123456789abcdef";
const REQUESTS = 1_000;
const KEYSTROKES = 1_000;
const PROMPTS = 200;
/** Keystrokes sent at once (a paste, key repeat), and how many such bursts from each node. */
const BURST_KEYS = 10;
const BURSTS = 200;
const WARMUP = 50;
/** What each HTTP request types; `cat` on a pipe writes it back as is, so the log grows by its length. */
const INPUT = "x\n";
/** A PTY that echoes each byte as it comes (no line discipline), as a shell's line editor does. */
const ECHO_COMMAND = ["sh", "-c", "stty raw -echo; exec cat"];
const STEP_TIMEOUT_MS = 30_000;

/** Waits until `base` lists session `id` (a node copies a session shortly after its owner creates it). */
async function listed(base: string, id: string): Promise<void> {
  const ok = async () =>
    (await fetch(`${base}/v1/sessions/${id}`, { headers: { authorization: `Bearer ${TOKEN}` } })).status === 200;
  const deadline = performance.now() + STEP_TIMEOUT_MS;
  while (!(await ok())) {
    if (performance.now() > deadline) throw new Error(`${base} did not list session ${id}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function post(base: string, path: string, body: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(base + path, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

/** A WebSocket client that keeps what it was sent: terminal text, or /v1/ws event types by session. */
class Client {
  text = "";
  readonly events: string[] = [];
  private wake: (() => void) | undefined;
  private constructor(readonly ws: WebSocket) {
    ws.on("message", (raw, isBinary) => {
      if (isBinary) return;
      const f = JSON.parse(String(raw)) as {
        type?: string;
        data?: string;
        op?: string;
        event?: { type: string };
        events?: Array<{ type: string }>;
      };
      if (f.type === "stdout") this.text += f.data ?? "";
      else if (f.op === "event" && f.event) this.events.push(f.event.type);
      else if (f.op === "events") for (const e of f.events ?? []) this.events.push(e.type);
      this.wake?.();
    });
  }

  /** Resolves as soon as a frame makes `done()` hold (timed: no polling); fails past STEP_TIMEOUT_MS. */
  async until(done: () => boolean, what: string): Promise<void> {
    const deadline = performance.now() + STEP_TIMEOUT_MS;
    while (!done()) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.wake = undefined;
    }
  }

  static async open(base: string, path: string): Promise<Client> {
    const ws = new WebSocket(`${base.replace(/^http/, "ws")}${path}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const client = new Client(ws);
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    return client;
  }

  count(type: string): number {
    return this.events.filter((t) => t === type).length;
  }
}

/**
 * Two bare Redis hops between this process and a child: XADD to the child's stream, which its
 * XREAD BLOCK takes and XADDs back to ours, read by our XREAD BLOCK. The child is a plain ioredis
 * loop, nothing of the gateway.
 */
async function bareHops(url: string): Promise<{ once: () => Promise<number>; close: () => Promise<void> }> {
  const code = `
    import Redis from "ioredis";
    const [reader, writer] = [new Redis(${JSON.stringify(url)}), new Redis(${JSON.stringify(url)})];
    let last = "0-0";
    process.stdout.write("ready\\n");
    for (;;) {
      const got = await reader.xread("BLOCK", 0, "STREAMS", "bare:to-child", last);
      for (const [, entries] of got ?? []) for (const [id] of entries) { last = id; await writer.xadd("bare:to-parent", "*", "v", "1"); }
    }`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once("data", () => resolve());
    child.once("exit", (c) => reject(new Error(`the bare Redis child exited (${c})`)));
  });
  const [writer, reader] = [await connectRedis([url]), await connectRedis([url])];
  let last = "0-0";
  return {
    async once() {
      const t0 = performance.now();
      await writer.xadd("bare:to-child", "*", "v", "1");
      const got = (await reader.xread("BLOCK", STEP_TIMEOUT_MS, "STREAMS", "bare:to-parent", last)) as Array<
        [string, Array<[string, string[]]>]
      > | null;
      const entries = got?.[0]?.[1] ?? [];
      if (entries.length !== 1) throw new Error(`the bare round trip read ${entries.length} entries`);
      last = entries[0]![0];
      return performance.now() - t0;
    },
    async close() {
      child.kill("SIGKILL");
      writer.disconnect();
      reader.disconnect();
    },
  };
}

/** Runs `measure` for each side `n` times, interleaved one by one, the order alternating. */
async function interleaved(
  n: number,
  sides: Array<(i: number) => Promise<number>>,
  warmup = WARMUP,
): Promise<number[][]> {
  const out = sides.map(() => [] as number[]);
  for (let i = 0; i < warmup + n; i++) {
    const order = sides.map((_, k) => k);
    if (i % 2 === 1) order.reverse();
    for (const k of order) {
      const took = await sides[k]!(i);
      if (i >= warmup) out[k]!.push(took);
    }
  }
  for (const xs of out) xs.sort((x, y) => x - y);
  return out;
}

const ms = (x: number): string => `${fmt(x, 2)} ms`;

export async function run(): Promise<BenchSection> {
  const loadAtStart = loadavg()[0]!;
  const dir = mkdtempSync(join(tmpdir(), "sb-bench-cluster-rpc-"));
  const server = await redisServer(dir);
  const nodes = [await childNode(dir, "a", server.url), await childNode(dir, "b", server.url)];
  const [a, b] = nodes as [ChildNode, ChildNode];
  const bare = await bareHops(server.url);
  const clients: Client[] = [];
  /** Creates a session on a and, once b lists it, opens `path` on both nodes. */
  const onBoth = async (body: unknown, path: (id: string) => string) => {
    const id = ((await post(a.url, "/v1/sessions", body)).json as { id: string }).id;
    await listed(b.url, id);
    const [onA, onB] = [await Client.open(a.url, path(id)), await Client.open(b.url, path(id))];
    clients.push(onA, onB);
    return { id, onA, onB };
  };
  try {
    // Keystroke echo: one PTY on a, a viewer on each node; each keystroke alone, both viewers see it first.
    const { onA, onB } = await onBoth(
      { kind: "terminal", command: ECHO_COMMAND, pty: true },
      (id) => `/ws/session/${id}`,
    );
    let typed = 0;
    const keystrokes = (from: Client, keys: number) => async (): Promise<number> => {
      const t0 = performance.now();
      for (let k = 0; k < keys; k++)
        from.ws.send(JSON.stringify({ type: "stdin", data: String.fromCharCode(97 + (typed++ % 26)) }));
      await from.until(() => from.text.length >= typed, "a keystroke's echo");
      const took = performance.now() - t0;
      await onA.until(() => onA.text.length >= typed, "the echo on a");
      await onB.until(() => onB.text.length >= typed, "the echo on b");
      return took;
    };
    const [echoSame, echoCross, echoBare] = await interleaved(KEYSTROKES, [
      keystrokes(onA, 1),
      keystrokes(onB, 1),
      bare.once,
    ]);
    const [burstSame, burstCross] = await interleaved(BURSTS, [
      keystrokes(onA, BURST_KEYS),
      keystrokes(onB, BURST_KEYS),
    ]);
    if (onA.text !== onB.text) throw new Error("the viewers on a and b saw different echoes");

    // HTTP input: a pipe session running `cat` on a; each request alone (its echo published and copied first).
    const pipe = await onBoth({ kind: "terminal", command: ["cat"], pty: false }, (id) => `/ws/session/${id}`);
    const [pipeId, pipeA, pipeB] = [pipe.id, pipe.onA, pipe.onB];
    let echoed = 0;
    const input = (base: string) => async (): Promise<number> => {
      const t0 = performance.now();
      const res = await post(base, `/v1/sessions/${pipeId}/input`, { data: INPUT });
      const took = performance.now() - t0;
      if (res.status !== 200) throw new Error(`input answered ${res.status}: ${JSON.stringify(res.json)}`);
      echoed += INPUT.length;
      await pipeA.until(() => pipeA.text.length >= echoed, "the input's echo on a");
      await pipeB.until(() => pipeB.text.length >= echoed, "the input's echo on b");
      return took;
    };
    const [httpLocal, httpForwarded] = await interleaved(REQUESTS, [input(a.url), input(b.url)]);

    // Prompt → run.started: an echo agent on a, a /v1/ws client on each node subscribed to it.
    const agent = await onBoth({ kind: "agent", agent: "echo" }, () => "/v1/ws");
    const [agentId, muxA, muxB] = [agent.id, agent.onA, agent.onB];
    for (const mux of [muxA, muxB]) mux.ws.send(JSON.stringify({ op: "subscribe", session: agentId }));
    let prompts = 0;
    const prompt = (from: Client) => async (): Promise<number> => {
      prompts += 1;
      const t0 = performance.now();
      from.ws.send(JSON.stringify({ op: "prompt", session: agentId, text: "hi", ref: prompts }));
      await from.until(() => from.count("run.started") >= prompts, "run.started");
      const took = performance.now() - t0;
      await muxA.until(() => muxA.count("chat.final") >= prompts, "the run's end on a");
      await muxB.until(() => muxB.count("chat.final") >= prompts, "the run's end on b");
      return took;
    };
    const [promptLocal, promptForwarded] = await interleaved(PROMPTS, [prompt(muxA), prompt(muxB)], 10);

    const p = (xs: number[], q: number) => percentile(xs, q);
    /** A row of `forwarded` beside `local` at percentile `q`. */
    const vs = (
      measure: string,
      forwarded: number[],
      local: number[],
      q: number,
      goal: string,
      ok?: boolean,
    ): BenchRow => ({
      measure,
      ours: ms(p(forwarded, q)),
      baseline: ms(p(local, q)),
      ratio: fmt(p(forwarded, q) / p(local, q), 2),
      goal,
      ...(ok !== undefined ? { met: ok } : {}),
    });
    const echo = "keystroke echo over /ws/session";
    const rows: BenchRow[] = [
      vs(
        `${echo}, p50: viewer on node b (PTY on a) vs a viewer on a`,
        echoCross!,
        echoSame!,
        50,
        "≤ same node + 1 ms",
        p(echoCross!, 50) <= p(echoSame!, 50) + 1,
      ),
      vs(
        `${echo}, p99: viewer on node b (PTY on a) vs a viewer on a`,
        echoCross!,
        echoSame!,
        99,
        "≤ 10 ms",
        p(echoCross!, 99) <= 10,
      ),
      vs(
        `a burst of ${BURST_KEYS} keystrokes → its last echo, p50: sent on b vs on a`,
        burstCross!,
        burstSame!,
        50,
        "for reference",
      ),
      vs(
        `a burst of ${BURST_KEYS} keystrokes → its last echo, p99: sent on b vs on a`,
        burstCross!,
        burstSame!,
        99,
        "for reference",
      ),
      {
        measure: "(floor) two bare Redis hops between two processes (XADD, XREAD BLOCK, back), p50 / p99",
        ours: `${ms(p(echoBare!, 50))} / ${ms(p(echoBare!, 99))}`,
      },
      vs(
        "prompt → `run.started` over /v1/ws, p50: sent on b (echo agent on a) vs on a",
        promptForwarded!,
        promptLocal!,
        50,
        "for reference",
      ),
      vs(
        "prompt → `run.started` over /v1/ws, p99: sent on b vs on a",
        promptForwarded!,
        promptLocal!,
        99,
        "for reference",
      ),
      vs(
        "HTTP input round trip, p50: sent to node b (forwarded) vs to the owner",
        httpForwarded!,
        httpLocal!,
        50,
        "for reference",
      ),
      vs(
        "HTTP input round trip, p99: sent to node b (forwarded) vs to the owner",
        httpForwarded!,
        httpLocal!,
        99,
        "for reference",
      ),
    ];
    const spread = (xs: number[]) => [50, 90, 99, 100].map((q) => fmt(p(xs, q), 2)).join(" / ");
    return {
      title: "Cluster: requests forwarded to the owner",
      rows,
      method: [
        "`npm run bench -- cluster-rpc`: one redis-server (AOF off) and two `switchboard serve` processes, a and b; every session runs on a; the clients are in the bench process.",
        `Echo: a PTY running \`${ECHO_COMMAND.join(" ")}\` (each byte echoed as it comes), a \`/ws/session\` viewer on each node; ${fmt(KEYSTROKES)} one-byte \`stdin\` frames from each, interleaved one by one (order alternating) with the bare hops, after ${WARMUP} of each; time from sending the frame to its echo at the sender; each keystroke alone (both viewers have its echo before the next).`,
        `Burst: ${BURST_KEYS} one-byte \`stdin\` frames sent at once, ${BURSTS} times from each node, interleaved; time to the last echo at the sender.`,
        "Forwarded: b XADDs the frame to a's request stream, a's XREAD takes it and writes the PTY; the echo is appended to Redis by a's Lua script, whose notification b answers by reading the session's meta and new entries (one MULTI) and sends to its viewer. A p99 under 10 ms cannot be shown while the bare hops alone take longer (bench/README.md, \"Steering across nodes\").",
        `Prompt: the built-in echo agent, a \`/v1/ws\` client on each node subscribed to the session; ${PROMPTS} \`prompt\` frames ("hi") from each, interleaved, after 10; time to the \`run.started\` event at the sender; the run ends (\`chat.final\` on both) before the next.`,
        `HTTP input: ${fmt(REQUESTS)} \`POST …/input\` of 2 bytes to a pipe session running \`cat\`, to b and to a, interleaved; both answer once the input's event is published (read-your-writes), on b once b's copy holds it; the echo reaches a viewer on each node before the next.`,
      ],
      notes: [
        `Load average (1 min) at the start and the end: ${fmt(loadAtStart, 1)} and ${fmt(loadavg()[0]!, 1)} on ${cpus().length} cores.`,
        `Echo p50 / p90 / p99 / max (ms): node b ${spread(echoCross!)}; node a ${spread(echoSame!)}; bare hops ${spread(echoBare!)}.`,
        `Burst of ${BURST_KEYS} p50 / p90 / p99 / max (ms): b ${spread(burstCross!)}; a ${spread(burstSame!)}.`,
        `Prompt → run.started p50 / p90 / p99 / max (ms): b ${spread(promptForwarded!)}; a ${spread(promptLocal!)}.`,
        `HTTP input p50 / p90 / p99 / max (ms): b ${spread(httpForwarded!)}; a ${spread(httpLocal!)}.`,
      ],
    };
  } finally {
    for (const c of clients) c.ws.terminate();
    await bare.close();
    for (const n of nodes) n.child.kill("SIGKILL");
    server.child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}
