import { Redis } from "ioredis";
import { describe, expect, it, onTestFinished } from "vitest";
import { HttpClient } from "../../src/client/http.js";
import { api, testGateway, TEST_TOKEN } from "../helpers/gateway.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { sseData } from "../helpers/sse.js";
import { configuredNodes } from "./ws-forward-helpers.js";
import type { TestRedis } from "../helpers/redis.js";
import { waitFor } from "../helpers/wait-for.js";

/** The shortened lease TTL these tests run with (the default is 10 s). */
const TTL_MS = 1500;
const TEST_MS = 60_000;
const VIEWER_TOKEN = "viewer-token-0123456789abcdef";

/** Gateway processes on one Redis, each with the lease TTL shortened to TTL_MS. */
function cluster(names: string[]): Promise<{ redis: TestRedis; nodes: ChildGateway[] }> {
  return configuredNodes(names, {
    cluster: { nodeTtlMs: TTL_MS },
    auth: { tokens: [{ name: "vera", token: VIEWER_TOKEN, role: "viewer", sessions: ["*"] }] },
  });
}

/** A process a killed gateway left behind (its PTY's child) is killed when the test ends. */
function reap(pid: number): void {
  onTestFinished(() => {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone: what the fencing test expects.
    }
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    // ESRCH: no such process.
    return false;
  }
}

interface Seen {
  seq: number;
  type: string;
  data?: string;
  enc?: string;
  reason?: string;
}

/** Follows a session's SSE stream from `since`, keeping every event; `stop()` ends it. */
function follow(base: string, id: string, since = 0) {
  const events: Array<Seen & { at: number }> = [];
  const abort = new AbortController();
  const done = (async () => {
    const res = await fetch(`${base}/v1/sessions/${id}/stream?since=${since}`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    for await (const data of sseData(res)) events.push({ ...(JSON.parse(data) as Seen), at: performance.now() });
  })().catch((error: unknown) => {
    if (!abort.signal.aborted) throw error;
  });
  return { events, stop: () => abort.abort(), done };
}

/** Every event of a session on `base`, paged from the start. */
async function allEvents(base: string, id: string): Promise<Seen[]> {
  const out: Seen[] = [];
  for (;;) {
    const res = await api(base).get(`/v1/sessions/${id}/events?since=${out.at(-1)?.seq ?? 0}&limit=1000`);
    expect(res.status).toBe(200);
    const page = res.json.events as Seen[];
    out.push(...page);
    if (page.length === 0 || (res.json.next as number) >= (res.json.head as number)) return out;
  }
}

describe("cluster membership", () => {
  it(
    "lists every node with its sessions and heartbeat to admins, and refuses a viewer with FORBIDDEN",
    async () => {
      const { nodes } = await cluster(["gw-a", "gw-b"]);
      const [a, b] = nodes as [ChildGateway, ChildGateway];
      const onA = (await api(a.url).post("/v1/sessions", { kind: "stream" })).json.id as string;
      const onB = (await api(b.url).post("/v1/sessions", { kind: "stream" })).json.id as string;
      // A new session reaches Redis with its first append, just after POST /v1/sessions answered.
      const listing = async () => {
        const res = await api(b.url).get("/v1/nodes");
        expect(res.status).toBe(200);
        return (res.json.nodes as Array<Record<string, unknown>>).sort((x, y) =>
          String(x["id"]).localeCompare(String(y["id"])),
        );
      };
      await waitFor(async () => {
        expect((await listing()).map((n) => n["sessions"])).toEqual([[onA], [onB]]);
        return true;
      });
      const before = Date.now();
      const listed = await listing();
      expect(listed).toMatchObject([
        { id: "gw-a", alive: true, self: false, ttlMs: TTL_MS, sessions: [onA] },
        { id: "gw-b", alive: true, self: true, ttlMs: TTL_MS, sessions: [onB] },
      ]);
      for (const node of listed) expect(before - (node["heartbeatAt"] as number)).toBeLessThan(TTL_MS);
      const refused = await api(a.url, VIEWER_TOKEN).get("/v1/nodes");
      expect([refused.status, refused.json.error.code]).toEqual([403, "FORBIDDEN"]);
      // The SDK's listNodes answers the same; a viewer's call is refused with the same code.
      const sdk = await new HttpClient({ url: b.url, token: TEST_TOKEN }).listNodes();
      expect(sdk.map((n) => [n.id, n.alive, n.sessions]).sort()).toEqual([
        ["gw-a", true, [onA]],
        ["gw-b", true, [onB]],
      ]);
      await expect(new HttpClient({ url: a.url, token: VIEWER_TOKEN }).listNodes()).rejects.toMatchObject({
        code: "FORBIDDEN",
      });
    },
    TEST_MS,
  );

  it("answers an empty list on a gateway outside cluster mode", async () => {
    const gw = await testGateway();
    const res = await api(gw.url).get("/v1/nodes");
    expect([res.status, res.json]).toEqual([200, { nodes: [] }]);
  });

  it(
    "kill -9 of a node mid-flood: exactly one survivor ends its terminal lost within TTL + 2 s, keeps what viewers saw, and adopts its stream",
    async () => {
      const { redis, nodes } = await cluster(["gw-a", "gw-b", "gw-c"]);
      const [a, b, c] = nodes as [ChildGateway, ChildGateway, ChildGateway];
      const term = await api(a.url).post("/v1/sessions", {
        kind: "terminal",
        command: ["sh", "-c", "i=0; while :; do i=$((i+1)); echo line $i; done"],
      });
      expect(term.status).toBe(201);
      const termId = term.json.id as string;
      reap(term.json.pid as number);
      const streamId = (await api(a.url).post("/v1/sessions", { kind: "stream" })).json.id as string;
      for (let i = 0; i < 5; i++)
        await api(a.url).post(`/v1/sessions/${streamId}/events`, {
          type: "output",
          data: { stream: "stdout", data: `before ${i}\n` },
        });
      await waitFor(async () => (await api(b.url).get(`/v1/sessions/${streamId}`)).status === 200);
      await waitFor(async () => (await api(c.url).get(`/v1/sessions/${termId}`)).status === 200);
      const onA = follow(a.url, termId);
      const onB = follow(b.url, termId);
      await waitFor(() => (onA.events.length > 200 && onB.events.length > 200) === true, 15_000);

      a.child.kill("SIGKILL");
      const killedAt = performance.now();
      onA.stop();
      const seenOnA = onA.events.slice();
      await waitFor(() => onB.events.find((e) => e.type === "lost") !== undefined, TTL_MS + 5_000);
      const lost = onB.events.find((e) => e.type === "lost")!;
      expect(lost.at - killedAt).toBeLessThan(TTL_MS + 2_000);
      expect(lost.reason).toContain("gw-a");
      onB.stop();

      // Every event a viewer saw is in the log, as it saw it; the log is contiguous and ends with one `lost`.
      for (const node of [b, c]) {
        const log = await allEvents(node.url, termId);
        expect(log.map((e) => e.seq)).toEqual(log.map((_, i) => i + 1));
        const bySeq = new Map(log.map((e) => [e.seq, JSON.stringify(e)]));
        for (const seen of [...seenOnA, ...onB.events]) {
          const { at: _at, ...event } = seen;
          expect(bySeq.get(event.seq)).toBe(JSON.stringify(event));
        }
        expect(log.filter((e) => e.type === "lost")).toHaveLength(1);
        expect(log.at(-1)?.type).toBe("lost");
      }
      // One node took it over, never two.
      const takers = [b, c].filter((n) => n.log.some((l) => l["msg"] === "cluster: took over a dead node's session"));
      expect(takers).toHaveLength(1);
      const taker = takers[0]!;
      const other = taker === b ? c : b;
      await waitFor(async () => (await api(other.url).get(`/v1/sessions/${termId}`)).json.state === "lost", 5_000);

      // The stream runs on at its new owner, and every node shows what it takes.
      const nodesNow = (await api(taker.url).get("/v1/nodes")).json.nodes as Array<{ id: string; sessions: string[] }>;
      expect(nodesNow.map((n) => n.id).sort()).toEqual(["gw-b", "gw-c"]);
      expect(nodesNow.find((n) => n.id === (taker === b ? "gw-b" : "gw-c"))?.sessions.sort()).toEqual(
        [termId, streamId].sort(),
      );
      const posted = await api(taker.url).post(`/v1/sessions/${streamId}/events`, {
        type: "output",
        data: { stream: "stdout", data: "after\n" },
      });
      expect(posted.status).toBe(200);
      for (const node of [b, c])
        await waitFor(
          async () =>
            (await api(node.url).get(`/v1/sessions/${streamId}/output`)).text ===
            "before 0\nbefore 1\nbefore 2\nbefore 3\nbefore 4\nafter\n",
          5_000,
        );
      expect((await api(other.url).get(`/v1/sessions/${streamId}`)).json.state).toBe("running");

      // Redis holds it all under the new epoch, owned by the taker.
      const direct = new Redis(redis.port, "127.0.0.1");
      onTestFinished(() => direct.disconnect());
      expect(await direct.hmget(`sb:{${streamId}}:meta`, "epoch", "owner")).toEqual([
        "2",
        taker === b ? "gw-b" : "gw-c",
      ]);
    },
    TEST_MS,
  );

  it(
    "a node paused past its TTL finds its sessions fenced when it runs again: its appends are refused and its process stopped",
    async () => {
      const { redis, nodes } = await cluster(["gw-a", "gw-b"]);
      const [a, b] = nodes as [ChildGateway, ChildGateway];
      const term = await api(a.url).post("/v1/sessions", {
        kind: "terminal",
        command: ["sh", "-c", "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.01; done"],
      });
      expect(term.status).toBe(201);
      const termId = term.json.id as string;
      const pid = term.json.pid as number;
      reap(pid);
      await waitFor(async () => (await api(b.url).get(`/v1/sessions/${termId}`)).status === 200);
      const streamId = (await api(a.url).post("/v1/sessions", { kind: "stream" })).json.id as string;
      const posted = await api(a.url).post(`/v1/sessions/${streamId}/events`, {
        type: "output",
        data: { stream: "stdout", data: "one\n" },
      });
      expect(posted.status).toBe(200);
      await waitFor(async () => (await api(b.url).get(`/v1/sessions/${streamId}/output`)).text === "one\n");
      const viewer = follow(b.url, termId);
      await waitFor(() => viewer.events.length > 20 === true, 10_000);

      a.child.kill("SIGSTOP");
      onTestFinished(() => void a.child.kill("SIGCONT"));
      await waitFor(() => viewer.events.find((e) => e.type === "lost") !== undefined, TTL_MS + 5_000);
      const lostSeq = viewer.events.find((e) => e.type === "lost")!.seq;
      expect(alive(pid)).toBe(true);
      a.child.kill("SIGCONT");

      // Its next append is refused: it stops the shell and says why.
      await waitFor(() => alive(pid) === false, 10_000);
      await waitFor(() => {
        expect(
          // Its own line: the quiet stream's fence (below) may be said first.
          a.log.find(
            (l) =>
              l["msg"] ===
                "session fenced: another node owns it now, so this node stops it and appends nothing more to it" &&
              l["sessionId"] === termId,
          ),
        ).toMatchObject({ sessionId: termId, reason: expect.stringContaining("owned by gw-b") });
        return true;
      }, 5_000);
      // Its quiet stream session is found fenced too (its epoch checked after the lease lapsed): a post there is refused.
      await waitFor(
        () => a.log.some((l) => String(l["msg"]).startsWith("session fenced") && l["sessionId"] === streamId) === true,
      );
      // It shows the stream as a copy of gw-b's now: a post there is carried to gw-b, as from any node.
      const forwarded = await api(a.url).post(`/v1/sessions/${streamId}/events`, {
        type: "output",
        data: { stream: "stdout", data: "two\n" },
      });
      expect(forwarded.status).toBe(200);
      const taken = await api(b.url).post(`/v1/sessions/${streamId}/events`, {
        type: "output",
        data: { stream: "stdout", data: "three\n" },
      });
      expect(taken.status).toBe(200);
      for (const node of [a, b])
        await waitFor(
          async () => (await api(node.url).get(`/v1/sessions/${streamId}/output`)).text === "one\ntwo\nthree\n",
        );
      // Nothing it wrote after the fence reached Redis or a viewer: the log ends at the one `lost`.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const direct = new Redis(redis.port, "127.0.0.1");
      onTestFinished(() => direct.disconnect());
      const ids = (await direct.xrange(`sb:{${termId}}:log`, "-", "+")).map(([id]) => Number(id.split("-")[0]));
      expect(ids).toEqual(ids.map((_, i) => i + 1));
      expect(ids.at(-1)).toBe(lostSeq);
      expect(viewer.events.at(-1)?.seq).toBe(lostSeq);
      viewer.stop();
      for (const node of [a, b]) {
        const log = await allEvents(node.url, termId);
        expect(log.filter((e) => e.seq > lostSeq)).toEqual([]);
      }
    },
    TEST_MS,
  );
});
