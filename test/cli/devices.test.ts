import QRCode from "qrcode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpClient } from "../../src/client/node.js";
import { EXIT } from "../../src/cli/exit-codes.js";
import { startTestGateway } from "../client/helpers.js";
import type { TestGateway } from "../client/helpers.js";
import { CLI_TIMEOUT_MS, cli } from "./helpers.js";

let gw: TestGateway;
let env: Record<string, string>;

beforeAll(async () => {
  gw = await startTestGateway();
  env = { SWITCHBOARD_URL: gw.url, SWITCHBOARD_TOKEN: gw.token };
});
afterAll(() => gw.close());

/**
 * The modules of a QR code drawn with half blocks (`small: true`: one character is two rows;
 * dark on light, `█` both dark, `▀` the top one, `▄` the bottom one) as rows of 0 and 1.
 */
function modulesOf(drawing: string): string[] {
  const rows: string[] = [];
  // eslint-disable-next-line no-control-regex
  for (const line of drawing.replace(/\x1b\[[0-9;]*m/g, "").split("\n")) {
    if (line === "") continue;
    rows.push([...line].map((c) => (c === "█" || c === "▀" ? "1" : "0")).join(""));
    rows.push([...line].map((c) => (c === "█" || c === "▄" ? "1" : "0")).join(""));
  }
  return rows;
}

/** Whether `matrix` appears in `rows` at some offset (inside the quiet zone). */
function contains(rows: readonly string[], matrix: readonly string[]): boolean {
  for (let top = 0; top + matrix.length <= rows.length; top++) {
    const left = rows[top]!.indexOf(matrix[0]!);
    if (left >= 0 && matrix.every((row, r) => rows[top + r]!.slice(left, left + row.length) === row)) return true;
  }
  return false;
}

describe("switchboard pair and devices", () => {
  it(
    "shows a QR code of a one-time URL that pairs the device named, then lists and revokes it",
    async () => {
      const shown = await cli(
        [
          "pair",
          "--name",
          "my phone",
          "--role",
          "viewer",
          "--sessions",
          "build-*",
          "--ttl",
          "2m",
          "--base",
          "https://box.example:8443",
        ],
        env,
      );
      expect(shown.code, shown.stderr).toBe(EXIT.OK);
      const url = shown.stdout.trimEnd().split("\n").at(-1)!;
      expect(url).toMatch(/^https:\/\/box\.example:8443\/#pair=[A-Za-z0-9_-]{22}$/);
      expect(shown.stderr).toContain("pairs my phone as viewer of build-*; works once, for 2 min");
      // The drawing is the QR code of that URL: its modules, row by row, inside the quiet zone.
      const qr = QRCode.create(url, { errorCorrectionLevel: "M" });
      const size = qr.modules.size;
      const expected = Array.from({ length: size }, (_, r) =>
        Array.from({ length: size }, (_, c) => (qr.modules.get(r, c) ? "1" : "0")).join(""),
      );
      expect(contains(modulesOf(shown.stdout.slice(0, shown.stdout.lastIndexOf(url))), expected)).toBe(true);

      const code = url.slice(url.indexOf("#pair=") + 6);
      const redeemed = await fetch(`${gw.url}/v1/pair`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ code }),
      });
      expect(redeemed.status).toBe(200);
      const { token } = (await redeemed.json()) as { token: string };
      expect(await new HttpClient({ url: gw.url, token }).whoami()).toEqual({
        name: "device:my phone",
        role: "viewer",
        id: expect.stringMatching(/^device:[A-Za-z0-9_-]{12}$/),
      });

      const table = await cli(["devices"], env);
      expect(table.code).toBe(EXIT.OK);
      const [header, row] = table.stdout.trimEnd().split("\n");
      expect(header).toMatch(/^ID\s+NAME\s+ROLE\s+SESSIONS\s+PAIRED$/);
      expect(row).toMatch(/^(\S+)\s+my phone\s+viewer\s+build-\*\s+\d{4}-\d\d-\d\d \d\d:\d\d$/);
      const id = row!.split(/\s+/)[0]!;
      const revoked = await cli(["devices", "revoke", id], env);
      expect(revoked).toMatchObject({ code: EXIT.OK, stderr: `unpaired my phone (${id})\n` });
      await expect(new HttpClient({ url: gw.url, token }).whoami()).rejects.toMatchObject({ code: "UNAUTHORIZED" });
      const empty = await cli(["devices", "--json"], env);
      expect(JSON.parse(empty.stdout)).toEqual([]);
    },
    CLI_TIMEOUT_MS * 2,
  );

  it(
    "warns that a loopback-only gateway reaches no phone, and says how to make it reachable",
    async () => {
      const shown = await cli(["pair", "--name", "loopback phone"], env);
      expect(shown.code).toBe(EXIT.OK);
      expect(shown.stderr).toContain(
        "this URL reaches this machine only, and so does the gateway: serve with --host 0.0.0.0 (same network), --tls-cert/--tls-key, a TLS proxy or Tailscale Serve, then give --base",
      );
    },
    CLI_TIMEOUT_MS,
  );

  it(
    "refuses a role and a TTL it cannot give, as command-line mistakes",
    async () => {
      const [role, ttl] = await Promise.all([cli(["pair", "--role", "admin"], env), cli(["pair", "--ttl", "2h"], env)]);
      expect(role).toMatchObject({ code: EXIT.USAGE, stderr: expect.stringContaining("--role is viewer or operator") });
      expect(ttl).toMatchObject({
        code: EXIT.USAGE,
        stderr: expect.stringContaining("--ttl takes a duration from 30s to 1h"),
      });
    },
    CLI_TIMEOUT_MS,
  );

  it(
    "takes a device or share id that starts with a dash as the id, not as an option",
    async () => {
      const session = await new HttpClient({ url: gw.url, token: gw.token }).createSession({ command: ["cat"] });
      const [device, share] = await Promise.all([
        cli(["devices", "revoke", "-bcdefghijkl"], env),
        cli(["share", "revoke", session.id, "-bcdefghijkl"], env),
      ]);
      // The gateway looked the id up: a usage error would mean it read as an option.
      expect(device.stderr).toBe("switchboard: no paired device -bcdefghijkl (DEVICE_NOT_FOUND)\n");
      expect(share.code, share.stderr).not.toBe(EXIT.USAGE);
      expect(share.stderr).toContain("-bcdefghijkl");
    },
    CLI_TIMEOUT_MS,
  );

  it(
    "share prints a link to one session, lists it and revokes it",
    async () => {
      const session = await new HttpClient({ url: gw.url, token: gw.token }).createSession({
        command: ["cat"],
        pty: true,
        name: "shared-build",
      });
      const made = await cli(
        ["share", "shared-build", "--name", "alex", "--ttl", "2h", "--base", "https://box:8443"],
        env,
      );
      expect(made.code, made.stderr).toBe(EXIT.OK);
      const url = made.stdout.trim();
      expect(url).toMatch(/^https:\/\/box:8443\/#token=[A-Za-z0-9_-]{43}$/);
      expect(made.stderr).toContain(`opens session ${session.id} as share:alex, read-only, until`);
      const token = url.slice(url.indexOf("#token=") + 7);
      expect(await new HttpClient({ url: gw.url, token }).whoami()).toMatchObject({
        name: "share:alex",
        share: { session: session.id, allowControl: false },
      });
      const table = await cli(["share", "ls", "shared-build"], env);
      const [header, row] = table.stdout.trimEnd().split("\n");
      expect(header).toMatch(/^ID\s+NAME\s+RIGHTS\s+MADE\s+EXPIRES$/);
      expect(row).toMatch(/^\S+\s+alex\s+read-only\s/);
      const id = row!.split(/\s+/)[0]!;
      const revoked = await cli(["share", "revoke", "shared-build", id], env);
      expect(revoked).toMatchObject({ code: EXIT.OK, stderr: `revoked share:alex (${id})\n` });
      await expect(new HttpClient({ url: gw.url, token }).whoami()).rejects.toMatchObject({ code: "UNAUTHORIZED" });
      const ttl = await cli(["share", "shared-build", "--ttl", "8d"], env);
      expect(ttl).toMatchObject({
        code: EXIT.USAGE,
        stderr: expect.stringContaining("--ttl takes a duration from 1m to 7d"),
      });
    },
    CLI_TIMEOUT_MS * 2,
  );
});
