import { createHash, randomBytes } from "node:crypto";
import type { Role } from "../config/config.js";
import type { ShareScope } from "../../protocol/index.js";

/*
 * Who calls, as every part of the gateway sees it: an Identity, resolved once per request or
 * connection by auth.ts from tokens, devices.ts from paired devices, or trusted-proxy.ts from a
 * proxy's header; and the digests those stores keep instead of secrets.
 */

/** Who is calling: resolved once per request or connection from its credentials. */
export interface Identity {
  /**
   * Who it is, for good (`token:NAME`, `device:ID`, `proxy:USER`): what owns its sessions, holds
   * its HTTP leases, its push subscriptions and budgets. Never taken from a name.
   */
  principal: string;
  /** What to show: the token's configured name, `device:NAME`, the proxy's user (the token never appears). */
  name: string;
  role: Role;
  /** Glob patterns over session ids and names this identity may access beyond its own sessions. */
  sessions: readonly string[];
  /**
   * The sessions from before principal ids this identity owns: those whose stored owner name is
   * `owner`, created at or after `since` (a device's pairing). See `owns` (auth.ts).
   */
  legacy?: LegacyClaim | undefined;
  /**
   * A share link's caller: it opens this one session and nothing else (see `canSee` in access.ts and
   * `share-access.ts`); its role is `viewer`, and `allowControl` lets it steer while it holds the
   * session's control lease.
   */
  share?: ShareScope | undefined;
}

/** A credential as the token registry compares it: its secret's SHA-256 and who it is. */
export interface TokenCredential {
  hash: Buffer;
  identity: Identity;
}

/** An identity's claim on sessions stored with an owner name only (see `owns`, auth.ts). */
export interface LegacyClaim {
  owner: string;
  since: number;
}

/** Name of the identity behind the gateway's own (generated or `--token`) admin token. */
export const ADMIN_NAME = "admin";

export function sha256(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

/** 256 random bits, url-safe: the format of generated tokens. */
export function generateToken(): string {
  return randomBytes(32).toString("base64url");
}
