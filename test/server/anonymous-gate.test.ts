import { describe, expect, it } from "vitest";
import { addressKey, isLoopback } from "../../src/server/http/anonymous-gate.js";

describe("the addresses anonymous connections are counted under", () => {
  it("counts IPv4 peers by address, IPv4-mapped ones as the IPv4 address", () => {
    expect(addressKey("192.0.2.7")).toBe("192.0.2.7");
    expect(addressKey("::ffff:192.0.2.7")).toBe("192.0.2.7");
    expect(addressKey("::FFFF:192.0.2.7")).toBe("192.0.2.7");
  });

  it("counts IPv6 peers by their /64, however the address is written", () => {
    const key = "2001:db8:0:1::/64";
    expect(addressKey("2001:db8:0:1::1")).toBe(key);
    expect(addressKey("2001:0db8:0000:0001:ffff:ffff:ffff:ffff")).toBe(key);
    expect(addressKey("2001:db8::1:0:0:0:5")).toBe(key);
    expect(addressKey("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
    expect(addressKey("64:ff9b::192.0.2.1")).toBe("64:ff9b:0:0::/64");
    expect(addressKey("2001:db8:0:2::1")).not.toBe(key);
  });

  it("knows loopback in every spelling, and nothing else", () => {
    for (const a of ["127.0.0.1", "127.8.9.10", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"]) {
      expect(isLoopback(a), a).toBe(true);
    }
    for (const a of ["10.0.0.1", "128.0.0.1", "::", "::2", "1::1", "::ffff:10.0.0.1", "2001:db8::1"]) {
      expect(isLoopback(a), a).toBe(false);
    }
  });
});
