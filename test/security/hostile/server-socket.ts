// Whether the gateway still holds a TCP connection open, read from the kernel's table
// (/proc/net/tcp) rather than from the client: a client that reads slowly still has buffered
// bytes to take after the gateway has closed its end, and it is the gateway's close that a
// sign-out or revoke promises (docs/security.md, "Fuzzing").
import { readFileSync } from "node:fs";

/** TCP_ESTABLISHED in /proc/net/tcp's `st` column. */
const ESTABLISHED = "01";

const hexPort = (port: number) => port.toString(16).toUpperCase().padStart(4, "0");

/**
 * The client ports (of `clientPorts`) whose connection to the gateway on `gatewayPort` the gateway
 * still holds ESTABLISHED. A connection the gateway closed is in FIN_WAIT or gone.
 */
export function establishedByGateway(gatewayPort: number, clientPorts: readonly number[]): Set<number> {
  const gw = `:${hexPort(gatewayPort)}`;
  const wanted = new Map(clientPorts.map((p) => [`:${hexPort(p)}`, p]));
  const open = new Set<number>();
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n")) {
    // sl local_address rem_address st ...
    const [, local, remote, st] = line.trim().split(/\s+/);
    if (local === undefined || remote === undefined || st !== ESTABLISHED || !local.endsWith(gw)) continue;
    const port = wanted.get(remote.slice(remote.indexOf(":")));
    if (port !== undefined) open.add(port);
  }
  return open;
}
