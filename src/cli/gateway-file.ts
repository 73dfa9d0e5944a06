/**
 * `DATA_DIR/gateway.json`: where a running `serve` listens, so that client commands find a
 * gateway started with `--port N` (or `--port 0`) without SWITCHBOARD_URL (docs/cli.md, "Finding
 * the gateway"). It holds the URL and the pid, never the token (that stays in DATA_DIR/token, or
 * wherever the gateway was given it). Written whole once the gateway listens, removed on a clean
 * stop; one left by a gateway that died is ignored, its pid being gone
 * (test/cli/gateway-file.test.ts).
 */
import { readFileSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeFileWhole } from "../system/private-file.js";

export const GATEWAY_FILE = "gateway.json";

/** What the file says. */
export interface GatewayRecord {
  url: string;
  pid: number;
}

/** The file's path in `dataDir`. */
export function gatewayFile(dataDir: string): string {
  return join(resolve(dataDir), GATEWAY_FILE);
}

/** Records that this process serves at `url` (readable by all: it holds nothing secret). */
export function writeGatewayFile(dataDir: string, url: string): void {
  const record: GatewayRecord = { url, pid: process.pid };
  writeFileWhole(gatewayFile(dataDir), `${JSON.stringify(record)}\n`, 0o644);
}

/** Removes the file if this process wrote it (a later gateway's record stays). */
export function removeGatewayFile(dataDir: string): void {
  if (readRecord(gatewayFile(dataDir))?.pid === process.pid) rmSync(gatewayFile(dataDir), { force: true });
}

/** The running gateway `dataDir` records, or undefined: no file, an unreadable one, or one whose process is gone. */
export function readGatewayFile(dataDir: string): GatewayRecord | undefined {
  const record = readRecord(gatewayFile(dataDir));
  return record !== undefined && alive(record.pid) ? record : undefined;
}

function readRecord(file: string): GatewayRecord | undefined {
  let parsed: unknown;
  try {
    // The commands send the data dir's token to this URL: a file someone else could have
    // written (writable by group or others, or owned by another user than this one or root)
    // is not taken, as ssh does not take such a config.
    const { mode, uid } = statSync(file);
    const me = process.getuid?.();
    if ((mode & 0o022) !== 0 || (me !== undefined && uid !== me && uid !== 0)) return undefined;
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    // Absent (no gateway ran here, or it stopped cleanly) or not ours to parse: no record.
    if (error instanceof Error) return undefined;
    throw error;
  }
  const { url, pid } = (parsed ?? {}) as Partial<Record<keyof GatewayRecord, unknown>>;
  if (typeof url !== "string" || typeof pid !== "number" || !Number.isSafeInteger(pid) || pid <= 0) return undefined;
  return { url, pid };
}

/** Whether process `pid` exists (signal 0 checks without sending; EPERM: it exists, as another user's). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
