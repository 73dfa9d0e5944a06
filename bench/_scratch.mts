import { Clients, fanoutBare, fanoutGateway } from "./delivery.js";
const clients = new Clients();
try {
  for (let i = 0; i < 3; i++) for (const mode of ["bare", "gw"]) {
    const f = mode === "bare" ? fanoutBare : fanoutGateway;
    const r = await (f as typeof fanoutGateway)(clients, 500, 100, 3000, 1024);
    console.log(mode, Math.round(r.perSecond), "p50", r.p50.toFixed(1), "p99", r.p99.toFixed(1));
  }
} finally { clients.close(); }
