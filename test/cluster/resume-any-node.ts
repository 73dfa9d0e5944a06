import { expect } from "vitest";
import fc from "fast-check";
import { api } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";
import { clientsArb, runClient, wholeSession } from "./resume-clients.js";
import type { Rebuilt } from "./resume-clients.js";

/** Three gateway processes on one shared log (`--redis` as given: one URL or a cluster's seeds). */
export async function threeGateways(redis: string): Promise<ChildGateway[]> {
  return Promise.all(
    ["gw-a", "gw-b", "gw-c"].map((name) =>
      serveInChild({ dataDir: tempDir(), args: ["--redis", redis, "--node-id", name] }),
    ),
  );
}

/** One run's bound: past it every client stops and the run fails (self-stopping). */
const RUN_MS = 30_000;

/** A PTY printing numbered lines for about two seconds. */
const PTY_LINES = ["sh", "-c", 'for i in $(seq 1 120); do echo "line $i of a terminal"; sleep 0.015; done'];
/** A PTY printing bytes that are not UTF-8 (random), in pieces. */
const PTY_RANDOM = ["sh", "-c", "for i in $(seq 1 30); do head -c 200 /dev/urandom; sleep 0.05; done"];

/**
 * The property of docs/cluster.md: three sessions, each owned by a different node (two PTYs, a
 * stream session fed by POST on its owner), and 50 clients that each drop their connection at
 * random moments and resume with `since` on a random node over `/v1/ws`, SSE and
 * `/ws/session/:id`: every client rebuilds its session's events or bytes exactly.
 */
export async function resumeAnywhereProperty(nodes: readonly ChildGateway[], numRuns: number): Promise<void> {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 20, maxLength: 60 }),
      clientsArb(3),
      async (pieces, clients) => {
        const create = async (node: ChildGateway, body: Record<string, unknown>) => {
          const res = await api(node.url).post("/v1/sessions", body);
          expect(res.status, JSON.stringify(res.json)).toBe(201);
          return res.json.id as string;
        };
        const owners = [nodes[0]!, nodes[1]!, nodes[2]!] as const;
        const ids = [
          await create(owners[0], { kind: "terminal", command: PTY_LINES }),
          await create(owners[1], { kind: "stream" }),
          await create(owners[2], { kind: "terminal", command: PTY_RANDOM }),
        ];
        // The first failure stops every client (and so the run), and is the one reported.
        let failure: unknown;
        const fail = (error: unknown): never => {
          failure ??= error;
          throw error;
        };
        const feed = (async () => {
          const producer = api(owners[1].url);
          for (const piece of pieces) {
            const res = await producer.post(`/v1/sessions/${ids[1]}/events`, {
              type: "output",
              data: { stream: "stdout", data: Buffer.from(piece).toString("base64"), enc: "base64" },
            });
            expect(res.status).toBe(200);
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
          const exit = await producer.post(`/v1/sessions/${ids[1]}/events`, {
            type: "exit",
            data: { exitCode: 0, signal: null },
          });
          expect(exit.status).toBe(200);
        })().catch((error: unknown) => {
          failure ??= error;
        });
        let watchdog: NodeJS.Timeout | undefined;
        const overdue = new Promise<never>((_resolve, reject) => {
          watchdog = setTimeout(() => {
            failure ??= new Error(`the run did not end in ${RUN_MS} ms`);
            reject(failure);
          }, RUN_MS);
        });
        const settled = await Promise.race([
          Promise.allSettled(
            clients.map((c) => runClient(nodes, ids[c.session]!, c, () => failure !== undefined).catch(fail)),
          ),
          overdue,
        ]).catch(() => []);
        clearTimeout(watchdog);
        if (failure !== undefined) {
          // What the gateways warned of (a Redis error, a failed copy) is the likeliest cause.
          const warnings = nodes.flatMap((n) => n.log.filter((l) => (l["level"] as number) >= 40));
          throw new Error(`${String(failure)}; the gateways warned: ${JSON.stringify(warnings).slice(0, 4000)}`, {
            cause: failure,
          });
        }
        const rebuilt = settled.map((r) => (r as PromiseFulfilledResult<Rebuilt>).value);
        await feed;
        if (failure !== undefined) throw failure;
        const whole = await Promise.all(ids.map((id, i) => wholeSession(owners[i]!.url, id)));
        expect(whole[1]!.bytes).toEqual(Buffer.concat(pieces.map((p) => Buffer.from(p))));
        clients.forEach((client, i) => {
          const got = rebuilt[i]!;
          const expected = whole[client.session]!;
          const what = `client ${i} of session ${client.session} (${client.bytes ? "bytes" : "events"}, ${got.connections} connections)`;
          if (!client.bytes)
            expect(
              got.events.map((e) => e.seq),
              what,
            ).toEqual(got.events.map((_, k) => k + 1));
          if (!client.bytes) expect(got.events.length, what).toBe(expected.head);
          expect(
            got.bytes.equals(expected.bytes),
            `${what}: ${got.bytes.length} of ${expected.bytes.length} bytes`,
          ).toBe(true);
        });
      },
    ),
    // No shrinking: each run is seconds of real processes; the failure's seed and values are reported.
    { numRuns, endOnFailure: true },
  );
}
