import { describe, expect, it } from "vitest";
import { LOG_BACKLOG_PAUSE_BYTES } from "../../src/log/store-backlog.js";
import { api, testGateway } from "../helpers/gateway.js";

const FLOOD_BYTES = 300 * 1024 * 1024;
/**
 * What the flood may add to the gateway's ArrayBuffers at most: the backlog bound, the ring,
 * and garbage the next GC takes. Well below the flood: output that piled up (or buffers V8
 * does not count towards a GC, as SharedArrayBuffers) would come near the flood's size.
 */
const ARRAY_BUFFERS_SLACK = 200 * 1024 * 1024;

describe("a process that writes faster than the log's store", () => {
  it("is held back: the backlog stays bounded, memory too, and every byte is stored", async () => {
    // Retention above the flood, so that all of it stays readable.
    const gw = await testGateway({ config: { retention: { maxBytes: 2 * FLOOD_BYTES } } });
    const http = api(gw.url);
    const before = process.memoryUsage().arrayBuffers;
    const { json } = await http.post("/v1/sessions", {
      // A pipe writes several times faster than SQLite commits 64 KiB rows.
      command: ["sh", "-c", `head -c ${FLOOD_BYTES} /dev/zero | tr '\\0' a`],
    });
    const session = gw.core.sessions.get(json.id)!;
    let maxBacklog = 0;
    let maxArrayBuffers = 0;
    const sample = setInterval(() => {
      maxBacklog = Math.max(maxBacklog, session.log.backlog.bytes);
      maxArrayBuffers = Math.max(maxArrayBuffers, process.memoryUsage().arrayBuffers - before);
    }, 5);
    try {
      await session.ended();
    } finally {
      clearInterval(sample);
    }
    expect(session.log.outputBytes).toBe(FLOOD_BYTES);
    expect(session.record).toMatchObject({ state: "exited", exitCode: 0 });
    // What was already read when the reader stopped (Node's stream buffer, the coalescer's piece) lands past the bound.
    expect(maxBacklog).toBeLessThanOrEqual(LOG_BACKLOG_PAUSE_BYTES + 1024 * 1024);
    expect(maxArrayBuffers).toBeLessThan(ARRAY_BUFFERS_SLACK);
    // Spot checks of what the store has: the first and the last bytes.
    const head = await http.get(`/v1/sessions/${json.id}/output?since=0`);
    expect(head.text.slice(0, 1000)).toBe("a".repeat(1000));
    const tail = await http.get(`/v1/sessions/${json.id}/output?since=${FLOOD_BYTES - 10}`);
    expect(tail.text).toBe("a".repeat(10));
  }, 60_000);
});
