import { Clients, gateway } from "./delivery.js";
import { PTY_BENCH_COMMAND } from "./pty.js";
const clients = new Clients();
const n = Number(process.argv[2] ?? 1);
const now = () => performance.timeOrigin + performance.now();
try {
  for (let i = 0; i < 3; i++) {
    const g = await gateway();
    const t0 = now();
    const res = await fetch(`${g.gw.url}/v1/sessions`, { method: "POST", headers: { Authorization: `Bearer delivery-bench-token-0123456789abcdef`, "Content-Type": "application/json" }, body: JSON.stringify({ command: PTY_BENCH_COMMAND, pty: true }) });
    const { id } = (await res.json()) as { id: string };
    clients.send({ op: "pty", url: `${g.gw.url.replace("http", "ws")}/ws/session/${id}?since=0`, clients: n });
    let ended = 0;
    void g.gw.core.sessions.get(id)!.ended().then(() => (ended = now()));
    const r = await clients.next("pty");
    console.log("session ended after", ((ended - t0) / 1000).toFixed(2), "s; clients done after", r.doneAt.map((t) => ((t - t0) / 1000).toFixed(2)).join(","));
    await clients.release();
    await g.close();
  }
} finally { clients.close(); }
