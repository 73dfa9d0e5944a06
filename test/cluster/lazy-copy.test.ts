import { writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { api, TEST_TOKEN } from "../helpers/gateway.js";
import { startRedis } from "../helpers/redis.js";
import { serveInChild } from "../helpers/serve-child.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

const TEST_MS = 90_000;

/** Rows of session `id` in a node's replica (its SQLite file), read beside the running node. */
function copiedRows(dataDir: string, id: string): number {
  const db = new Database(join(dataDir, "switchboard.db"), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare("SELECT count(*) AS n FROM events WHERE session_id = ?").get(id) as { n: number }).n;
  } finally {
    db.close();
  }
}

async function listed(node: ChildGateway, id: string): Promise<boolean> {
  const sessions = (await api(node.url).get("/v1/sessions")).json.sessions as Array<{ id: string }> | undefined;
  return (sessions ?? []).some((s) => s.id === id);
}

async function post(owner: ChildGateway, id: string, from: number, count: number): Promise<void> {
  const events = Array.from({ length: count }, (_, i) =>
    i % 2 === 0
      ? { type: "output", data: { stream: "stdout", data: `out ${from + i};` } }
      : { type: "note", data: { n: from + i } },
  );
  expect((await api(owner.url).post(`/v1/sessions/${id}/events`, events)).status).toBe(200);
}

/** A /v1/ws client subscribed to `id` from `since`: every event it is sent, in order. */
function subscriber(node: ChildGateway, id: string, since: number) {
  const seqs: number[] = [];
  const ws = new WebSocket(`${node.url.replace("http", "ws")}/v1/ws`, {
    headers: { authorization: `Bearer ${TEST_TOKEN}` },
  });
  const subscribed = new Promise<void>((resolve) =>
    ws.on("message", (raw: Buffer) => {
      const f = JSON.parse(raw.toString()) as { op: string; event?: { seq: number }; events?: Array<{ seq: number }> };
      if (f.op === "hello") ws.send(JSON.stringify({ op: "subscribe", session: id, since }));
      else if (f.op === "subscribed") resolve();
      else if (f.op === "event") seqs.push(f.event!.seq);
      else if (f.op === "events") seqs.push(...f.events!.map((e) => e.seq));
    }),
  );
  return { seqs, subscribed, close: () => ws.terminate() };
}

describe("copies on demand (docs/cluster.md)", () => {
  it(
    "does not copy a session nobody watches on a node, and a late viewer there still gets every event exactly once",
    async () => {
      const redis = await startRedis();
      const ownerDir = tempDir();
      const idleDir = tempDir();
      const owner = await serveInChild({ dataDir: ownerDir, args: ["--redis", redis.url, "--node-id", "gw-a"] });
      const idle = await serveInChild({ dataDir: idleDir, args: ["--redis", redis.url, "--node-id", "gw-c"] });
      const id = (await api(owner.url).post("/v1/sessions", { kind: "stream" })).json.id as string;
      for (let i = 0; i < 6; i++) await post(owner, id, i * 50, 50);
      await waitFor(async () => (await listed(idle, id)) === true, 15_000);
      // Two sweeps and every notification later, node c still holds none of its entries.
      for (let i = 0; i < 10; i++) {
        await new Promise((r) => setTimeout(r, 250));
        expect(copiedRows(idleDir, id)).toBe(0);
      }
      expect(copiedRows(ownerDir, id)).toBe(300);

      // A late viewer on c: replay of all 300, then live events, each once and in order.
      const viewer = subscriber(idle, id, 0);
      await viewer.subscribed;
      await post(owner, id, 300, 50);
      const all = Array.from({ length: 350 }, (_, i) => i + 1);
      await waitFor(() => viewer.seqs.length >= 350, 15_000);
      expect(viewer.seqs).toEqual(all);
      viewer.close();

      // A read of its history on c is the owner's, byte for byte.
      const page = async (node: ChildGateway) => (await api(node.url).get(`/v1/sessions/${id}/events?limit=1000`)).text;
      expect(await page(idle)).toBe(await page(owner));
    },
    TEST_MS,
  );

  it(
    "goes on from the owner's first retained event when retention trimmed past what an idle copy held",
    async () => {
      const redis = await startRedis();
      const ownerDir = tempDir();
      const config = join(tempDir(), "retention.json");
      writeFileSync(config, JSON.stringify({ retention: { maxEvents: 100 } }));
      const owner = await serveInChild({
        dataDir: ownerDir,
        config,
        args: ["--redis", redis.url, "--node-id", "gw-a"],
      });
      const idle = await serveInChild({ dataDir: tempDir(), args: ["--redis", redis.url, "--node-id", "gw-c"] });
      const id = (await api(owner.url).post("/v1/sessions", { kind: "stream" })).json.id as string;
      await post(owner, id, 0, 50);
      // c lists it (its copy starts at seq 1) and copies nothing while the owner trims past that.
      await waitFor(async () => (await listed(idle, id)) === true, 15_000);
      for (let i = 1; i < 8; i++) await post(owner, id, i * 50, 50);

      const events = async (node: ChildGateway) =>
        (await api(node.url).get(`/v1/sessions/${id}/events?limit=1000`)).json as {
          events: Array<{ seq: number }>;
          first: number;
          head: number;
        };
      const onOwner = await events(owner);
      expect(onOwner.head).toBe(400);
      expect(onOwner.first).toBeGreaterThan(51);
      await waitFor(async () => {
        expect(await events(idle)).toEqual(onOwner);
        return true;
      }, 15_000);
      const output = async (node: ChildGateway) => (await api(node.url).get(`/v1/sessions/${id}/output`)).text;
      expect(await output(idle)).toBe(await output(owner));
    },
    TEST_MS,
  );
});
