import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { SwitchboardError, principalId } from "../../protocol/index.js";
import type { Actor } from "../../protocol/index.js";
import { writePrivateFile } from "../../system/private-file.js";
import type { SessionOwner } from "../../sessions/session.js";
import type { TokenEntry, TrustedProxyConfig } from "../config/config.js";
import type { DeviceStore } from "./devices.js";
import { ADMIN_NAME, generateToken, sha256 } from "./identity.js";
import type { Identity, TokenCredential as TokenRecord } from "./identity.js";
import type { ShareStore } from "./share-links.js";
import { TrustedProxy } from "./trusted-proxy.js";
import { InternalError } from "../../protocol/errors.js";

/** Name of the cookie the web UI gets in exchange for its token. */
export const SESSION_COOKIE = "sb_session";
/**
 * The other half of a browser sign-in: the page keeps it in its origin's storage and sends it as
 * this header, the WebSocket subprotocol `switchboard.cookie-key.<key>`, or (SSE only,
 * `EVENT_SOURCE_PATH`) the `cookieKey` query parameter. Cookies go to every port of a host,
 * storage stays with the origin: another server on the host gets the cookie, which alone signs
 * nobody in (docs/security.md "Browser sign-in: the cookie and its key").
 */
export const COOKIE_KEY_HEADER = "x-switchboard-cookie-key";
export const COOKIE_KEY_PROTOCOL_PREFIX = "switchboard.cookie-key.";
export const COOKIE_KEY_QUERY = "cookieKey";
/** The one route whose `cookieKey` query parameter counts: `GET /v1/sessions/:id/stream` (routes/stream.ts). */
const EVENT_SOURCE_PATH = /^\/v1\/sessions\/[^/?]+\/stream$/;
/** Lifetime of a browser session cookie. */
export const COOKIE_TTL_MS = 7 * 24 * 60 * 60 * 1000;
/** WebSocket subprotocol prefix carrying a bearer token for clients that cannot set headers. */
export const BEARER_PROTOCOL_PREFIX = "switchboard.bearer.";
/** The subprotocol the server selects when a client offers it (never a bearer one). */
export const SWITCHBOARD_PROTOCOL = "switchboard.v1";

/**
 * ws's `handleProtocols`: picks `switchboard.v1` when offered, and never a bearer protocol,
 * which would echo the token in the 101 response. A client that offers only a bearer
 * protocol gets no subprotocol selected (and most clients then fail: offer `switchboard.v1`).
 */
export function selectProtocol(protocols: Set<string>): string | false {
  return protocols.has(SWITCHBOARD_PROTOCOL) ? SWITCHBOARD_PROTOCOL : false;
}
/**
 * Most live browser sessions (cookies) kept at once. Every successful login adds one, so without
 * a bound a token holder could grow the gateway's memory by logging in in a loop; past it the
 * oldest cookie is dropped (its browser logs in again).
 */
export const MAX_COOKIES = 10_000;
/**
 * Most live browser sessions of one identity (token). Past it that identity's own oldest is
 * dropped, so logging in in a loop ends only the caller's sign-ins, never another's: with
 * {@link MAX_COOKIES} alone, a viewer logging in 10,000 times signed every other browser out.
 */
export const MAX_COOKIES_PER_IDENTITY = 100;
/** How a configured token's principal id starts (`token:NAME`). */
export const TOKEN_PRINCIPAL_PREFIX = principalId("token", "");
/** How a plugin's principal id and owner name start (`plugin:ID`). */
export const PLUGIN_OWNER_PREFIX = principalId("plugin", "");
/** A browser session: which token it was issued for (its hash), its key's hash and until when. */
interface CookieEntry {
  token: Buffer;
  key: Buffer;
  expires: number;
}

/** What `POST /v1/login` hands a browser: the cookie's value, and the key that must come with it. */
export interface BrowserSignIn {
  cookie: string;
  key: string;
}

/**
 * The configured tokens. A presented token is hashed and compared with every stored hash by
 * `timingSafeEqual`, so no timing depends on how much of a guess was right. Browser sign-ins are
 * kept by cookie hash with the hashes of their key and token (in `cookieFile` too, across
 * restarts; it holds no secret a browser could present); a cookie counts only with its key and
 * while its token is configured. docs/security.md "Browser sign-in: the cookie and its key".
 */
export class TokenRegistry {
  private readonly records: TokenRecord[];
  private readonly cookies = new Map<string, CookieEntry>();
  private readonly cookieFile: string | undefined;
  private readonly devices: DeviceStore | undefined;
  private readonly shares: ShareStore | undefined;
  private readonly proxy: TrustedProxy | undefined;

  /**
   * Throws CONFIG_INVALID when two entries carry the same token (which identity a request
   * gets would depend on config order) or when a configured entry takes the admin token's name
   * without being an admin (it would be the admin's principal). The config keeps names unique:
   * a token's principal is `token:NAME`.
   */
  constructor(
    entries: readonly TokenEntry[],
    adminToken: string | undefined,
    cookieFile?: string,
    /** The registry this one replaces (a reload): see {@link has}. */
    previous?: TokenRegistry,
    more: {
      /** The paired devices: their tokens count as the configured ones do, for as long as they are paired. */
      devices?: DeviceStore | undefined;
      /** The live share links: their secrets count as tokens of one session each, until they expire or are revoked. */
      shares?: ShareStore | undefined;
      /** `auth.trustedProxy`: its users are identities too (see {@link proxied}). */
      trustedProxy?: TrustedProxyConfig | undefined;
    } = {},
  ) {
    this.cookieFile = cookieFile;
    this.devices = more.devices;
    this.shares = more.shares;
    this.records = entries.map((e) => {
      const record = {
        hash: e.tokenSha256 ? Buffer.from(e.tokenSha256, "hex") : sha256(e.token!),
        identity: tokenIdentity(e),
      };
      return previous?.carried(record) ?? record;
    });
    if (adminToken !== undefined) {
      const posing = entries.find((e) => e.name === ADMIN_NAME && e.role !== "admin");
      if (posing) {
        throw new SwitchboardError(
          "CONFIG_INVALID",
          `auth.tokens: the name ${ADMIN_NAME} is reserved for the gateway's admin token; give the ${posing.role} token another name`,
        );
      }
      const admin = { hash: sha256(adminToken), identity: tokenIdentity({ name: ADMIN_NAME, role: "admin" }) };
      this.records.unshift(previous?.carried(admin) ?? admin);
    }
    for (let i = 0; i < this.records.length; i++) {
      for (let j = i + 1; j < this.records.length; j++) {
        if (!this.records[i]!.hash.equals(this.records[j]!.hash)) continue;
        if (i === 0 && adminToken !== undefined) {
          const other = this.records[j]!.identity;
          // The admin of auth.tokens given again as the gateway's own token (a shell that exports
          // SWITCHBOARD_TOKEN for the CLI starts serve too): one identity, not two.
          if (other.name === ADMIN_NAME && other.role === "admin" && other.sessions.includes("*")) {
            this.records.splice(j--, 1);
            continue;
          }
          throw new SwitchboardError(
            "CONFIG_INVALID",
            `the gateway's admin token (--token, SWITCHBOARD_TOKEN or the data directory's token file) is also the token of ${other.name} in auth.tokens; give ${other.name} another token, or start the gateway with another admin token`,
          );
        }
        throw new SwitchboardError(
          "CONFIG_INVALID",
          `auth.tokens: ${this.records[i]!.identity.name} and ${this.records[j]!.identity.name} use the same token; give each identity its own`,
        );
      }
    }
    const proxy = more.trustedProxy;
    // The same setting keeps the same users' identities, so a reload does not end their
    // connections; set once the tokens are known good, as the previous registry's proxy is reused.
    const tokenNames = [...entries.map((e) => e.name), ...(adminToken !== undefined ? [ADMIN_NAME] : [])];
    this.proxy =
      proxy === undefined
        ? undefined
        : previous?.proxy && JSON.stringify(previous.proxy.config) === JSON.stringify(proxy)
          ? previous.proxy.retarget(tokenNames)
          : new TrustedProxy(proxy, tokenNames);
    this.loadCookies();
  }

  /**
   * Whether `identity` is one of this registry's. Identities are resolved once per connection, so
   * a reload closes the connections whose identity the new registry no longer has: their token
   * was removed, or its role or globs changed. An identity whose token and rights stayed the same
   * is carried over from the previous registry as the same object, and its connections go on.
   */
  has(identity: Identity): boolean {
    return this.all().some((r) => r.identity === identity) || this.proxy?.has(identity) === true;
  }

  /**
   * The user a trusted proxy names on this request (`auth.trustedProxy`), or undefined when it
   * is not from the proxy or names nobody. Throws UNAUTHORIZED for a user without a role.
   */
  proxied(req: IncomingMessage): Identity | undefined {
    return this.proxy?.identityOf(req);
  }

  /** The identity whose principal is `principal`, if this registry has it now (a token, a device, a proxy user kept). */
  byPrincipal(principal: string): Identity | undefined {
    return this.all().find((r) => r.identity.principal === principal)?.identity ?? this.proxy?.byPrincipal(principal);
  }

  /** Whether the browser sign-in `signIn` (see {@link signInOf}) is live: a cookie of it neither revoked nor expired, of a credential still here. */
  signedIn(signIn: string, now: number): boolean {
    return this.liveSignIns(now).has(signIn);
  }

  /** Every live browser sign-in (see {@link signedIn}): one pass over the cookies, for a notification to many browsers. */
  liveSignIns(now: number): Set<string> {
    const credentials = this.all();
    const live = new Set<string>();
    for (const entry of this.cookies.values()) {
      const key = entry.key.toString("hex");
      if (entry.expires <= now || live.has(key)) continue;
      if (credentials.some((r) => r.hash.equals(entry.token))) live.add(key);
    }
    return live;
  }

  /** The configured tokens, then the paired devices', then the live share links'. */
  private all(): readonly TokenRecord[] {
    if (!this.devices && !this.shares) return this.records;
    return [...this.records, ...(this.devices?.credentials() ?? []), ...(this.shares?.credentials() ?? [])];
  }

  /** `record` with this registry's identity object, when this registry has the same token with the same rights. */
  private carried(record: TokenRecord): TokenRecord | undefined {
    const same = this.records.find((r) => r.hash.equals(record.hash) && sameRights(r.identity, record.identity));
    return same && { hash: record.hash, identity: same.identity };
  }

  verify(token: string): Identity | undefined {
    const presented = sha256(token);
    let found: Identity | undefined;
    for (const record of this.all()) {
      // No early exit: every record is compared.
      if (timingSafeEqual(presented, record.hash) && found === undefined) found = record.identity;
    }
    return found;
  }

  /**
   * Exchanges an identity `verify` returned for a browser session: a new cookie value, with `key`
   * when the browser brings the one it keeps (its other tabs hold it too), else a new key.
   */
  issueCookie(identity: Identity, now: number, key: string = generateToken()): BrowserSignIn {
    const record = this.all().find((r) => r.identity === identity);
    if (!record) throw new InternalError(`no token for ${identity.name}: pass an identity verify() returned`);
    const own: string[] = [];
    for (const [key, entry] of this.cookies) {
      if (entry.expires <= now) this.cookies.delete(key);
      else if (entry.token.equals(record.hash)) own.push(key);
    }
    // This identity's oldest first (Map keeps insertion order), down to one below its maximum.
    for (let i = 0; i <= own.length - MAX_COOKIES_PER_IDENTITY; i++) this.cookies.delete(own[i]!);
    // Still full (many identities with many sign-ins each): drop the oldest of all.
    const oldest = this.cookies.size >= MAX_COOKIES ? this.cookies.keys().next().value : undefined;
    if (oldest !== undefined) this.cookies.delete(oldest);
    const cookie = generateToken();
    this.cookies.set(cookieKey(cookie), { token: record.hash, key: sha256(key), expires: now + COOKIE_TTL_MS });
    this.saveCookies();
    return { cookie, key };
  }

  /** The identity of a browser session, when `key` is the one issued with the cookie `value`. */
  verifyCookie(value: string, key: string, now: number): Identity | undefined {
    const entry = this.cookieEntry(value, key);
    if (!entry) return undefined;
    if (entry.expires <= now) {
      this.cookies.delete(cookieKey(value));
      return undefined;
    }
    return this.all().find((r) => r.hash.equals(entry.token))?.identity;
  }

  /**
   * Whether a cookie that no longer verifies is of a live sign-in whose credential was removed
   * (a device unpaired, a token taken out of the config), rather than unknown or expired: its
   * browser is told so (CREDENTIAL_REMOVED_MESSAGE). Only with the key, as every cookie check.
   */
  cookieOrphaned(value: string, key: string, now: number): boolean {
    const entry = this.cookieEntry(value, key);
    return entry !== undefined && entry.expires > now && !this.all().some((r) => r.hash.equals(entry.token));
  }

  /**
   * Ends a browser's sign-in: the cookie, and the earlier cookies that took the same key (signed
   * in again, that browser kept it). Only with the key, so that holding a cookie alone cannot
   * sign anybody out. True when it was a live sign-in.
   */
  revokeCookie(value: string, key: string): boolean {
    const entry = this.cookieEntry(value, key);
    if (!entry) return false;
    for (const [k, e] of this.cookies) if (e.key.equals(entry.key)) this.cookies.delete(k);
    this.saveCookies();
    return true;
  }

  private cookieEntry(value: string, key: string): CookieEntry | undefined {
    const entry = this.cookies.get(cookieKey(value));
    return entry && timingSafeEqual(sha256(key), entry.key) ? entry : undefined;
  }

  /** Reads the sessions a previous run kept. A missing or unreadable file is no sessions (users sign in again). */
  private loadCookies(): void {
    if (this.cookieFile === undefined) return;
    let saved: unknown;
    try {
      saved = JSON.parse(readFileSync(this.cookieFile, "utf8"));
    } catch {
      return;
    }
    if (!Array.isArray(saved)) return;
    type Saved = { cookie?: unknown; token?: unknown; key?: unknown; expires?: unknown };
    for (const e of saved.slice(-MAX_COOKIES) as Saved[]) {
      // Entries without a key were written before cookies had one: their browsers sign in again.
      if (typeof e.cookie !== "string" || typeof e.token !== "string" || typeof e.key !== "string") continue;
      if (typeof e.expires !== "number") continue;
      const token = Buffer.from(e.token, "hex");
      const key = Buffer.from(e.key, "hex");
      if (key.length !== 32) continue;
      // Sessions of tokens no longer configured are dropped here, and so from the file at the next save.
      if (this.all().some((r) => r.hash.equals(token))) this.cookies.set(e.cookie, { token, key, expires: e.expires });
    }
  }

  /** Writes the sessions (hashes only) to `cookieFile`: a new file, mode 0600, renamed over the old one. */
  private saveCookies(): void {
    if (this.cookieFile === undefined) return;
    const saved = [...this.cookies].map(([cookie, e]) => ({
      cookie,
      token: e.token.toString("hex"),
      key: e.key.toString("hex"),
      expires: e.expires,
    }));
    writePrivateFile(this.cookieFile, JSON.stringify(saved));
  }
}

/** A configured token's identity: its principal is its config name's, which config keeps unique. */
function tokenIdentity(e: Pick<TokenEntry, "name" | "role" | "sessions">): Identity {
  return {
    principal: principalId("token", e.name),
    name: e.name,
    role: e.role,
    sessions: e.sessions ?? (e.role === "admin" ? ["*"] : []),
    // A plugin's sessions were stored as `plugin:ID`, which a token could be named (plugin-wiring.ts).
    legacy: e.name.startsWith(PLUGIN_OWNER_PREFIX) ? undefined : { owner: e.name, since: 0 },
  };
}

function sameRights(a: Identity, b: Identity): boolean {
  return (
    a.principal === b.principal &&
    a.name === b.name &&
    a.role === b.role &&
    a.sessions.length === b.sessions.length &&
    a.sessions.every((glob, i) => glob === b.sessions[i])
  );
}

/** How a cookie is kept: its SHA-256, so the store (and its file) cannot be replayed as cookies. */
function cookieKey(value: string): string {
  return sha256(value).toString("hex");
}

/** Credentials found on a request: a token, or a browser session's cookie with its key. */
export interface Credentials {
  token?: string;
  cookie?: string;
  /** Found only beside a cookie: it is no credential alone. */
  cookieKey?: string;
}

/** Credentials found on a request, in order of preference. */
export function credentialsOf(req: IncomingMessage): Credentials {
  const header = req.headers.authorization;
  // Only the Bearer scheme is ours. Another (Basic, Digest) belongs to a proxy in front, which
  // passes it on (nginx's auth_basic does): it must not hide the UI's cookie, or every request
  // would be refused as a bad token and the address soon rate-limited.
  if (header !== undefined && /^Bearer(?:\s|$)/i.test(header)) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return { token: match ? match[1]! : "" };
  }
  const protocols = req.headers["sec-websocket-protocol"];
  let protocolKey: string | undefined;
  if (typeof protocols === "string") {
    for (const p of protocols.split(",")) {
      const trimmed = p.trim();
      if (trimmed.startsWith(BEARER_PROTOCOL_PREFIX)) return { token: trimmed.slice(BEARER_PROTOCOL_PREFIX.length) };
      if (trimmed.startsWith(COOKIE_KEY_PROTOCOL_PREFIX))
        protocolKey ??= trimmed.slice(COOKIE_KEY_PROTOCOL_PREFIX.length);
    }
  }
  const cookie = parseCookies(req.headers.cookie)[SESSION_COOKIE];
  if (cookie === undefined) return {};
  const cookieKey = cookieKeyOf(req) || protocolKey;
  // An empty key is none: a cookie alone, not a wrong guess.
  return cookieKey ? { cookie, cookieKey } : { cookie };
}

/**
 * Which browser sign-in a request came with, when it authenticates with a cookie and its key:
 * the key's SHA-256 (hex), which every cookie of that sign-in shares (`revokeCookie` ends them
 * together). Its connections are ended with it on logout. Undefined for a bearer token.
 */
export function signInOf(req: IncomingMessage): string | undefined {
  const creds = credentialsOf(req);
  return creds.cookie !== undefined && creds.cookieKey !== undefined ? signInKey(creds.cookieKey) : undefined;
}

/** The sign-in a cookie key names (see {@link signInOf}). */
export function signInKey(cookieKey: string): string {
  return sha256(cookieKey).toString("hex");
}

/** The key sent beside a cookie as the header, else (on the SSE stream only) as the query parameter. */
function cookieKeyOf(req: IncomingMessage): string | undefined {
  const header = req.headers[COOKIE_KEY_HEADER];
  if (typeof header === "string") return header.trim();
  const url = req.url ?? "";
  const query = url.indexOf("?");
  if (query < 0 || req.method !== "GET" || !EVENT_SOURCE_PATH.test(url.slice(0, query))) return undefined;
  return new URLSearchParams(url.slice(query + 1)).get(COOKIE_KEY_QUERY) ?? undefined;
}

/**
 * The cookies of a `Cookie` header. Cookies for `localhost` reach every local port, so the
 * header also carries other apps' cookies: a value that is not valid percent-encoding is kept
 * as it is rather than failing the request (decodeURIComponent would throw a URIError).
 */
export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (!header) return out;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (!name || Object.hasOwn(out, name)) continue;
    const raw = part.slice(eq + 1).trim();
    out[name] = decodeCookieValue(raw);
  }
  return out;
}

function decodeCookieValue(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch (error) {
    // Only a malformed escape is tolerated; it cannot match a cookie we issued (base64url).
    if (error instanceof URIError) return raw;
    throw error;
  }
}

/**
 * The key a control lease is taken back with after its holder's connection closed
 * (ControlLease.reclaimKey): the caller's principal and sign-in with its client's `clientKey`,
 * so a key copied into another sign-in, or used by another principal of the same name, takes
 * nothing back.
 */
export function reclaimKeyOf(identity: Identity, signIn: string | undefined, clientKey: string): string {
  return sha256(`${identity.principal}\0${signIn ?? ""}\0${clientKey}`).toString("hex");
}

/** Whom the sessions `identity` creates are for: its principal, and its name to show. */
export function ownerFor(identity: Identity): SessionOwner {
  return { id: identity.principal, name: identity.name };
}

/** Whom a session created on behalf of `actor` (a message's sender) is for. */
export function ownerOfActor(actor: Actor): SessionOwner {
  return { id: actor.id, name: actor.name };
}

/** The audit form of an identity: its name to show and its principal id. */
export function actorOf(identity: Identity, connId?: string): Actor {
  const actor: Actor = { name: identity.name, role: identity.role, id: identity.principal };
  if (connId !== undefined) actor.connId = connId;
  return actor;
}

/**
 * Minimal glob: `*` any run of characters, `?` one character, everything else literal.
 * Iterative with one backtrack point, so it runs in O(pattern × value) whatever the input;
 * a regex built from the pattern backtracks exponentially on `*a*a*a…b` against `aaaa…`.
 */
export function globMatch(pattern: string, value: string): boolean {
  let p = 0;
  let v = 0;
  let star = -1;
  let resume = 0;
  while (v < value.length) {
    const c = pattern[p];
    if (c === "*") {
      star = p++;
      resume = v;
    } else if (c !== undefined && (c === "?" || c === value[v])) {
      p++;
      v++;
    } else if (star >= 0) {
      // Let the last `*` swallow one more character and retry from there.
      p = star + 1;
      v = ++resume;
    } else {
      return false;
    }
  }
  while (pattern[p] === "*") p++;
  return p === pattern.length;
}

/** What the access rules need to know about a session. */
export interface AccessTarget {
  id: string;
  name: string | null;
  /** The owner's name, as shown; what a session from before principal ids is owned by. */
  owner: string;
  /** The owner's principal id; absent on a session created before principal ids. */
  ownerId?: string | undefined;
  createdAt: number;
}

/**
 * Whether `identity` owns `session`: its principal is the owner's. A session stored before
 * principal ids has an owner name only: it is the identity's whose `LegacyClaim` (identity.ts) names it —
 * the configured token of that name, else the proxy user of that name, or the device of that name
 * paired before the session was made (docs/security.md, "Sessions from before principal ids";
 * test/security/principal-identity.test.ts).
 */
export function owns(identity: Identity, session: AccessTarget): boolean {
  if (session.ownerId !== undefined) return session.ownerId === identity.principal;
  const claim = identity.legacy;
  return claim !== undefined && claim.owner === session.owner && session.createdAt >= claim.since;
}

/**
 * Admins see everything; others see their own sessions and those matching their globs: a glob
 * with a wildcard matches names (`*` alone: every session), one without matches an id or a name.
 * Ids are random, so a wildcard over them granted sessions by chance — `A*` one in 64 (security
 * audit); an id is granted by writing it whole.
 */
export function canSee(identity: Identity, session: AccessTarget): boolean {
  // A share link sees its one session, whatever its globs say.
  if (identity.share !== undefined) return session.id === identity.share.session;
  if (identity.role === "admin") return true;
  if (owns(identity, session)) return true;
  return identity.sessions.some((g) => {
    if (g === "*") return true;
    if (!/[*?]/.test(g) && g === session.id) return true;
    return session.name !== null && globMatch(g, session.name);
  });
}

/**
 * Viewers never steer; operators steer what they can see; admins steer everything. A share link
 * that allows control may ask to steer its session: `sessionFor` then requires it to hold the lease.
 */
export function canSteer(identity: Identity, session: AccessTarget): boolean {
  if (identity.share !== undefined) return identity.share.allowControl && canSee(identity, session);
  if (identity.role === "viewer") return false;
  return canSee(identity, session);
}

export function canCreate(identity: Identity): boolean {
  return identity.role !== "viewer";
}
