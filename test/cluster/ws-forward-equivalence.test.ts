import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { api } from "../helpers/gateway.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { WsClient, listedEverywhere, threeNodes } from "./ws-forward-helpers.js";
import type { Frame } from "./ws-forward-helpers.js";
import { waitFor } from "../helpers/wait-for.js";

/** Connections per run: each sends its frames to one node (random), or to the owner. */
const CONNECTIONS = 2;

type Steer =
  { conn: number; op: "input"; bytes: Uint8Array } | { conn: number; op: "resize"; cols: number; rows: number };

const steerArb: fc.Arbitrary<Steer> = fc.oneof(
  fc.record({
    conn: fc.nat(CONNECTIONS - 1),
    op: fc.constant("input" as const),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }),
  }),
  fc.record({
    conn: fc.nat(CONNECTIONS - 1),
    op: fc.constant("resize" as const),
    cols: fc.integer({ min: 20, max: 300 }),
    rows: fc.integer({ min: 5, max: 100 }),
  }),
);

/** The input and resize events a connection made, as the owner's log holds them, in log order. */
type Steered = Array<{ type: string; bytes?: number; cols?: number; rows?: number }>;

describe("steering frames sent to any node give the log the same frames sent to the owner give", () => {
  let nodes: [ChildGateway, ChildGateway, ChildGateway];

  /**
   * A PTY session on `owner` running `cat` in raw mode: no echo, no signal or EOF keys, so any
   * bytes are taken as input and written back as they are. Resolves once it is raw (it says `R`).
   */
  async function rawCat(owner: ChildGateway): Promise<string> {
    const created = await api(owner.url).post("/v1/sessions", {
      kind: "terminal",
      command: ["sh", "-c", "stty raw -echo && printf R && exec cat"],
      pty: true,
    });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    await waitFor(async () => (await api(owner.url).get(`/v1/sessions/${id}`)).json.outputBytes === 1, 15_000);
    return id;
  }

  /** Sends `frames` over one /v1/ws connection per `at` node, without waiting between frames; resolves once each is acked. */
  async function steer(id: string, at: ChildGateway[], frames: Steer[], defer: Array<() => void>): Promise<string[]> {
    const clients = await Promise.all(at.map((node) => WsClient.open(node, "/v1/ws", (fn) => defer.push(fn))));
    const connIds = await Promise.all(
      clients.map(async (c) => (await c.next((f) => f["op"] === "hello"))["connId"] as string),
    );
    frames.forEach((frame, ref) => {
      const { conn, op, ...rest } = frame;
      const body =
        frame.op === "input"
          ? { data: Buffer.from(frame.bytes).toString("base64"), enc: "base64" }
          : { cols: (rest as { cols: number }).cols, rows: (rest as { rows: number }).rows };
      clients[conn]!.send({ op, session: id, ...body, ref });
    });
    for (const [ref, frame] of frames.entries())
      expect(await clients[frame.conn]!.answer(ref)).toEqual({ op: "ack", ref });
    return connIds;
  }

  /** Each connection's input and resize events in the owner's log. */
  async function steeredBy(owner: ChildGateway, id: string, connIds: string[]): Promise<Steered[]> {
    const res = await api(owner.url).get(`/v1/sessions/${id}/events?limit=1000&types=input,resize`);
    expect(res.status).toBe(200);
    const events = res.json.events as Frame[];
    return connIds.map((connId) =>
      events
        .filter((e) => e["by"]?.["connId"] === connId)
        .map((e) =>
          e["type"] === "input"
            ? { type: "input", bytes: e["bytes"] as number }
            : { type: "resize", cols: e["cols"] as number, rows: e["rows"] as number },
        ),
    );
  }

  it("random input bytes and resizes, to random nodes for sessions on random owners", async () => {
    nodes = await threeNodes();
    const started = performance.now();
    await fc.assert(
      fc.asyncProperty(
        fc.nat(2),
        fc.array(fc.nat(2), { minLength: CONNECTIONS, maxLength: CONNECTIONS }),
        fc.array(steerArb, { minLength: 1, maxLength: 24 }),
        async (ownerAt, connAt, frames) => {
          const defer: Array<() => void> = [];
          try {
            const owner = nodes[ownerAt]!;
            const [direct, forwarded] = [await rawCat(owner), await rawCat(owner)];
            await listedEverywhere(nodes, forwarded);
            const directIds = await steer(direct, Array(CONNECTIONS).fill(owner), frames, defer);
            const forwardedIds = await steer(
              forwarded,
              connAt.map((i) => nodes[i]!),
              frames,
              defer,
            );
            const expected: Steered[] = Array.from({ length: CONNECTIONS }, (_, conn) =>
              frames
                .filter((f) => f.conn === conn)
                .map((f) =>
                  f.op === "input"
                    ? { type: "input", bytes: f.bytes.length }
                    : { type: "resize", cols: f.cols, rows: f.rows },
                ),
            );
            expect(await steeredBy(owner, direct, directIds)).toEqual(expected);
            expect(await steeredBy(owner, forwarded, forwardedIds)).toEqual(expected);
            for (const id of [direct, forwarded]) await api(owner.url).del(`/v1/sessions/${id}`);
          } finally {
            defer.forEach((fn) => fn());
          }
        },
      ),
      { numRuns: 15, interruptAfterTimeLimit: 35_000 },
    );
    expect(performance.now() - started).toBeLessThan(60_000);
  }, 120_000);
});
