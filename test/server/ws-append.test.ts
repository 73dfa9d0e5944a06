import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { TEST_TOKEN, api, testGateway } from "../helpers/gateway.js";

type Frame = { op: string; ref?: unknown; result?: { first: number; last: number; appended: number }; code?: string };

let gw: Awaited<ReturnType<typeof testGateway>>;
beforeAll(async () => {
  gw = await testGateway();
});
afterAll(() => gw?.close());

/** A `/v1/ws` connection and the frames it got, answered by ref. */
async function connect(token = TEST_TOKEN) {
  const ws = new WebSocket(`${gw.url.replace("http", "ws")}/v1/ws`, { headers: { authorization: `Bearer ${token}` } });
  const frames: Frame[] = [];
  const waiting = new Map<unknown, (f: Frame) => void>();
  ws.on("message", (raw) => {
    const f = JSON.parse(String(raw)) as Frame;
    frames.push(f);
    if (f.ref !== undefined) waiting.get(f.ref)?.(f);
  });
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  const answer = (ref: unknown) => new Promise<Frame>((resolve) => waiting.set(ref, resolve));
  return { ws, frames, answer };
}

async function streamSession(): Promise<string> {
  return (await api(gw.url).post("/v1/sessions", { kind: "stream" })).json.id as string;
}

async function outputOf(id: string): Promise<Array<{ seq: number; data: string }>> {
  const r = await api(gw.url).get(`/v1/sessions/${id}/events?since=0&limit=10000`);
  return (r.json.events as Array<{ seq: number; type: string; data: string }>).filter((e) => e.type === "output");
}

const out = (data: string) => ({ type: "output", data: { data } });

describe("append on /v1/ws", () => {
  it("acknowledges pipelined appends in order with the seqs the log holds", async () => {
    const id = await streamSession();
    const { ws, answer } = await connect();
    const acks = Array.from({ length: 20 }, (_, i) => answer(i));
    for (let i = 0; i < 20; i++)
      ws.send(JSON.stringify({ op: "append", session: id, events: [out(`a${i}\n`), out(`b${i}\n`)], ref: i }));
    const got = await Promise.all(acks);
    expect(got.map((f) => f.op)).toEqual(Array(20).fill("ack"));
    expect(got.map((f) => [f.result!.first, f.result!.last, f.result!.appended])).toEqual(
      got.map((_, i) => [2 * i + 1, 2 * i + 2, 2]),
    );
    const log = await outputOf(id);
    expect(log.map((e) => [e.seq, e.data])).toEqual(
      Array.from({ length: 20 }, (_, i) => [
        [2 * i + 1, `a${i}\n`],
        [2 * i + 2, `b${i}\n`],
      ]).flat(),
    );
    ws.close();
  });

  it("refuses what POST refuses, with its codes, and appends nothing then", async () => {
    const id = await streamSession();
    const { ws, answer } = await connect();
    const send = (frame: object, ref: string) => {
      const a = answer(ref);
      ws.send(JSON.stringify({ ...frame, ref }));
      return a;
    };
    expect((await send({ op: "append", session: "nope", events: [out("x")] }, "missing")).code).toBe(
      "SESSION_NOT_FOUND",
    );
    expect((await send({ op: "append", session: id, events: [] }, "empty")).code).toBe("VALIDATION_FAILED");
    expect((await send({ op: "append", session: id, events: [{ type: 7 }] }, "bad")).code).toBe("VALIDATION_FAILED");
    const tooMany = Array.from({ length: gw.core.limits.eventsPerAppend + 1 }, () => out("x"));
    expect((await send({ op: "append", session: id, events: tooMany }, "many")).code).toBe("PAYLOAD_TOO_LARGE");
    const exitFirst = [{ type: "exit", data: { exitCode: 0 } }, out("late")];
    expect((await send({ op: "append", session: id, events: exitFirst }, "exit")).code).toBe("VALIDATION_FAILED");
    expect(await outputOf(id)).toEqual([]);
    expect((await send({ op: "append", session: id, events: [out("ok")] }, "ok")).op).toBe("ack");
    ws.close();
  });

  it("interleaved with POST, yields a contiguous log holding every acknowledged value once", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 4 })), { minLength: 1, maxLength: 25 }),
        async (plan) => {
          const id = await streamSession();
          const { ws, answer } = await connect();
          const http = api(gw.url);
          const sent: string[] = [];
          const answers: Array<Promise<unknown>> = [];
          plan.forEach(([overWs, count], i) => {
            const values = Array.from({ length: count }, (_, j) => `v${i}.${j};`);
            sent.push(...values);
            if (overWs) {
              answers.push(answer(i).then((f) => expect(f.op).toBe("ack")));
              ws.send(JSON.stringify({ op: "append", session: id, events: values.map(out), ref: i }));
            } else {
              answers.push(
                http.post(`/v1/sessions/${id}/events`, values.map(out)).then((r) => expect(r.status).toBe(200)),
              );
            }
          });
          await Promise.all(answers);
          const log = await outputOf(id);
          expect(log.map((e) => e.seq)).toEqual(log.map((_, i) => i + 1));
          expect([...log.map((e) => e.data)].sort()).toEqual([...sent].sort());
          ws.close();
        },
      ),
      { numRuns: 15 },
    );
  });
});
