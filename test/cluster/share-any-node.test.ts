/**
 * Share links in cluster mode: a link made on one node opens its session on another, and
 * revoking it on the first closes its connections on the second within a second.
 */
import { describe, expect, it } from "vitest";
import { api } from "../helpers/gateway.js";
import { startRedis } from "../helpers/redis.js";
import { waitFor } from "../helpers/wait-for.js";
import { Mux } from "../security/helpers.js";
import { clusterGateway } from "./cluster-gateway.js";

/** Time a revoked link's connections may stay open on another node (the promise). */
const REVOKE_WITHIN_MS = 1000;

describe("share links on any node", () => {
  it("open their session on another node, and end there when revoked on the first", async () => {
    const redis = await startRedis();
    const a = await clusterGateway(redis.url, "gw-a");
    const b = await clusterGateway(redis.url, "gw-b");
    const { id } = (await a.http.post("/v1/sessions", { command: ["cat"], pty: true })).json;
    const made = await a.http.post(`/v1/sessions/${id}/shares`, { name: "roaming" });
    expect(made.status, made.text).toBe(201);
    const token = made.json.token as string;

    // On B at once: the answer came once every node could verify it.
    const onB = api(b.gateway.url, token);
    expect((await onB.get("/v1/whoami")).json).toMatchObject({ name: "share:roaming", share: { session: id } });
    await waitFor(async () => (await onB.get(`/v1/sessions/${id}`)).status === 200, 10_000, "the session on B");
    expect((await b.http.get(`/v1/sessions/${id}/shares`)).json.shares).toHaveLength(1);
    const mux = await Mux.open(b.gateway, null, { headers: { authorization: `Bearer ${token}` } });
    expect((await mux.request({ op: "subscribe", session: id })).op).toBe("subscribed");

    const started = Date.now();
    expect((await a.http.del(`/v1/sessions/${id}/shares/${made.json.id as string}`)).status).toBe(200);
    expect((await mux.client.closed).code).toBe(1008);
    expect(Date.now() - started).toBeLessThan(REVOKE_WITHIN_MS);
    expect(mux.frames.some((f) => f["op"] === "error" && /revoked/.test(String(f["message"])))).toBe(true);
    expect((await onB.get("/v1/whoami")).status).toBe(401);

    // A node that starts later reads the live links from Redis.
    const again = (await b.http.post(`/v1/sessions/${id}/shares`, { name: "late" })).json.token as string;
    const c = await clusterGateway(redis.url, "gw-c");
    expect((await api(c.gateway.url, again).get("/v1/whoami")).json.name).toBe("share:late");
  }, 60_000);
});
