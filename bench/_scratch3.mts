import { gateway } from "./delivery.js";
import { measureRawPty, measurePtyPipeline, PTY_BENCH_COMMAND } from "./pty.js";
const mb = (b: number, ms: number) => (b / 1e6 / (ms / 1000)).toFixed(1);
for (let i = 0; i < 3; i++) {
  const raw = await measureRawPty(PTY_BENCH_COMMAND);
  const pipe = await measurePtyPipeline(PTY_BENCH_COMMAND);
  const g = await gateway();
  const t0 = performance.now();
  const res = await fetch(`${g.gw.url}/v1/sessions`, { method: "POST", headers: { Authorization: `Bearer delivery-bench-token-0123456789abcdef`, "Content-Type": "application/json" }, body: JSON.stringify({ command: PTY_BENCH_COMMAND, pty: true }) });
  const { id } = (await res.json()) as { id: string };
  await g.gw.core.sessions.get(id)!.ended();
  const t1 = performance.now();
  console.log("raw", mb(raw.bytes, raw.ms), "pipeline", mb(pipe.bytes, pipe.ms), "session(no viewer)", mb(50 * 1024 * 1024, t1 - t0));
  await g.close();
}
