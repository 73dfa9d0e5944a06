import { Clients, fanoutBare, fanoutGateway } from "./delivery.js";
const clients = new Clients();
const [mode, n, rate, ms, bytes, slow] = process.argv.slice(2);
try {
  const f = mode === "bare" ? fanoutBare : fanoutGateway;
  const t0 = performance.now();
  const r = await (f as typeof fanoutGateway)(clients, Number(n), Number(rate), Number(ms), Number(bytes), Number(slow ?? 0));
  console.log(mode, JSON.stringify(r), ((performance.now() - t0) / 1000).toFixed(1), "s");
} finally { clients.close(); }
