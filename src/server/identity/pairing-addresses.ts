/**
 * The addresses a device might open the gateway at, for "Pair a device" and `switchboard pair`
 * (`GET /v1/devices/addresses`): the listen address, the machine's interface addresses when it
 * listens on every one, the `allowedHosts` names, and this machine's Tailscale name. Each says
 * whether another device can reach it (loopback: no) and whether a browser counts it a secure
 * context (Web Push needs one). Tests: test/server/pairing-addresses.test.ts.
 */
import { execFile } from "node:child_process";
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import type { NetworkInterfaceInfo } from "node:os";
import type { PairingAddress } from "../../protocol/index.js";

/** How long `tailscale status` may take before the listing goes on without it. */
export const TAILSCALE_STATUS_TIMEOUT_MS = 1500;
/** The most of `tailscale status --json` read (a tailnet of a few hundred peers). */
const TAILSCALE_STATUS_MAX_BYTES = 4 * 1024 * 1024;

/** The interfaces as `os.networkInterfaces()` lists them. */
export type Interfaces = NodeJS.Dict<NetworkInterfaceInfo[]>;

export interface AddressSources {
  /** The address the gateway listens on (`--host`): an IP, a name, or 0.0.0.0 / :: for every one. */
  host: string;
  port: number;
  /** Whether the gateway serves HTTPS itself (`--tls-cert`). */
  tls: boolean;
  /** The configured `allowedHosts` names. */
  allowedHosts: readonly string[];
  /** This machine's interfaces (default: `os.networkInterfaces()`). */
  interfaces: Interfaces;
  /** This machine's Tailscale DNS name (`box.tail1234.ts.net`), when Tailscale runs. */
  tailscaleName: string | undefined;
}

/** Whether `host` is the every-address listen (0.0.0.0, ::). */
export function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "[::]";
}

/** Whether `host` (a name or an address, IPv6 with or without brackets) is this machine's loopback. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  return h === "::1";
}

/**
 * Whether `hostname` (as the Host check compares it: lower case, IPv6 bracketed) is an address
 * of one of this machine's interfaces. An IP literal cannot be a rebinding name, so a gateway
 * listening on every address accepts its own (docs/security.md, "Host and Origin checks").
 */
export function isOwnAddress(hostname: string, interfaces: Interfaces = networkInterfaces()): boolean {
  const address = hostname.replace(/^\[|\]$/g, "");
  if (isIP(address) === 0) return false;
  return Object.values(interfaces).some((list) => list?.some((i) => i.address.toLowerCase() === address));
}

/** The listing, most useful first: reachable and secure, then reachable, then the rest. */
export function pairingAddresses(sources: AddressSources): PairingAddress[] {
  const { host, port, tls, allowedHosts, interfaces, tailscaleName } = sources;
  const scheme = tls ? "https" : "http";
  const origin = (name: string) => `${scheme}://${urlHost(name)}:${port}`;
  const found: PairingAddress[] = [];
  const add = (address: PairingAddress) => {
    if (!found.some((a) => a.url === address.url)) found.push(address);
  };
  const direct = (name: string, kind: PairingAddress["kind"]) =>
    add({ url: origin(name), kind, reachable: !isLoopback(name), secure: tls || isLoopback(name) });

  if (isWildcard(host)) {
    direct(host.includes(":") ? "::1" : "127.0.0.1", "listen");
    for (const address of lanAddresses(interfaces, host.includes(":"))) direct(address, "lan");
  } else direct(host, "listen");

  for (const name of allowedHosts) {
    if (isLoopback(name)) continue;
    // Behind a TLS proxy (the documented deployment) the name is opened at https on 443.
    if (tls) direct(name, "allowed-host");
    else
      add({
        url: `https://${name}`,
        kind: "allowed-host",
        reachable: true,
        secure: true,
        note: "through the TLS proxy in front of the gateway",
      });
  }

  if (tailscaleName !== undefined) {
    const listed = allowedHosts.includes(tailscaleName);
    add({
      url: `https://${tailscaleName}`,
      kind: "tailscale",
      reachable: true,
      secure: true,
      note: `with Tailscale Serve (tailscale serve --bg --https=443 ${scheme}://127.0.0.1:${port})${
        listed ? "" : ` and ${tailscaleName} in allowedHosts`
      }`,
    });
  }
  const rank = (a: PairingAddress) => (a.reachable ? 0 : 2) + (a.secure ? 0 : 1);
  return found
    .map((a, i) => ({ a, i }))
    .sort((x, y) => rank(x.a) - rank(y.a) || x.i - y.i)
    .map(({ a }) => a);
}

/**
 * The interface addresses another device on the network may reach: not loopback, not link-local
 * (169.254/16, fe80::/10, which need a zone and are not routed); IPv6 ones only when the gateway
 * listens on `::` (0.0.0.0 accepts IPv4 only).
 */
export function lanAddresses(interfaces: Interfaces, ipv6: boolean): string[] {
  const addresses: string[] = [];
  for (const list of Object.values(interfaces))
    for (const i of list ?? []) {
      if (i.internal) continue;
      if (i.family === "IPv4" && !i.address.startsWith("169.254.")) addresses.push(i.address);
      if (i.family === "IPv6" && ipv6 && !/^fe[89ab]/i.test(i.address)) addresses.push(i.address);
    }
  return addresses;
}

/**
 * This machine's Tailscale name from `tailscale status --json` (`Self.DNSName`, without its
 * final dot); undefined when Tailscale is not installed, not running or slow to answer.
 */
export function tailscaleName(): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(
      "tailscale",
      ["status", "--json"],
      { timeout: TAILSCALE_STATUS_TIMEOUT_MS, maxBuffer: TAILSCALE_STATUS_MAX_BYTES, windowsHide: true },
      (error, stdout) => {
        // Not installed (ENOENT), stopped or logged out (a non-zero exit): no Tailscale name to offer.
        if (error) return resolve(undefined);
        resolve(dnsNameOf(stdout));
      },
    );
  });
}

/** `Self.DNSName` of `tailscale status --json` output, without its final dot. */
export function dnsNameOf(statusJson: string): string | undefined {
  let status: unknown;
  try {
    status = JSON.parse(statusJson);
  } catch (error) {
    // Not JSON (an old tailscale printing text): treated as no name.
    if (error instanceof SyntaxError) return undefined;
    throw error;
  }
  const name = (status as { Self?: { DNSName?: unknown } } | null)?.Self?.DNSName;
  if (typeof name !== "string") return undefined;
  const trimmed = name.replace(/\.$/, "").toLowerCase();
  return /^[a-z0-9.-]{1,253}$/.test(trimmed) ? trimmed : undefined;
}

function urlHost(name: string): string {
  const bare = name.replace(/^\[|\]$/g, "");
  return isIP(bare) === 6 ? `[${bare}]` : bare;
}
