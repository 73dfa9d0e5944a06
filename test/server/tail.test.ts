import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { TEST_TOKEN, api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";

const BYTES = 200 * 1024;
// Deterministic content with a checksum we can compute here: 200 KB of numbered lines.
const SCRIPT = `node -e 'let s="";for(let i=0;s.length<${BYTES};i++)s+=String(i).padStart(7,"0")+"\\n";process.stdout.write(s.slice(0,${BYTES}))'`;

function expected(): Buffer {
  let s = "";
  for (let i = 0; s.length < BYTES; i++) s += String(i).padStart(7, "0") + "\n";
  return Buffer.from(s.slice(0, BYTES));
}

describe("output tail before exit (docs/architecture.md, guarantee 3)", () => {
  it("keeps every byte of 20 PTY and 20 pipe sessions that write 200 KB and exit at once", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const created = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        http.post("/v1/sessions", { command: ["bash", "-c", SCRIPT], pty: i % 2 === 0 }),
      ),
    );
    const ids = created.map((r) => {
      expect(r.status).toBe(201);
      return r.json.id as string;
    });
    await waitFor(
      async () => {
        const list = (await http.get("/v1/sessions")).json.sessions as Array<{ state: string }>;
        return list.every((s) => s.state === "exited");
      },
      60_000,
      "all 40 to exit",
    );
    const wanted = expected();
    const want = createHash("sha256").update(wanted).digest("hex");
    for (const [i, id] of ids.entries()) {
      const res = await fetch(`${gw.url}/v1/sessions/${id}/output`, {
        headers: { authorization: `Bearer ${TEST_TOKEN}` },
      });
      let bytes = Buffer.from(await res.arrayBuffer());
      // A PTY turns \n into \r\n (onlcr); undo it to compare content.
      if (i % 2 === 0) bytes = Buffer.from(bytes.toString("latin1").replaceAll("\r\n", "\n"), "latin1");
      // On a mismatch, what differs (a pipe's output holds its stderr too: a warning would show here).
      const at = bytes.findIndex((b, k) => b !== wanted[k]);
      const differs = at < 0 ? "" : JSON.stringify(bytes.subarray(Math.max(0, at - 16), at + 200).toString("latin1"));
      expect(bytes.length, `session ${i} (${i % 2 === 0 ? "pty" : "pipe"}): ${differs}`).toBe(BYTES);
      expect(createHash("sha256").update(bytes).digest("hex")).toBe(want);
      const last = (await http.get(`/v1/sessions/${id}/events?since=0&types=exit`)).json.events;
      expect(last).toHaveLength(1);
      expect(last[0]).toMatchObject({ exitCode: 0 });
      const head = (await http.get(`/v1/sessions/${id}`)).json.head;
      expect(last[0].seq).toBe(head);
    }
  }, 90_000);
});
