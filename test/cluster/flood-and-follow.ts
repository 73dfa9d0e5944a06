import { expect } from "vitest";
import { connectRedis } from "../../src/cluster/redis-client.js";
import { RedisLog } from "../../src/cluster/redis-log.js";
import type { StoredEntry } from "../../src/log/store.js";
import { afterTest } from "../helpers/cleanup.js";
import { TEST_TOKEN } from "../helpers/gateway.js";
import type { api } from "../helpers/gateway.js";
import { sseData } from "../helpers/sse.js";

/** Follows a session's SSE stream on `base`, keeping each event's JSON by seq, until `stop` is called. */
export function follow(base: string, id: string) {
  const seen = new Map<number, string>();
  const abort = new AbortController();
  const done = (async () => {
    let since = 0;
    while (!abort.signal.aborted) {
      try {
        const res = await fetch(`${base}/v1/sessions/${id}/stream?since=${since}`, {
          headers: { authorization: `Bearer ${TEST_TOKEN}` },
          signal: abort.signal,
        });
        for await (const data of sseData(res)) {
          const seq = (JSON.parse(data) as { seq: number }).seq;
          expect(seen.has(seq)).toBe(false);
          seen.set(seq, data);
          since = seq;
        }
      } catch (error) {
        // Aborted by stop(); anything else is a dropped stream, resumed from `since`.
        if (abort.signal.aborted) return;
        void error;
      }
    }
  })();
  return {
    seen,
    stop: async () => {
      abort.abort();
      await done;
    },
  };
}

/**
 * Posts notes (`data.n` 0, 1, …, each padded by `padBytes`) to a stream session until `stop`;
 * a refused or failed post (503 LOG_UNAVAILABLE while Redis is away) is not appended, so the
 * same note is sent again. `acknowledged` counts the posts answered 200.
 */
export function flood(producer: ReturnType<typeof api>, id: string, padBytes: number) {
  const state = { acknowledged: 0, stopped: false };
  const done = (async () => {
    for (let n = 0; !state.stopped;) {
      const res = await producer
        .post(`/v1/sessions/${id}/events`, { type: "note", data: { n, pad: "x".repeat(padBytes) } })
        .catch(() => undefined);
      if (res?.status === 200) {
        state.acknowledged++;
        n++;
      } else await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  return {
    get acknowledged() {
      return state.acknowledged;
    },
    stop: async () => {
      state.stopped = true;
      await done;
    },
  };
}

/**
 * Reads a session's log from the Redis at `url` and checks what a flood must leave there: seqs
 * contiguous from 1, every event a viewer saw (`seen`) at its seq with the same JSON, and the
 * notes 0 … once each, at least `acknowledged` of them. Returns the log.
 */
export async function expectFloodKept(
  url: string,
  id: string,
  o: { seen: Iterable<ReadonlyMap<number, string>>; acknowledged: number },
): Promise<StoredEntry[]> {
  const client = await connectRedis([url]);
  afterTest(() => client.disconnect());
  const stored = await new RedisLog(client, "sb:").read(id, 1, "+", 1_000_000);
  expect(stored.map((e) => e.seq)).toEqual(stored.map((_, i) => i + 1));
  const byId = new Map(stored.map((e) => [e.seq, e.json]));
  for (const seen of o.seen) for (const [seq, json] of seen) expect(byId.get(seq)).toBe(json);
  const notes = stored
    .filter((e) => e.type === "custom")
    .map((e) => (JSON.parse(e.json) as { data: { n: number } }).data.n);
  expect(notes).toEqual(notes.map((_, i) => i));
  expect(notes.length).toBeGreaterThanOrEqual(o.acknowledged);
  return stored;
}
