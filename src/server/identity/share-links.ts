import { z } from "zod";
import type { Clock, Timer } from "../../core/clock.js";
import {
  MAX_SHARES_PER_SESSION,
  SHARE_IDENTITY_PREFIX,
  SHARE_ROLES,
  SwitchboardError,
  principalId,
} from "../../protocol/index.js";
import type { ShareListing } from "../../protocol/index.js";
import type { Identity, TokenCredential } from "./identity.js";
import {
  HASHED_RECORD_FIELDS,
  hashOf,
  newCredential,
  readCredentialFile,
  withoutHash,
  writeCredentialFile,
} from "./hashed-credentials.js";

/** The share links' file in the data directory: names, scopes and secret hashes, never a secret. */
export const SHARES_FILE = "shares.json";
/**
 * Most live share links across the gateway: with {@link MAX_SHARES_PER_SESSION} per session, it
 * bounds the file and the constant-time comparison every bearer token goes through.
 */
export const MAX_SHARES = 1024;

/** Why a share link's connections end: its owner revoked it, or its time ran out. */
export type ShareEnd = "revoked" | "expired";

const SavedShare = z.strictObject({
  ...HASHED_RECORD_FIELDS,
  session: z.string().min(1).max(200),
  name: z.string().min(1).max(64),
  role: z.enum(SHARE_ROLES),
  allowControl: z.boolean(),
  createdAt: z.number(),
  expiresAt: z.number(),
  createdBy: z.string().max(300),
});
/** A link as it is kept (in the file, or in Redis in cluster mode): its secret's hash, never the secret. */
export type SavedShare = z.infer<typeof SavedShare>;

/** What changed, for a cluster's other nodes (see `cluster/share-sync.ts`). */
export type ShareChange = { op: "add"; share: SavedShare } | { op: "remove"; id: string };

interface Share {
  saved: SavedShare;
  credential: TokenCredential;
}

/** What a new link is: which session, shown as what, for how long, and whether it may ask for control. */
export interface ShareGrant {
  session: string;
  name: string;
  role: (typeof SHARE_ROLES)[number];
  allowControl: boolean;
  ttlMs: number;
  createdBy: string;
}

export interface ShareStoreOptions {
  /** DATA_DIR/shares.json; none keeps links in memory only. */
  file: string | undefined;
  clock: Clock;
  /** Called once per link that ends (revoked or expired), with the identity whose connections must close. */
  onEnded?: ((identity: Identity, why: ShareEnd) => void) | undefined;
}

/** Parses a link another node kept: throws on anything that is not one. */
export function parseSavedShare(value: unknown): SavedShare {
  return SavedShare.parse(value);
}

/**
 * The live share links, kept in DATA_DIR/shares.json (mode 0600) by secret hash, like paired
 * devices. Each link is the principal `share:ID` with the role `viewer` and a scope of one session
 * ({@link Identity.share}); its identity is one object for its whole life, so that revoking it ends
 * exactly the connections opened with it. A link past its `expiresAt` no longer verifies, and the
 * store ends it (and its connections) at that time. docs/security.md, "Share links".
 */
export class ShareStore {
  private readonly shares = new Map<string, Share>();
  private readonly file: string | undefined;
  private readonly clock: Clock;
  private onEnded: ((identity: Identity, why: ShareEnd) => void) | undefined;
  private timer: Timer | undefined;
  private closed = false;
  /** Cluster mode: tells the other nodes what this one changed; the change is theirs once it resolves. */
  changed: ((change: ShareChange) => Promise<void>) | undefined;
  /** What ends with the store (cluster mode: its Redis subscription). */
  private readonly disposers: Array<() => void> = [];

  /** Throws when the file exists but is not a shares file: links must not vanish, nor come back, silently. */
  constructor(options: ShareStoreOptions) {
    this.file = options.file;
    this.clock = options.clock;
    this.onEnded = options.onEnded;
    const saved = readCredentialFile(this.file, SavedShare, {
      what: "share links",
      remedy: "revoke every share link",
    });
    const now = this.clock.now();
    for (const share of saved)
      if (share.expiresAt > now) this.shares.set(share.id, { saved: share, credential: credentialOf(share) });
    this.arm();
  }

  /** Who is told when a link ends (the gateway wires it once its connections exist). */
  set ended(callback: (identity: Identity, why: ShareEnd) => void) {
    this.onEnded = callback;
  }

  /** Every live link's credential, for the token registry's constant-time comparison. */
  credentials(): TokenCredential[] {
    const now = this.clock.now();
    const live: TokenCredential[] = [];
    for (const s of this.shares.values()) if (s.saved.expiresAt > now) live.push(s.credential);
    return live;
  }

  /** The live links of `session`, oldest first. */
  list(session: string): ShareListing[] {
    const now = this.clock.now();
    return [...this.shares.values()]
      .filter((s) => s.saved.session === session && s.saved.expiresAt > now)
      .map((s) => listingOf(s.saved));
  }

  /**
   * Makes a link: its listing, its secret (shown once; only its hash is kept) and `synced`, which
   * resolves once every node of a cluster can verify it (at once on a single node).
   */
  add(grant: ShareGrant): { share: ShareListing; token: string; identity: Identity; synced: Promise<void> } {
    const now = this.clock.now();
    const live = this.list(grant.session).length;
    if (live >= MAX_SHARES_PER_SESSION)
      throw new SwitchboardError(
        "LIMIT_EXCEEDED",
        `session ${grant.session} has ${live} live share links (MAX_SHARES_PER_SESSION): revoke one before making another`,
      );
    if (this.shares.size >= MAX_SHARES)
      throw new SwitchboardError(
        "LIMIT_EXCEEDED",
        `${MAX_SHARES} share links are live (MAX_SHARES): revoke some before making another`,
      );
    const { token, ...hashed } = newCredential();
    const saved: SavedShare = {
      ...hashed,
      session: grant.session,
      name: grant.name,
      role: grant.role,
      allowControl: grant.allowControl,
      createdAt: now,
      expiresAt: now + grant.ttlMs,
      createdBy: grant.createdBy,
    };
    const share = { saved, credential: credentialOf(saved) };
    this.shares.set(saved.id, share);
    this.save();
    this.arm();
    const synced = this.changed?.({ op: "add", share: saved }) ?? Promise.resolve();
    return { share: listingOf(saved), token, identity: share.credential.identity, synced };
  }

  /** Revokes link `id` of `session`: its listing, once its connections were told; SHARE_NOT_FOUND otherwise. */
  remove(session: string, id: string): ShareListing {
    const share = this.shares.get(id);
    if (!share || share.saved.session !== session || share.saved.expiresAt <= this.clock.now())
      throw new SwitchboardError("SHARE_NOT_FOUND", `no live share link ${id.slice(0, 64)} on this session`);
    this.shares.delete(id);
    this.save();
    this.arm();
    this.onEnded?.(share.credential.identity, "revoked");
    this.changed?.({ op: "remove", id }).catch(() => undefined);
    return listingOf(share.saved);
  }

  /**
   * Cluster mode: the links every node holds, replacing this node's (at start, and again after
   * Redis comes back). Links this node had that are gone end as revoked.
   */
  replaceAll(saved: readonly SavedShare[]): void {
    const now = this.clock.now();
    const keep = new Set(saved.map((s) => s.id));
    for (const [id, share] of this.shares)
      if (!keep.has(id)) {
        this.shares.delete(id);
        this.onEnded?.(share.credential.identity, "revoked");
      }
    for (const s of saved) if (s.expiresAt > now && !this.shares.has(s.id)) this.adopt(s);
    this.save();
    this.arm();
  }

  /** Cluster mode: a link another node made. */
  adopt(saved: SavedShare): void {
    if (this.shares.has(saved.id) || saved.expiresAt <= this.clock.now()) return;
    this.shares.set(saved.id, { saved, credential: credentialOf(saved) });
    this.save();
    this.arm();
  }

  /** Cluster mode: a link another node revoked; its connections here end too. */
  drop(id: string): void {
    const share = this.shares.get(id);
    if (!share) return;
    this.shares.delete(id);
    this.save();
    this.arm();
    this.onEnded?.(share.credential.identity, share.saved.expiresAt <= this.clock.now() ? "expired" : "revoked");
  }

  /** Runs `dispose` when the store closes. */
  onClose(dispose: () => void): void {
    this.disposers.push(dispose);
  }

  /** Stops the expiry timer (and what {@link onClose} added); the links stay for the next start. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    for (const dispose of this.disposers.splice(0)) dispose();
  }

  /** Ends the links whose time is up, then waits for the next one's. */
  private expire(): void {
    this.timer = undefined;
    const now = this.clock.now();
    const ended: Share[] = [];
    for (const [id, share] of this.shares)
      if (share.saved.expiresAt <= now) {
        this.shares.delete(id);
        ended.push(share);
      }
    if (ended.length > 0) this.save();
    for (const share of ended) {
      this.onEnded?.(share.credential.identity, "expired");
      // Every node ends its own copy at the same time; this only keeps Redis from holding it.
      this.changed?.({ op: "remove", id: share.saved.id }).catch(() => undefined);
    }
    this.arm();
  }

  /** One timer, for the soonest expiry: a link's connections close at its `expiresAt`. */
  private arm(): void {
    this.timer?.cancel();
    this.timer = undefined;
    if (this.closed || this.shares.size === 0) return;
    let soonest = Infinity;
    for (const s of this.shares.values()) soonest = Math.min(soonest, s.saved.expiresAt);
    this.timer = this.clock.setTimeout(() => this.expire(), Math.max(0, soonest - this.clock.now()));
  }

  private save(): void {
    writeCredentialFile(
      this.file,
      [...this.shares.values()].map((s) => s.saved),
    );
  }
}

function credentialOf(saved: SavedShare): TokenCredential {
  return {
    hash: hashOf(saved),
    identity: {
      principal: principalId("share", saved.id),
      name: `${SHARE_IDENTITY_PREFIX}${saved.name}`,
      role: saved.role,
      sessions: [saved.session],
      share: {
        id: saved.id,
        session: saved.session,
        allowControl: saved.allowControl,
        expiresAt: saved.expiresAt,
      },
    },
  };
}

function listingOf(saved: SavedShare): ShareListing {
  return {
    ...withoutHash(saved),
    identity: `${SHARE_IDENTITY_PREFIX}${saved.name}`,
    principal: principalId("share", saved.id),
  };
}
