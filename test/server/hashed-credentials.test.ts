import { mkdtempSync, readFileSync, rmSync, writeFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/clock.js";
import { DeviceStore } from "../../src/server/identity/devices.js";
import { sha256 } from "../../src/server/identity/identity.js";
import { ShareStore } from "../../src/server/identity/share-links.js";

/** Paired devices and share links keep their secrets as hashes in one kind of file (hashed-credentials.ts). */
describe("the devices and share links files", () => {
  const dirs: string[] = [];
  const dir = (): string => {
    const made = mkdtempSync(join(tmpdir(), "sb-credentials-"));
    dirs.push(made);
    return made;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("keeps a device's and a link's token hash only, mode 0600, and a new store verifies them", () => {
    const at = dir();
    const clock = new ManualClock();
    const devices = new DeviceStore(join(at, "devices.json"));
    const device = devices.add({ name: "phone", role: "viewer", sessions: ["build*"] }, clock.now());
    const shares = new ShareStore({ file: join(at, "shares.json"), clock });
    const share = shares.add({
      session: "s1",
      name: "mate",
      role: "viewer",
      allowControl: false,
      ttlMs: 60_000,
      createdBy: "admin",
    });
    for (const [file, token] of [
      ["devices.json", device.token],
      ["shares.json", share.token],
    ] as const) {
      const text = readFileSync(join(at, file), "utf8");
      expect(text).not.toContain(token);
      expect(JSON.parse(text)[0].tokenSha256).toBe(sha256(token).toString("hex"));
      expect(statSync(join(at, file)).mode & 0o777).toBe(0o600);
    }
    const devicesAgain = new DeviceStore(join(at, "devices.json"));
    expect(devicesAgain.list()).toEqual(devices.list());
    expect(devicesAgain.credentials()[0]!.hash.equals(sha256(device.token))).toBe(true);
    const sharesAgain = new ShareStore({ file: join(at, "shares.json"), clock });
    expect(sharesAgain.list("s1")).toEqual(shares.list("s1"));
    expect(sharesAgain.credentials()[0]!.hash.equals(sha256(share.token))).toBe(true);
    expect(sharesAgain.list("s1")[0]).not.toHaveProperty("tokenSha256");
    shares.close();
    sharesAgain.close();
  });

  it("refuses a file that is not one, saying how to go on", () => {
    const at = dir();
    writeFileSync(join(at, "devices.json"), '[{"id":"x"}]');
    writeFileSync(join(at, "shares.json"), "not json");
    expect(() => new DeviceStore(join(at, "devices.json"))).toThrow(
      /the devices file .*devices\.json is not valid .*restore it, or remove it to unpair every device/s,
    );
    expect(() => new ShareStore({ file: join(at, "shares.json"), clock: new ManualClock() })).toThrow(
      /the share links file .*shares\.json is not valid .*remove it to revoke every share link/s,
    );
  });
});
