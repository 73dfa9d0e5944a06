/**
 * Time to the first frame of `/ws/session/:id?since=screen` on a PTY session that printed
 * MB megabytes (default 100), beside `?since=0` (the whole replay) on the same session.
 *   node --import tsx scripts/screen-connect.ts [MB]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { startGateway } from "../src/server/gateway.js";
import type { GatewayOptions } from "../src/server/gateway.js";
import { createLogger } from "../src/server/ops/logger.js";

const mb = Number(process.argv[2] ?? 100);
const token = "screen-connect-token-0123456789abcdef";
const dataDir = mkdtempSync(join(tmpdir(), "screen-connect-"));
const gw = await startGateway({
  host: "127.0.0.1",
  port: 0,
  token,
  dataDir,
  logger: createLogger({ level: "silent" }),
} as GatewayOptions);
const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
const created = (await (
  await fetch(`${gw.url}/v1/sessions`, {
    method: "POST",
    headers,
    // base64 of 3/4 as many bytes is MB megabytes (plus line ends), then a prompt-like last line.
    body: JSON.stringify({
      command: ["sh", "-c", `head -c ${(mb * 1_000_000 * 3) / 4} /dev/zero | base64; printf 'done$ '; sleep 600`],
      pty: true,
      cols: 80,
      rows: 24,
    }),
  })
).json()) as { id: string };
for (;;) {
  const s = (await (await fetch(`${gw.url}/v1/sessions/${created.id}`, { headers })).json()) as { outputBytes: number };
  if (s.outputBytes >= mb * 1_000_000) break;
  await new Promise((r) => setTimeout(r, 200));
}
await new Promise((r) => setTimeout(r, 500));

/** Milliseconds to the first frame and to `connected`, and the bytes received before `connected`. */
async function connect(query: string): Promise<{ first: number; connected: number; bytes: number }> {
  const started = performance.now();
  const ws = new WebSocket(`${gw.url.replace("http", "ws")}/ws/session/${created.id}?${query}`, { headers });
  let first = 0;
  let bytes = 0;
  return new Promise((resolve, reject) => {
    ws.on("message", (raw: Buffer) => {
      if (first === 0) first = performance.now() - started;
      bytes += raw.length;
      if ((JSON.parse(raw.toString()) as { type: string }).type === "connected") {
        resolve({ first, connected: performance.now() - started, bytes });
        ws.close();
      }
    });
    ws.on("error", reject);
  });
}

for (const query of ["since=screen", "since=screen", "since=0"]) {
  const r = await connect(query);
  console.log(
    `${query}: first frame ${r.first.toFixed(0)} ms, connected ${r.connected.toFixed(0)} ms, ${(r.bytes / 1e6).toFixed(2)} MB before it`,
  );
}
await gw.close();
rmSync(dataDir, { recursive: true, force: true });
