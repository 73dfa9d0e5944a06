import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { connect } from "../../src/client/node.js";
import type { SessionEvent } from "../../src/client/node.js";
import { TEST_TOKEN, api } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";

/** A process that writes numbered lines as fast as its pipe takes them. */
const FLOOD = [
  process.execPath,
  "-e",
  `let i=0;const w=()=>{while(process.stdout.write("line"+(++i)+"\\n"));process.stdout.once("drain",w)};w()`,
];

describe("a gateway killed with SIGKILL", () => {
  it("loses nothing a client received: the restarted log has every event and byte at the same position, and the client resumes to the end", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "switchboard-crash-"));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    const first = await serveInChild({ dataDir });
    const port = Number(new URL(first.url).port);
    const client = await connect({
      url: first.url,
      token: TEST_TOKEN,
      reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
    });
    onTestFinished(() => client.close());
    const session = await client.createSession({ command: FLOOD, pty: false });
    const received: SessionEvent[] = [];
    const sub = client.subscribe(session.id, { since: 0 }, (e) => received.push(e));

    // Kill it in the middle of the flood, while the writer thread has a backlog.
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (received.length < 300) return;
        clearInterval(check);
        resolve();
      }, 1);
    });
    first.child.kill("SIGKILL");
    await new Promise((r) => first.child.once("exit", r));
    const before = received.slice();
    expect(before.length).toBeGreaterThanOrEqual(300);

    // Restart on the same data dir and port: the client reconnects by itself.
    const second = await serveInChild({ dataDir, port });
    const http = api(second.url);
    const stored: Array<Record<string, unknown>> = [];
    let since = 0;
    for (;;) {
      const page = (await http.get(`/v1/sessions/${session.id}/events?since=${since}&limit=1000`)).json as {
        events: Array<Record<string, unknown>>;
        next: number;
        head: number;
      };
      stored.push(...page.events);
      if (page.next >= page.head) break;
      since = page.next;
    }
    // Every event the client held is in the restarted log, with the same seq and content.
    for (const e of before) expect(stored[e.seq - 1]).toEqual(e);
    const outputs = before.filter((e) => e.type === "output");
    const last = outputs[outputs.length - 1]!;
    const end = last.offset + Buffer.byteLength(last.data);
    // Raw output, paged (one answer carries at most 8 MiB).
    let bytes = Buffer.alloc(0);
    while (bytes.length < end) {
      const res = await fetch(`${second.url}/v1/sessions/${session.id}/output?since=${bytes.length}`, {
        headers: { authorization: `Bearer ${TEST_TOKEN}` },
      });
      const page = Buffer.from(await res.arrayBuffer());
      if (page.length === 0) break;
      bytes = Buffer.concat([bytes, page]);
    }
    expect(bytes.length).toBeGreaterThanOrEqual(end);
    expect(bytes.subarray(0, end).toString()).toBe(outputs.map((e) => e.data).join(""));

    // The session is restored as lost; the client's subscription resumes and ends with it.
    const done = await Promise.race([sub.done, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 10_000))]);
    expect(done).not.toBe("timeout");
    expect((done as SessionEvent).type).toBe("lost");
    expect(received.map((e) => e.seq)).toEqual(received.map((_, i) => i + 1));
    expect(received.at(-1)).toEqual(stored.at(-1));
  }, 60_000);
});
