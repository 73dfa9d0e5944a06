import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it, onTestFinished } from "vitest";
import WebSocket from "ws";
import { api, TEST_TOKEN } from "../helpers/gateway.js";
import { startRedis } from "../helpers/redis.js";
import { serveInChild } from "../helpers/serve-child.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

const TEST_MS = 90_000;

/** Rows of session `id` in a node's replica (its SQLite file), read beside the running node. */
function replicaRows(db: Database.Database, id: string): number {
  return (db.prepare("SELECT count(*) AS n FROM events WHERE session_id = ?").get(id) as { n: number }).n;
}

async function post(owner: ChildGateway, id: string, from: number, count: number): Promise<void> {
  const events = Array.from({ length: count }, (_, i) => ({ type: "note", data: { n: from + i } }));
  expect((await api(owner.url).post(`/v1/sessions/${id}/events`, events)).status).toBe(200);
}

/** A /v1/ws client subscribed to `id` from `since`: the seq and `n` of every event it is sent, in order. */
function subscriber(node: ChildGateway, id: string, since: number) {
  const seqs: number[] = [];
  const ns: number[] = [];
  const ws = new WebSocket(`${node.url.replace("http", "ws")}/v1/ws`, {
    headers: { authorization: `Bearer ${TEST_TOKEN}` },
  });
  onTestFinished(() => ws.terminate());
  type Event = { seq: number; data: { n: number } };
  const take = (e: Event) => {
    seqs.push(e.seq);
    ns.push(e.data.n);
  };
  const subscribed = new Promise<void>((resolve) =>
    ws.on("message", (raw: Buffer) => {
      const f = JSON.parse(raw.toString()) as { op: string; event?: Event; events?: Event[] };
      if (f.op === "hello") ws.send(JSON.stringify({ op: "subscribe", session: id, since }));
      else if (f.op === "subscribed") resolve();
      else if (f.op === "event") take(f.event!);
      else if (f.op === "events") f.events!.forEach(take);
    }),
  );
  return { seqs, ns, subscribed };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("a copy publishes what Redis holds before its replica commits (docs/cluster.md)", () => {
  it(
    "while the copy's replica cannot commit, its viewers get every new event, and a resume there is exact",
    async () => {
      const redis = await startRedis();
      const copyDir = tempDir();
      const owner = await serveInChild({ dataDir: tempDir(), args: ["--redis", redis.url, "--node-id", "gw-a"] });
      const copy = await serveInChild({ dataDir: copyDir, args: ["--redis", redis.url, "--node-id", "gw-b"] });
      const id = (await api(owner.url).post("/v1/sessions", { kind: "stream" })).json.id as string;
      await post(owner, id, 1, 10);
      const live = subscriber(copy, id, 0);
      await live.subscribed;
      await waitFor(() => live.seqs.length >= 10, 15_000, "the first 10 events on the copy");
      const replica = new Database(join(copyDir, "switchboard.db"), { fileMustExist: true });
      onTestFinished(() => {
        replica.close();
      });
      await waitFor(() => replicaRows(replica, id) === 10, 15_000, "the copy's replica to hold the first 10");

      // Another connection takes the replica's write lock: the copy node cannot commit from here on.
      replica.exec("BEGIN IMMEDIATE");
      await post(owner, id, 11, 20);
      await waitFor(() => live.seqs.length >= 30, 15_000, "the 20 events after the lock on the copy");
      expect(live.seqs).toEqual(range(1, 30));
      expect(live.ns).toEqual(range(1, 30));
      // Shown from Redis, not from the replica: it holds none of them yet.
      expect(replicaRows(replica, id)).toBe(10);

      // A viewer that resumes on the copy meanwhile gets exactly what follows, from memory.
      const resumed = subscriber(copy, id, 15);
      await resumed.subscribed;
      await waitFor(() => resumed.seqs.length >= 15, 15_000, "the resumed viewer's 15 events");
      expect(resumed.seqs).toEqual(range(16, 30));
      const page = async (node: ChildGateway) =>
        (await api(node.url).get(`/v1/sessions/${id}/events?since=5&limit=1000`)).text;
      expect(await page(copy)).toBe(await page(owner));
      expect(replicaRows(replica, id)).toBe(10);

      // The lock is given back: the replica catches up, and everything goes on exactly once.
      replica.exec("ROLLBACK");
      await waitFor(() => replicaRows(replica, id) === 30, 15_000, "the replica to commit what it was shown");
      await post(owner, id, 31, 10);
      await waitFor(() => live.seqs.length >= 40 && resumed.seqs.length >= 25, 15_000, "the last 10 on both viewers");
      expect(live.seqs).toEqual(range(1, 40));
      expect(resumed.seqs).toEqual(range(16, 40));
      expect(await page(copy)).toBe(await page(owner));
    },
    TEST_MS,
  );
});
