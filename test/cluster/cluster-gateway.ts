import { createLogger } from "../../src/server/ops/logger.js";
import { api, testGateway } from "../helpers/gateway.js";

/** A gateway in this process in cluster mode on Redis `url` as `nodeId`, its JSON log lines kept in `lines`. */
export async function clusterGateway(url: string, nodeId: string) {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: "info",
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  const gateway = await testGateway({ cluster: { redis: [url], nodeId }, logger });
  return { gateway, http: api(gateway.url), lines };
}
