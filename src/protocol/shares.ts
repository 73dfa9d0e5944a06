import { z } from "zod";
import { displayName } from "./sessions.js";

/** A share link's life when `ttlMs` is not given: a working day and the night after it. */
export const SHARE_TTL_DEFAULT_MS = 24 * 60 * 60_000;
/** Shortest and longest life of a share link: a link is a bearer secret, so it always ends. */
export const SHARE_TTL_MIN_MS = 60_000;
export const SHARE_TTL_MAX_MS = 7 * 24 * 60 * 60_000;
/** Most live share links of one session: each is a credential its owner reviews; past it, revoke one first. */
export const MAX_SHARES_PER_SESSION = 20;
/** Where a share link's secret travels: the URL fragment, which browsers never send (the page exchanges it for a cookie). */
export const SHARE_FRAGMENT_PREFIX = "#token=";
/** Prefix of a share link's identity name (`share:NAME`), so that no configured token's name can be a link's. */
export const SHARE_IDENTITY_PREFIX = "share:";
/** The roles a link can give: it only ever watches (`allowControl` lets it ask for control on top). */
export const SHARE_ROLES = ["viewer"] as const;

/** `POST /v1/sessions/:id/shares`: a link that opens this one session. */
export const ShareRequest = z.strictObject({
  role: z.enum(SHARE_ROLES).default("viewer"),
  /** Shown to the session's watchers (presence) and in the log as `share:NAME`. */
  name: displayName(64).default("link"),
  ttlMs: z.number().int().min(SHARE_TTL_MIN_MS).max(SHARE_TTL_MAX_MS).default(SHARE_TTL_DEFAULT_MS),
  /**
   * Whether the link may take the session's control lease when it is free (never by force) and
   * then steer it as an operator would, for as long as it holds the lease.
   */
  allowControl: z.boolean().default(false),
  /** The address the teammate will open (`https://host:port`); default the one this request came to. */
  base: z
    .string()
    .max(300)
    .regex(
      /^https?:\/\/[^\s/?#]+$/,
      "base is a scheme and host as the teammate reaches the gateway (https://host:port)",
    )
    .optional(),
});
export type ShareRequest = z.input<typeof ShareRequest>;

/** A share link as `GET /v1/sessions/:id/shares` lists it: never its secret. */
export const ShareListing = z.strictObject({
  id: z.string(),
  session: z.string(),
  name: z.string(),
  role: z.enum(SHARE_ROLES),
  allowControl: z.boolean(),
  createdAt: z.number(),
  expiresAt: z.number(),
  /** Who made it: a principal id. */
  createdBy: z.string(),
  /** Its identity's name (`share:NAME`): what presence and the log show. */
  identity: z.string(),
  /** Its principal id, `share:ID`. */
  principal: z.string(),
});
export type ShareListing = z.infer<typeof ShareListing>;

/** The answer to `POST /v1/sessions/:id/shares`: the secret once, as a link and as a bearer token. */
export const ShareCreated = z.strictObject({
  id: z.string(),
  /** The link to send (`BASE/#token=SECRET`): the page exchanges the fragment for a sign-in cookie. */
  url: z.string(),
  /** The same secret, as `Authorization: Bearer` for API and WebSocket clients. */
  token: z.string(),
  expiresAt: z.number(),
  share: ShareListing,
});
export type ShareCreated = z.infer<typeof ShareCreated>;

/** What `GET /v1/whoami` adds for a share link's caller: the one session it opens. */
export const ShareScope = z.strictObject({
  id: z.string(),
  session: z.string(),
  allowControl: z.boolean(),
  expiresAt: z.number(),
});
export type ShareScope = z.infer<typeof ShareScope>;

/** What a share link's connections are told (UNAUTHORIZED) when its owner revokes it. */
export const SHARE_REVOKED_MESSAGE = "this share link was revoked by the session's owner";
/** What a share link's connections are told (UNAUTHORIZED) when it expires. */
export const SHARE_EXPIRED_MESSAGE = "this share link expired";
