import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Actor } from "../protocol/index.js";
import type { Role, TokenEntry } from "./config.js";

/** Who is calling: resolved once per request or connection from its credentials. */
export interface Identity {
  /** The token's configured name; appears in audit events and logs (the token never does). */
  name: string;
  role: Role;
  /** Glob patterns over session ids and names this identity may access beyond its own sessions. */
  sessions: readonly string[];
}

interface TokenRecord {
  hash: Buffer;
  identity: Identity;
}

/** Name of the cookie the web UI gets in exchange for its token. */
export const SESSION_COOKIE = "sb_session";
/** Lifetime of a browser session cookie. */
export const COOKIE_TTL_MS = 7 * 24 * 60 * 60 * 1000;
/** WebSocket subprotocol prefix carrying a bearer token for clients that cannot set headers. */
export const BEARER_PROTOCOL_PREFIX = "switchboard.bearer.";

export function sha256(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

/** 256 random bits, url-safe: the format of generated tokens. */
export function generateToken(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * The configured tokens. Presented tokens are hashed and compared against every stored hash
 * with `timingSafeEqual`, so neither the comparison nor the lookup depends on how much of a
 * guess was right.
 */
export class TokenRegistry {
  private readonly records: TokenRecord[];
  private readonly cookies = new Map<string, { identity: Identity; expires: number }>();

  constructor(entries: readonly TokenEntry[], adminToken: string | undefined) {
    this.records = entries.map((e) => ({
      hash: e.tokenSha256 ? Buffer.from(e.tokenSha256, "hex") : sha256(e.token!),
      identity: { name: e.name, role: e.role, sessions: e.sessions ?? (e.role === "admin" ? ["*"] : []) },
    }));
    if (adminToken !== undefined) {
      this.records.unshift({ hash: sha256(adminToken), identity: { name: "admin", role: "admin", sessions: ["*"] } });
    }
  }

  verify(token: string): Identity | undefined {
    const presented = sha256(token);
    let found: Identity | undefined;
    for (const record of this.records) {
      // No early exit: every record is compared.
      if (timingSafeEqual(presented, record.hash) && found === undefined) found = record.identity;
    }
    return found;
  }

  /** Exchanges a verified identity for a browser session id (the cookie value). */
  issueCookie(identity: Identity, now: number): string {
    const id = randomBytes(32).toString("base64url");
    this.cookies.set(id, { identity, expires: now + COOKIE_TTL_MS });
    return id;
  }

  verifyCookie(value: string, now: number): Identity | undefined {
    const entry = this.cookies.get(value);
    if (!entry) return undefined;
    if (entry.expires <= now) {
      this.cookies.delete(value);
      return undefined;
    }
    return entry.identity;
  }

  revokeCookie(value: string): void {
    this.cookies.delete(value);
  }
}

/** Credentials found on a request, in order of preference. */
export function credentialsOf(req: IncomingMessage): { token?: string; cookie?: string } {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match) return { token: match[1]! };
    return { token: "" };
  }
  const protocols = req.headers["sec-websocket-protocol"];
  if (typeof protocols === "string") {
    for (const p of protocols.split(",")) {
      const trimmed = p.trim();
      if (trimmed.startsWith(BEARER_PROTOCOL_PREFIX)) return { token: trimmed.slice(BEARER_PROTOCOL_PREFIX.length) };
    }
  }
  const cookie = parseCookies(req.headers.cookie)[SESSION_COOKIE];
  if (cookie !== undefined) return { cookie };
  return {};
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (name && !(name in out)) out[name] = decodeURIComponent(part.slice(eq + 1).trim());
  }
  return out;
}

/** The audit form of an identity. */
export function actorOf(identity: Identity, connId?: string): Actor {
  return connId === undefined ? { name: identity.name, role: identity.role } : { name: identity.name, role: identity.role, connId };
}

/** Minimal glob: `*` any run of characters, `?` one character. */
export function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(
    "^" +
      pattern
        .split("")
        .map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\]/g, "\\$&")))
        .join("") +
      "$",
  );
  return re.test(value);
}

/** What the access rules need to know about a session. */
export interface AccessTarget {
  id: string;
  name: string | null;
  owner: string;
}

/** Admins see everything; others see their own sessions and those matching their globs. */
export function canSee(identity: Identity, session: AccessTarget): boolean {
  if (identity.role === "admin") return true;
  if (session.owner === identity.name) return true;
  return identity.sessions.some((g) => globMatch(g, session.id) || (session.name !== null && globMatch(g, session.name)));
}

/** Viewers never steer; operators steer what they can see; admins steer everything. */
export function canSteer(identity: Identity, session: AccessTarget): boolean {
  if (identity.role === "viewer") return false;
  return canSee(identity, session);
}

export function canCreate(identity: Identity): boolean {
  return identity.role !== "viewer";
}
