import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { DEFAULT_KEY_PREFIX } from "../../src/cluster/cluster-settings.js";
import { connectRedis } from "../../src/cluster/redis-client.js";
import { sessionKeys } from "../../src/cluster/redis-log.js";
import { MIRROR_SWEEP_MS } from "../../src/server/cluster/cluster-mirror.js";
import { afterTest } from "../helpers/cleanup.js";
import { TEST_TOKEN } from "../helpers/gateway.js";
import { startRedis } from "../helpers/redis.js";
import { waitFor } from "../helpers/wait-for.js";
import { clusterGateway } from "./cluster-gateway.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A /v1/ws subscriber of `id` on the gateway at `url`: the `n` of every event it is sent, in order. */
function subscriber(url: string, id: string) {
  const ns: number[] = [];
  const ws = new WebSocket(`${url.replace("http", "ws")}/v1/ws`, {
    headers: { authorization: `Bearer ${TEST_TOKEN}` },
  });
  afterTest(() => ws.terminate());
  type Event = { data: { n: number } };
  const subscribed = new Promise<void>((resolve) =>
    ws.on("message", (raw: Buffer) => {
      const f = JSON.parse(raw.toString()) as { op: string; event?: Event; events?: Event[] };
      if (f.op === "hello") ws.send(JSON.stringify({ op: "subscribe", session: id, since: 0 }));
      else if (f.op === "subscribed") resolve();
      else if (f.op === "event") ns.push(f.event!.data.n);
      else if (f.op === "events") for (const e of f.events!) ns.push(e.data.n);
    }),
  );
  return { ns, subscribed };
}

/** Two nodes on a new redis-server, and a stream session owned by the first (`a`). */
async function twoNodes() {
  const server = await startRedis();
  const a = await clusterGateway(server.url, "gw-a");
  const b = await clusterGateway(server.url, "gw-b");
  const id = (await a.http.post("/v1/sessions", { kind: "stream" })).json.id as string;
  return { server, a, b, id, keys: sessionKeys(DEFAULT_KEY_PREFIX, id) };
}

/**
 * Counts every `command` (`HGETALL` by default: a whole read) of `meta` from now on, whoever sends
 * it (an owner reads none of its own), as Redis's MONITOR reports it on a socket of its own.
 * Not ioredis's monitor(): a command reported in the same packet as MONITOR's `+OK` reached a
 * client not yet switched to monitoring ("Command queue state error", once in a full run).
 */
async function metaReads(port: number, meta: string, command = "hgetall"): Promise<() => number> {
  const socket = connect(port, "127.0.0.1");
  afterTest(() => socket.destroy());
  let reads = 0;
  let rest = "";
  let ok = (): void => undefined;
  const monitoring = new Promise<void>((resolve, reject) => {
    ok = resolve;
    socket.once("error", reject);
  });
  // One line per reply: `+OK`, then `+<time> [<db> <client>] "<command>" "<arg>" ...`.
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => {
    const lines = (rest + chunk).split("\r\n");
    rest = lines.pop()!;
    for (const line of lines) {
      if (line === "+OK") ok();
      const [, name, key] = /\] "([^"]*)" "([^"]*)"/.exec(line) ?? [];
      if (name?.toLowerCase() === command && key === meta) reads++;
    }
  });
  socket.write("MONITOR\r\n");
  await monitoring;
  return () => reads;
}

describe("the mirror's sweep (docs/cluster.md, Copies)", () => {
  it(
    "skips a copy whose notices come, and finds a notice lost at the tail at the sweep after the last one taken",
    { timeout: 60_000 },
    async () => {
      const { server, a, b, id, keys } = await twoNodes();
      let n = 0;
      const append = async () => {
        n++;
        expect((await a.http.post(`/v1/sessions/${id}/events`, [{ type: "note", data: { n } }])).status).toBe(200);
      };
      await append();
      const live = subscriber(b.gateway.url, id);
      await live.subscribed;
      await waitFor(() => live.ns.length === 1, 10_000, "the first event on b");

      const reads = await metaReads(server.port, keys.meta);
      // An event every 150 ms for 3.5 sweeps: b takes each from its notice, so its sweeps skip
      // the session.
      const until = Date.now() + 3.5 * MIRROR_SWEEP_MS;
      while (Date.now() < until) {
        await append();
        await sleep(150);
      }
      await waitFor(() => live.ns.length === n, 5_000, "every event on b");
      expect(reads()).toBeLessThanOrEqual(1);

      // One more, then one Redis takes without its notice (as if the notice were lost): b finds
      // it within two sweeps, the first of which skips the session.
      await append();
      const redis = await connectRedis([server.url]);
      afterTest(() => redis.disconnect());
      const seq = n + 1;
      // As the owner wrote the one before, with the next n.
      const [[, fields]] = (await redis.xrevrange(keys.log, "+", "-", "COUNT", 1)) as [[string, string[]]];
      const json = fields[fields.indexOf("j") + 1]!.replace(`"n":${n}`, `"n":${seq}`);
      await redis.xadd(keys.log, `${seq}-0`, "t", "note", "j", json);
      await redis.hset(keys.meta, "head", seq);
      const lost = Date.now();
      await waitFor(() => live.ns.length === seq, 2 * MIRROR_SWEEP_MS + 1_500, "the event whose notice was lost");
      expect(Date.now() - lost).toBeLessThan(2 * MIRROR_SWEEP_MS + 1_500);
      expect(live.ns).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
    },
  );

  it(
    "reads only the stamp of a quiet copy, followed or not, and finds a record whose notice was lost within two sweeps",
    { timeout: 60_000 },
    async () => {
      const { server, a, b, id, keys } = await twoNodes();
      const quiet = (await a.http.post("/v1/sessions", { kind: "stream", name: "listed" })).json.id as string;
      expect((await a.http.post(`/v1/sessions/${id}/events`, [{ type: "note", data: { n: 1 } }])).status).toBe(200);
      const live = subscriber(b.gateway.url, id);
      await live.subscribed;
      await waitFor(() => live.ns.length === 1, 10_000, "the event on b");
      const listed = async () => {
        const { sessions } = (await b.http.get("/v1/sessions")).json as {
          sessions: Array<{ id: string; name: string }>;
        };
        return sessions.find((x) => x.id === quiet)?.name;
      };
      await waitFor(async () => (await listed()) === "listed", 10_000, "the quiet session listed on b");
      // Both copies settle (the sweep after the last notice reads each once).
      await sleep(2 * MIRROR_SWEEP_MS);

      const quietKeys = sessionKeys(DEFAULT_KEY_PREFIX, quiet);
      const followedReads = await metaReads(server.port, keys.meta);
      const listedReads = await metaReads(server.port, quietKeys.meta);
      const stampReads = await metaReads(server.port, quietKeys.meta, "hmget");
      await sleep(3.5 * MIRROR_SWEEP_MS);
      expect(followedReads()).toBe(0);
      expect(listedReads()).toBe(0);
      expect(stampReads()).toBeGreaterThanOrEqual(3);
      expect(b.gateway.core.sessions.copyOf(b.gateway.core.sessions.get(quiet))?.copying).toBe(false);

      // A new record Redis takes without its notice (as if the notice were lost), as the append
      // script writes it: b lists it within two sweeps.
      const redis = await connectRedis([server.url]);
      afterTest(() => redis.disconnect());
      const record = JSON.parse((await redis.hget(quietKeys.meta, "record"))!) as { meta: { name: string } };
      record.meta.name = "renamed";
      await redis.hset(quietKeys.meta, "record", JSON.stringify(record));
      await redis.hincrby(quietKeys.meta, "recordRev", 1);
      const lost = Date.now();
      await waitFor(async () => (await listed()) === "renamed", 2 * MIRROR_SWEEP_MS + 1_500, "the new record on b");
      expect(Date.now() - lost).toBeLessThan(2 * MIRROR_SWEEP_MS + 1_500);
      expect(listedReads()).toBeGreaterThanOrEqual(1);
    },
  );

  it(
    "reads a session nobody on the node follows once a sweep, not once per append, and lists its head within a sweep",
    { timeout: 60_000 },
    async () => {
      const { server, a, b, id, keys } = await twoNodes();
      // The list does not make b copy the session (a lookup by id would, for COPY_INTEREST_MS).
      const listedHead = async () => {
        const { sessions } = (await b.http.get("/v1/sessions")).json as {
          sessions: Array<{ id: string; head: number }>;
        };
        return sessions.find((x) => x.id === id)?.head;
      };
      await waitFor(async () => (await listedHead()) === 0, 10_000, "the session listed on b");

      const reads = await metaReads(server.port, keys.meta);
      const started = Date.now();
      for (let n = 1; n <= 100; n++)
        expect((await a.http.post(`/v1/sessions/${id}/events`, [{ type: "note", data: { n } }])).status).toBe(200);
      const sweeps = Math.ceil((Date.now() - started) / MIRROR_SWEEP_MS);
      // One read per sweep, and one for a notice that came while a read ran.
      expect(reads()).toBeLessThanOrEqual(2 * sweeps + 2);
      await waitFor(async () => (await listedHead()) === 100, MIRROR_SWEEP_MS + 1_500, "the head listed on b");
      expect(b.gateway.core.sessions.copyOf(b.gateway.core.sessions.get(id))?.copying).toBe(false);
    },
  );
});
