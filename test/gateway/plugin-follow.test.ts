import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";

const FOLLOWER = resolve("test/plugins/fixtures/follower");

type Totals = { followed: Record<string, number[]>; trimmed: number; received: number; dropped: number };

/** A gateway with the follower plugin (allowed to see every session), and a stream session to follow. */
async function setup(options: { eventMs?: number; retention?: { maxEvents: number } } = {}) {
  const gw = await testGateway({
    config: {
      ...(options.retention ? { retention: options.retention } : {}),
      plugins: {
        entries: {
          follower: {
            path: FOLLOWER,
            config: { eventMs: options.eventMs ?? 0 },
            permissions: { readAllSessions: true },
          },
        },
      },
    },
  } as never);
  const http = api(gw.url);
  const { json: session } = await http.post("/v1/sessions", { kind: "stream" });
  const ask = async (body: object) => (await http.post("/v1/plugins/follower/http/x", body)).json;
  /** Appends `count` custom events of about `bytes` each (in calls of at most `perCall`); returns the session's head after. */
  const append = async (count: number, bytes = 10, perCall = 500): Promise<number> => {
    for (let done = 0; done < count; done += perCall) {
      const n = Math.min(perCall, count - done);
      const events = Array.from({ length: n }, (_, i) => ({
        type: "n",
        data: { i: done + i, pad: "p".repeat(bytes) },
      }));
      const r = await http.post(`/v1/sessions/${session.id}/events`, events);
      expect(r.status).toBe(200);
    }
    return (await http.get(`/v1/sessions/${session.id}`)).json.head as number;
  };
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
  return { gw, http, session, ask, append, range };
}

describe("a plugin following a session's log (events.subscribe with since)", () => {
  it("gets every event after `since` from the log, then live ones, none twice and in order", async () => {
    const t = await setup();
    const before = await t.append(5);
    expect(await t.ask({ op: "follow", sessionId: t.session.id, since: before - 2 })).toBe("ok");
    const after = await t.append(3);
    const totals = await waitFor(async () => {
      const body = (await t.ask({ op: "totals" })) as Totals;
      return (body.followed[t.session.id]?.length ?? 0) >= after - (before - 2) ? body : undefined;
    });
    expect(totals.followed[t.session.id]).toEqual(t.range(before - 1, after));
    expect(totals.trimmed).toBe(0);
  });

  // The point of `since`: a plain subscription drops what a slow plugin cannot take (and says
  // how many); following reads on from the log instead, so a chat bridge that restarts, or
  // falls behind, misses no answer.
  it("loses nothing when the plugin is slower than the session, where a plain subscription drops", async () => {
    const t = await setup({ eventMs: 2 });
    expect(await t.ask({ op: "all" })).toBe("ok");
    expect(await t.ask({ op: "follow", sessionId: t.session.id, since: 0 })).toBe("ok");
    // ~6 MB of events at once, far past the plugin's 4 MiB queue: ~2 ms each to handle.
    const head = await t.append(300, 20_000, 40);
    const totals = await waitFor(
      async () => {
        const body = (await t.ask({ op: "totals" })) as Totals;
        const followed = body.followed[t.session.id]?.length ?? 0;
        return followed >= head && body.received + body.dropped >= 300 ? body : undefined;
      },
      20_000,
      "every event followed",
    );
    expect(totals.followed[t.session.id]).toEqual(t.range(1, head));
    expect(totals.trimmed).toBe(0);
    // The plain subscription beside it was too slow: it was told of what it lost.
    expect(totals.dropped).toBeGreaterThan(0);
    expect(totals.received + totals.dropped).toBe(300);
  });

  it("says how many events retention removed before it got them, then goes on from the oldest kept", async () => {
    const t = await setup({ retention: { maxEvents: 10 } });
    const head = await t.append(30);
    expect(await t.ask({ op: "follow", sessionId: t.session.id, since: 0 })).toBe("ok");
    const first = (await t.http.get(`/v1/sessions/${t.session.id}`)).json.first as number;
    const totals = await waitFor(async () => {
      const body = (await t.ask({ op: "totals" })) as Totals;
      return (body.followed[t.session.id]?.length ?? 0) >= head - first + 1 ? body : undefined;
    });
    expect(totals.followed[t.session.id]).toEqual(t.range(first, head));
    expect(totals.trimmed).toBe(first - 1);
  });

  it("is refused for a session the plugin may not see (as for none), without a session, and past the head", async () => {
    const gw = await testGateway({
      config: { plugins: { entries: { follower: { path: FOLLOWER } } } },
    });
    const http = api(gw.url);
    const ask = async (body: object) => (await http.post("/v1/plugins/follower/http/x", body)).json;
    const { json: session } = await http.post("/v1/sessions", { kind: "stream" });
    // The admin's session: without readAllSessions it does not exist for this plugin.
    expect(await ask({ op: "follow", sessionId: session.id, since: 0 })).toBe("SESSION_NOT_FOUND");
    expect(await ask({ op: "follow", sessionId: "no-such-session", since: 0 })).toBe("SESSION_NOT_FOUND");
    expect(await ask({ op: "follow", since: 0 })).toBe("VALIDATION_FAILED");
    expect(await ask({ op: "follow", sessionId: session.id, since: -1 })).toBe("VALIDATION_FAILED");

    const seeing = await setup();
    const head = (await seeing.http.get(`/v1/sessions/${seeing.session.id}`)).json.head as number;
    expect(await seeing.ask({ op: "follow", sessionId: seeing.session.id, since: head + 5 })).toBe("BAD_REQUEST");
  });
});
