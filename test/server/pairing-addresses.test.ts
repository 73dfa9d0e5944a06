/**
 * Where "Pair a device" and `switchboard pair` offer to open the gateway: the listing on injected
 * interfaces (src/server/identity/pairing-addresses.ts), and the route over a real gateway.
 */
import { describe, expect, it } from "vitest";
import { networkInterfaces } from "node:os";
import type { NetworkInterfaceInfo } from "node:os";
import type { IncomingMessage } from "node:http";
import type { GatewayCore } from "../../src/server/context.js";
import { RequestGuard } from "../../src/server/http/guard.js";
import { dnsNameOf, isOwnAddress, pairingAddresses } from "../../src/server/identity/pairing-addresses.js";
import type { Interfaces } from "../../src/server/identity/pairing-addresses.js";
import { api, testGateway } from "../helpers/gateway.js";

const iface = (address: string, family: "IPv4" | "IPv6", internal = false): NetworkInterfaceInfo =>
  ({ address, family, internal, netmask: "", mac: "00:00:00:00:00:00", cidr: null }) as NetworkInterfaceInfo;

const INTERFACES: Interfaces = {
  lo: [iface("127.0.0.1", "IPv4", true), iface("::1", "IPv6", true)],
  wlan0: [iface("192.168.1.23", "IPv4"), iface("fe80::1", "IPv6"), iface("2001:db8::23", "IPv6")],
  docker0: [iface("169.254.3.4", "IPv4")],
};
const base = { port: 7317, tls: false, allowedHosts: [], interfaces: INTERFACES, tailscaleName: undefined };

describe("pairing addresses", () => {
  it("offers nothing a phone can reach on a loopback-only gateway", () => {
    expect(pairingAddresses({ ...base, host: "127.0.0.1" })).toEqual([
      { url: "http://127.0.0.1:7317", kind: "listen", reachable: false, secure: true },
    ]);
  });

  it("lists the LAN addresses on 0.0.0.0, not link-local nor IPv6 ones, loopback last", () => {
    expect(pairingAddresses({ ...base, host: "0.0.0.0" })).toEqual([
      { url: "http://192.168.1.23:7317", kind: "lan", reachable: true, secure: false },
      { url: "http://127.0.0.1:7317", kind: "listen", reachable: false, secure: true },
    ]);
    const v6 = pairingAddresses({ ...base, host: "::", tls: true }).map((a) => a.url);
    expect(v6).toEqual(["https://192.168.1.23:7317", "https://[2001:db8::23]:7317", "https://[::1]:7317"]);
  });

  it("puts secure names first: allowedHosts behind a TLS proxy, then Tailscale with what it takes", () => {
    const listed = pairingAddresses({
      ...base,
      host: "0.0.0.0",
      allowedHosts: ["switchboard.example.com", "localhost"],
      tailscaleName: "box.tail1234.ts.net",
    });
    expect(listed.map((a) => [a.url, a.kind, a.reachable, a.secure])).toEqual([
      ["https://switchboard.example.com", "allowed-host", true, true],
      ["https://box.tail1234.ts.net", "tailscale", true, true],
      ["http://192.168.1.23:7317", "lan", true, false],
      ["http://127.0.0.1:7317", "listen", false, true],
    ]);
    expect(listed[1]!.note).toBe(
      "with Tailscale Serve (tailscale serve --bg --https=443 http://127.0.0.1:7317) and box.tail1234.ts.net in allowedHosts",
    );
  });

  it("reads the Tailscale name from `tailscale status --json`, and nothing from anything else", () => {
    expect(dnsNameOf(JSON.stringify({ Self: { DNSName: "Box.tail1234.ts.net." } }))).toBe("box.tail1234.ts.net");
    expect(dnsNameOf("Tailscale is stopped.")).toBeUndefined();
    expect(dnsNameOf(JSON.stringify({ Self: { DNSName: "a b<script>" } }))).toBeUndefined();
    expect(dnsNameOf("null")).toBeUndefined();
  });

  it("knows the machine's own IP literals (the Host check on 0.0.0.0) and no name", () => {
    expect(isOwnAddress("192.168.1.23", INTERFACES)).toBe(true);
    expect(isOwnAddress("[2001:db8::23]", INTERFACES)).toBe(true);
    expect(isOwnAddress("192.168.1.24", INTERFACES)).toBe(false);
    expect(isOwnAddress("evil.example", INTERFACES)).toBe(false);
  });

  it("lets the Host check take the machine's own LAN address on 0.0.0.0 only", () => {
    const lan = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && !i.internal && i.family === "IPv4");
    const guard = (listenHost: string) =>
      new RequestGuard(
        { allowedHosts: new Set(["localhost", "127.0.0.1"]), listenHost } as unknown as GatewayCore,
        ...([] as unknown as [never, never]),
      );
    const check = (listenHost: string, host: string) => () =>
      guard(listenHost).checkHost({ headers: { host } } as IncomingMessage);
    expect(check("0.0.0.0", "203.0.113.77:7317")).toThrow(/not an allowed host/);
    expect(check("0.0.0.0", "rebound.example:7317")).toThrow(/not an allowed host/);
    if (!lan) return; // A machine with loopback only: the listing's own test above covers the rest.
    expect(check("0.0.0.0", `${lan.address}:7317`)).not.toThrow();
    expect(check("127.0.0.1", `${lan.address}:7317`)).toThrow(/not an allowed host/);
  });

  it("GET /v1/devices/addresses lists the listen address for admins only", async () => {
    const gw = await testGateway({
      config: { auth: { tokens: [{ name: "otto", token: "o".repeat(32), role: "operator" }] } },
    });
    const http = api(gw.url);
    const res = await http.get("/v1/devices/addresses");
    expect(res.status).toBe(200);
    expect(res.json.addresses[0]).toEqual({ url: gw.url, kind: "listen", reachable: false, secure: true });
    const otto = await api(gw.url, "o".repeat(32)).get("/v1/devices/addresses");
    expect(otto.status).toBe(403);
  });
});
