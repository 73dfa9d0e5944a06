import { z } from "zod";

/** The buttons of a permission notification: Allow answers the request's `allow_once` option, Reject its `reject_once`. */
export const PUSH_ACTIONS = ["allow", "reject"] as const;
export type PushAction = (typeof PUSH_ACTIONS)[number];
/** A notification's action token: 128 random bits, url-safe (22 characters). */
export const PUSH_ACTION_TOKEN_PATTERN = /^[A-Za-z0-9_-]{22}$/;
/** Longest push endpoint URL accepted: browsers' are under 500 characters. */
export const PUSH_ENDPOINT_MAX_CHARS = 1024;

/**
 * `POST /v1/push/subscriptions`: a browser's `PushSubscription.toJSON()`. The endpoint is the
 * push service's HTTPS URL; `p256dh` (65-byte P-256 point) and `auth` (16 bytes) are base64url.
 */
export const PushSubscriptionBody = z.object({
  endpoint: z
    .string()
    .max(PUSH_ENDPOINT_MAX_CHARS)
    .regex(/^https:\/\/[^\s/?#]+\/\S*$/, "endpoint is the push service's https:// URL (PushSubscription.endpoint)"),
  expirationTime: z.number().nullable().optional(),
  keys: z.object({
    p256dh: z.string().regex(/^[A-Za-z0-9_-]{86,88}={0,2}$/, "keys.p256dh is a P-256 public key, base64url"),
    auth: z.string().regex(/^[A-Za-z0-9_-]{22,24}={0,2}$/, "keys.auth is 16 bytes, base64url"),
  }),
});
export type PushSubscriptionBody = z.infer<typeof PushSubscriptionBody>;

/** `DELETE /v1/push/subscriptions`: the endpoint to forget. */
export const PushUnsubscribeBody = z.strictObject({ endpoint: z.string().max(PUSH_ENDPOINT_MAX_CHARS) });

/** `POST /v1/push/answer`: a notification's button, answered with its action token (no other credential). */
export const PushAnswerBody = z.strictObject({
  token: z.string().max(64),
  action: z.enum(PUSH_ACTIONS),
});

/**
 * Why a notification was sent. `elicitation`: an agent asks a question (a form or a page to
 * visit); it has no buttons, a tap opens the session. `attention`: a terminal rang its bell, sent
 * a notification or went quiet. `test`: `POST /v1/push/test`, no session (`sessionId` is empty).
 */
export const PUSH_REASONS = ["permission", "elicitation", "finished", "exited", "attention", "test"] as const;

/** What the service worker gets in a push message (JSON, encrypted by RFC 8291 on the way). */
export const PushPayload = z.strictObject({
  reason: z.enum(PUSH_REASONS),
  sessionId: z.string(),
  /** The session's name and what happened ("build needs an answer"). */
  title: z.string(),
  /**
   * One line: the request's title or the agent's question (a url one's host only, never its path
   * or query), the run's last line, how the session ended.
   */
  body: z.string(),
  /** Permission requests an identity may answer: the one-time token the Allow / Reject buttons send. */
  token: z.string().optional(),
  /** The buttons to show with `token`: those whose `once` option the request has. */
  actions: z.array(z.enum(PUSH_ACTIONS)).optional(),
});
export type PushPayload = z.infer<typeof PushPayload>;
