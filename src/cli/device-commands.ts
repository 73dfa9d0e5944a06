/** `switchboard pair` and `switchboard devices`: pairing a phone (or any device) by QR code, and the paired list. */
import type { DeviceListing } from "../client/node.js";
import { DEVICE_ROLES, PAIRING_TTL_MAX_MS, PAIRING_TTL_MIN_MS } from "../protocol/index.js";
import { parseDuration } from "../core/units.js";
import type { Command } from "./commands.js";
import { isLocal } from "./commands.js";
import { positional, runCommand, writeJson } from "./context.js";
import type { CliContext } from "./context.js";
import { EXIT, UsageError } from "./exit-codes.js";
import { formatTable } from "./format.js";
import { printable } from "./printable.js";

export const PAIR_USAGE = `Usage: switchboard pair [--role viewer|operator] [--sessions GLOB]... [--name NAME] [--ttl 10m]
                        [--base URL] [--json]

Shows a QR code of a one-time pairing URL (admins only). Opening it on a phone signs that
browser in as the device NAME (default "phone") with the role (default operator) and the
sessions (globs over names, or whole ids; default every one) given here. The code works once,
within --ttl (30s to 1h; default 10m). The URL starts with --base (default the gateway's
--url): give the address the device reaches, e.g. https://box.tailnet.ts.net. A read-only
link to one session: --role viewer --sessions ID. "switchboard devices" lists and revokes.`;

export const DEVICES_USAGE = `Usage: switchboard devices [--json]
       switchboard devices revoke ID

Lists the paired devices (admins only); "revoke" unpairs one: its credential stops working
and its open connections close at once.`;

export const pair: Command = (argv) =>
  runCommand(
    argv,
    {
      usage: PAIR_USAGE,
      options: {
        role: { type: "string" },
        sessions: { type: "string", multiple: true },
        name: { type: "string" },
        ttl: { type: "string" },
        base: { type: "string" },
      },
      positionals: 0,
    },
    async (ctx, parsed) => {
      const { role, sessions, name, ttl } = parsed.values;
      if (role !== undefined && !(DEVICE_ROLES as readonly string[]).includes(role))
        throw new UsageError(`--role is viewer or operator, not ${JSON.stringify(role)}`);
      const ttlMs = ttl === undefined ? undefined : ttlOption(ttl);
      const base = (parsed.values.base ?? ctx.target.url).replace(/\/+$/, "");
      const pairing = await ctx.http.createPairing({
        ...(role !== undefined ? { role: role as (typeof DEVICE_ROLES)[number] } : {}),
        ...(sessions !== undefined ? { sessions } : {}),
        ...(name !== undefined ? { name } : {}),
        ...(ttlMs !== undefined ? { ttlMs } : {}),
      });
      const url = `${base}${pairing.path}`;
      if (ctx.json) {
        writeJson(ctx, { ...pairing, url });
        return EXIT.OK;
      }
      const { default: QRCode } = await import("qrcode");
      const qr = await QRCode.toString(url, { type: "terminal", small: true, errorCorrectionLevel: "M" });
      // The drawing ends in a colour reset without a newline: the URL goes on a line of its own.
      ctx.out.write(`${qr.trimEnd()}\n${url}\n`);
      const minutes = Math.max(1, Math.round((pairing.expiresAt - Date.now()) / 60_000));
      ctx.err.write(
        `pairs ${printable(pairing.name)} as ${pairing.role} of ${printable(pairing.sessions.join(", "))}; works once, for ${minutes} min\n`,
      );
      if (parsed.values.base === undefined && isLocal(base)) await warnLocal(ctx);
      return EXIT.OK;
    },
  );

/**
 * The URL reaches this machine only: says so, with the addresses the gateway lists that a device
 * can reach (`GET /v1/devices/addresses`, as the web UI's "Pair a device" offers them).
 */
async function warnLocal(ctx: CliContext): Promise<void> {
  const reachable = (await ctx.http.pairingAddresses()).filter((a) => a.reachable);
  if (reachable.length === 0) {
    ctx.err.write(
      "this URL reaches this machine only, and so does the gateway: serve with --host 0.0.0.0 (same network), --tls-cert/--tls-key, a TLS proxy or Tailscale Serve, then give --base\n",
    );
    return;
  }
  ctx.err.write("this URL reaches this machine only: give --base with one the device can open:\n");
  for (const a of reachable)
    ctx.err.write(`  ${a.url}${a.secure ? "" : " (http: no notifications)"}${a.note ? ` (${a.note})` : ""}\n`);
}

export const devices: Command = (argv) =>
  runCommand(argv, { usage: DEVICES_USAGE, options: {}, positionals: 2 }, async (ctx, parsed) => {
    const [first] = parsed.positionals;
    if (first === "revoke") {
      const device = await ctx.http.revokeDevice(positional(parsed, 1, "the device id"));
      if (ctx.json) writeJson(ctx, device);
      else ctx.err.write(`unpaired ${printable(device.name)} (${device.id})\n`);
      return EXIT.OK;
    }
    if (first !== undefined) throw new UsageError(`unknown devices command ${JSON.stringify(first)}`);
    const list = await ctx.http.listDevices();
    if (ctx.json) writeJson(ctx, list);
    else if (list.length > 0) ctx.out.write(formatDevices(list));
    else ctx.err.write('no paired devices; "switchboard pair" pairs one\n');
    return EXIT.OK;
  });

function formatDevices(list: readonly DeviceListing[]): string {
  const rows = list.map((d) => [
    d.id,
    printable(d.name),
    d.role,
    printable(d.sessions.join(",")),
    new Date(d.pairedAt).toISOString().slice(0, 16).replace("T", " "),
  ]);
  return formatTable(["ID", "NAME", "ROLE", "SESSIONS", "PAIRED"], rows);
}

function ttlOption(text: string): number {
  const ms = parseDuration(text);
  if (typeof ms !== "number" || ms < PAIRING_TTL_MIN_MS || ms > PAIRING_TTL_MAX_MS)
    throw new UsageError(`--ttl takes a duration from 30s to 1h (e.g. 10m), not ${JSON.stringify(text)}`);
  return ms;
}
