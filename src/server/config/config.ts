import { readFileSync, realpathSync, statSync } from "node:fs";
import { isIP } from "node:net";
import { z } from "zod";
import { DEFAULT_RUN_TEXT_BYTES } from "../../agents/run.js";
import {
  DEVICE_IDENTITY_PREFIX,
  SHARE_IDENTITY_PREFIX,
  InlineAgent,
  SwitchboardError,
  displayName,
  tokenCharsProblem,
} from "../../protocol/index.js";
import { DEFAULT_RETENTION } from "../../log/retention.js";
import { PluginsConfigSchema } from "../../plugins/config.js";
import {
  KEY_PREFIX_PATTERN,
  MAX_REDIS_SEEDS,
  MAX_REQUEST_TIMEOUT_MS,
  MAX_WAIT_REPLICAS,
  MAX_WAIT_TIMEOUT_MS,
  MIN_REQUEST_TIMEOUT_MS,
  MIN_WAIT_TIMEOUT_MS,
  nodeIdProblem,
  redisSeedsProblem,
  redisUrlProblem,
} from "../../cluster/cluster-settings.js";
import { NODE_LEASE_MAX_TTL_MS, NODE_LEASE_MIN_TTL_MS } from "../../cluster/node-lease.js";
import { writeFileWhole } from "../../system/private-file.js";

export const ROLES = ["admin", "operator", "viewer"] as const;
export type Role = (typeof ROLES)[number];

/** The shortest token the gateway takes: configured, given to `serve`, or kept in DATA_DIR/token. */
export const MIN_TOKEN_CHARS = 16;

/** A refinement from a function that names a value's problem (undefined: it has none). */
function named(problemOf: (value: string) => string | undefined) {
  return (value: string, ctx: z.RefinementCtx) => {
    const problem = problemOf(value);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  };
}

const TokenEntry = z
  .strictObject({
    /** Shown as a session's `owner` and `controller`: the rules of a session name. */
    name: displayName(100)
      .refine(
        (name) => !name.startsWith(DEVICE_IDENTITY_PREFIX),
        `names starting with ${DEVICE_IDENTITY_PREFIX} are the paired devices'; give the token another name`,
      )
      .refine(
        (name) => !name.startsWith(SHARE_IDENTITY_PREFIX),
        `names starting with ${SHARE_IDENTITY_PREFIX} are the share links'; give the token another name`,
      ),
    token: z
      .string()
      .min(MIN_TOKEN_CHARS, `tokens need at least ${MIN_TOKEN_CHARS} characters`)
      .max(512)
      .superRefine(named(tokenCharsProblem))
      .optional(),
    tokenSha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/, "tokenSha256 is 64 lower-case hex characters")
      .optional(),
    role: z.enum(ROLES),
    /** Glob patterns over session ids and names this token may see (default: its own sessions, or all for admins). */
    sessions: z.array(z.string().min(1).max(200)).max(100).optional(),
  })
  .refine((t) => (t.token === undefined) !== (t.tokenSha256 === undefined), "give exactly one of token or tokenSha256")
  // Globs cannot narrow an admin (it sees and steers everything): a token that looks scoped and
  // is not would be worse than a refused config.
  .refine(
    (t) => t.role !== "admin" || t.sessions === undefined || t.sessions.every((glob) => glob === "*"),
    "sessions globs do not narrow an admin, who sees every session: use role operator (or viewer) for a scoped token",
  );
export type TokenEntry = z.infer<typeof TokenEntry>;

/**
 * `auth.trustedProxy`: sign-in by a reverse proxy's user header (oauth2-proxy's
 * `X-Forwarded-User`, Tailscale Serve's `Tailscale-User-Login`, Authelia's `Remote-User`), only
 * from the proxy's own addresses. `roleMap` gives each user (or `*`, anyone the proxy lets in) a
 * role, or a role and session globs. docs/security.md, "Trusted proxy".
 */
const TrustedProxy = z.strictObject({
  /** The proxy's IP addresses as the gateway sees them (the TCP peer), exactly. */
  addresses: z
    .array(
      z
        .string()
        .max(64)
        .refine((a) => isIP(a) !== 0, "an IP address (127.0.0.1, ::1), as the proxy connects from; no ranges or names"),
    )
    .min(1)
    .max(32),
  /** The header carrying the user's name; matched without regard to case. */
  userHeader: z
    .string()
    .regex(/^[A-Za-z0-9-]{1,100}$/, "a header name (letters, digits and -), e.g. X-Forwarded-User")
    .refine((name) => name.toLowerCase() !== "authorization", "Authorization carries tokens, not a user name")
    .transform((name) => name.toLowerCase()),
  roleMap: z
    .record(
      z.string().min(1).max(200),
      z.union([
        z.enum(ROLES),
        z.strictObject({ role: z.enum(ROLES), sessions: z.array(z.string().min(1).max(200)).max(100).optional() }),
      ]),
    )
    .refine((map) => Object.keys(map).length > 0, "name at least one user (or * for anyone the proxy lets in)")
    .refine((map) => Object.keys(map).length <= 1000, "at most 1000 users"),
});
export type TrustedProxyConfig = z.infer<typeof TrustedProxy>;

/** Default limits. Every one is a config value (`limits.<name>`). */
export const DEFAULT_LIMITS = {
  /** Largest HTTP JSON body. */
  bodyBytes: 1024 * 1024,
  /** Largest WebSocket frame (larger: close 1009). */
  frameBytes: 1024 * 1024,
  /** Input bytes per second per connection (token bucket, burst = one second's worth). */
  inputBytesPerSecond: 1024 * 1024,
  /** Input messages per second per connection, and per token over HTTP (token bucket, burst = one second's worth). */
  inputFramesPerSecond: 500,
  /** Live sessions (running) per gateway. */
  sessions: 256,
  /** Live sessions per token. */
  sessionsPerToken: 64,
  /** Subscriptions per WebSocket connection. */
  subscriptionsPerConnection: 256,
  /** Concurrent WebSocket/SSE connections per token. */
  connectionsPerToken: 256,
  /** TCP connections one address (IPv6: one /64; loopback not counted) may hold before presenting a valid credential. */
  anonymousConnectionsPerAddress: 64,
  /** Events per `POST /v1/sessions/:id/events` call. */
  eventsPerAppend: 1000,
  /** Bytes a connection may have queued (gateway queue + socket buffer) before it is switched to catch-up. */
  queueBytes: 4 * 1024 * 1024,
  /** Text (answer and thoughts, UTF-8 bytes) one agent run may stream before it is stopped with `chat.error`. */
  runTextBytes: DEFAULT_RUN_TEXT_BYTES,
  /**
   * How long a `lag=screen` viewer's output is held while its screen is made; past it the viewer
   * gets bytes again from where it stopped. A screen takes tens of ms on a quiet machine, about
   * 2 s on a loaded one (the screen thread runs at nice 10), more after a flood of screen clears
   * (docs/benchmarks.md, "The test suite").
   */
  lagScreenWaitMs: 3_000,
};
export type Limits = typeof DEFAULT_LIMITS;

const positive = z.number().int().positive();

/**
 * A host as the Host check compares it (`hostnameOf`: the name or bracketed IPv6 address, port
 * dropped). An entry with a port, scheme or path never matched, and the gateway started anyway
 * and answered every request through that name with 421.
 */
const AllowedHost = z
  .string()
  .min(1)
  .max(255)
  .regex(
    /^(?:\[[0-9A-Fa-f:.]+\]|[^\s/:@[\]]+)$/,
    "a host name or [IPv6] address as in the Host header, without scheme, port or path (e.g. switchboard.example.com)",
  );

/**
 * An origin as browsers send it (`scheme://host[:port]`, lower case, no default port, no path):
 * the Origin check compares it exactly, so `https://host/` never matched, and the gateway
 * started anyway and refused the UI there with 403.
 */
const AllowedOrigin = z
  .string()
  .min(1)
  .max(255)
  .superRefine((text, ctx) => {
    const origin = originOf(text);
    if (origin !== text)
      ctx.addIssue({
        code: "custom",
        message: `${JSON.stringify(text.slice(0, 100))} is not an origin as browsers send it (scheme://host[:port])${origin !== undefined ? `: write ${origin}` : ""}`,
      });
  });

function originOf(text: string): string | undefined {
  let origin: string;
  try {
    origin = new URL(text).origin;
  } catch {
    // Not a URL at all: the issue says what an origin looks like.
    return undefined;
  }
  // Opaque origins (file:, data:, "null") are not one origin: allowing them would allow any such page.
  return origin === "null" ? undefined : origin;
}

/** A directory named in the config: absolute, without NUL. */
const AbsolutePath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => p.startsWith("/") && !p.includes("\0"), "an absolute path");

const RedisUrl = z.string().superRefine(named(redisUrlProblem));

export const ConfigSchema = z.strictObject({
  auth: z
    .strictObject({
      tokens: z
        .array(TokenEntry)
        .max(1000)
        .superRefine((tokens, ctx) => {
          // Sessions are owned by name: two tokens with one name would be one identity.
          const seen = new Set<string>();
          tokens.forEach((t, i) => {
            if (seen.has(t.name))
              ctx.addIssue({
                code: "custom",
                path: [i, "name"],
                message: `name ${t.name} is used by more than one token`,
              });
            seen.add(t.name);
          });
        })
        .default([]),
      trustedProxy: TrustedProxy.optional(),
    })
    .default({ tokens: [] }),
  /** Host header values accepted in addition to the listen address, localhost and 127.0.0.1. */
  allowedHosts: z.array(AllowedHost).default([]),
  /** Browser origins accepted on WebSocket and cookie requests in addition to the gateway's own. */
  allowedOrigins: z.array(AllowedOrigin).default([]),
  /** Mark the UI's session cookie `Secure` (set this when browsers reach the gateway over HTTPS, e.g. behind a TLS proxy). */
  secureCookies: z.boolean().default(false),
  /**
   * Compression on the wire (docs/operations.md, "Compression"): permessage-deflate on the
   * WebSocket endpoints when the client offers it, and gzip/br on catch-up pages
   * (`GET /v1/sessions/:id/events` and `/output`) when the client accepts it. Both off unless set
   * to true: compression deflates every big frame of a flood, a compressing connection's writes
   * wait on zlib, and a compressed stream reads ahead of a slow reader, while the byte path's
   * bounds (docs/security.md, Limits) are stated for the bytes as they are.
   */
  compression: z
    .strictObject({
      /** Read when the gateway starts (a reload does not change open endpoints). */
      websocket: z.boolean().optional(),
      http: z.boolean().optional(),
    })
    .default({}),
  limits: z
    .strictObject(
      Object.fromEntries(Object.keys(DEFAULT_LIMITS).map((k) => [k, positive.optional()])) as {
        [K in keyof Limits]: z.ZodOptional<typeof positive>;
      },
    )
    .default({}),
  retention: z
    .strictObject({
      maxEvents: positive.optional(),
      maxBytes: positive.optional(),
      /**
       * Ended sessions are removed (record and log) once they ended more than `maxAgeMs` ago,
       * beyond the newest `maxCount` ended ones, and oldest first while the logs of all ended
       * ones take more than `maxTotalBytes`. Unset: the defaults (DEFAULT_ENDED_RETENTION: 30
       * days, 4 GiB); null: no limit of that kind.
       */
      endedSessions: z
        .strictObject({
          maxAgeMs: positive.nullable().optional(),
          maxCount: z.number().int().min(0).nullable().optional(),
          maxTotalBytes: positive.nullable().optional(),
        })
        .default({}),
    })
    .default({ endedSessions: {} }),
  control: z
    .strictObject({
      /** Holder silence after which a control lease is released (ms). */
      autoReleaseAfterMs: positive.optional(),
      /**
       * How long a lease outlives its holder's closed connection for the holder's next connection
       * with the same `clientKey` and sign-in (ms; 0: none). At most 10 minutes.
       */
      reconnectGraceMs: z
        .number()
        .int()
        .min(0)
        .max(10 * 60_000)
        .optional(),
    })
    .default({}),
  /** Terminal sessions and the gateway's restarts (docs/operations.md, "Sessions across restarts"). */
  sessions: z
    .strictObject({
      /** Run terminal processes under holders, so they outlive the gateway (default: on with `serve`). */
      holders: z.boolean().optional(),
      /** On SIGTERM/SIGINT: "keep" held sessions running for the next gateway (default), or "end" them. */
      onStop: z.enum(["keep", "end"]).optional(),
      /**
       * A PTY session whose output stopped this long (ms) after output needs someone (attention
       * `quiet`); unset: never. At least 1 s, at most a day.
       */
      quietAfterMs: z.number().int().min(1_000).max(86_400_000).optional(),
    })
    .default({}),
  /**
   * Git worktree sessions (docs/protocol.md, "Worktrees"): repositories must be inside one of
   * `roots` (none: worktrees are off); new worktrees go to `dir/REPO-NAME/BRANCH`, or next to the
   * repository (`REPO.worktrees/BRANCH`, inside a root too). Read at each create: a reload applies.
   */
  worktrees: z
    .strictObject({
      roots: z.array(AbsolutePath).max(100).default([]),
      dir: AbsolutePath.optional(),
    })
    .default({ roots: [] }),
  /** Agents by id: `{adapter: "acp" | "command" | "echo", command?, cwd?, env?}`. `echo` is built in. */
  agents: z
    .record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "agent ids are letters, digits, _ . -"), InlineAgent)
    .default({}),
  /** Agent text deltas are coalesced to at most one event per this many ms. */
  deltaThrottleMs: z.number().int().min(0).max(10_000).optional(),
  /** A run whose agent said nothing this long gets a `run.notice` (0: never); default 30 s. */
  runStallNoticeMs: z.number().int().min(0).max(3_600_000).optional(),
  bindings: z.array(z.unknown()).default([]),
  defaultAgent: z.string().optional(),
  plugins: PluginsConfigSchema.optional(),
  /** Cluster mode (docs/cluster.md): the log is shared in Redis. `--redis` and `--node-id` take precedence. */
  cluster: z
    .strictObject({
      /** A Redis URL, a `redis+sentinel://` URL, or the seed URLs of a Redis Cluster. */
      redis: z.union([RedisUrl, z.array(RedisUrl).min(1).max(MAX_REDIS_SEEDS)]),
      nodeId: z.string().superRefine(named(nodeIdProblem)).optional(),
      keyPrefix: z
        .string()
        .regex(KEY_PREFIX_PATTERN, "a key prefix is at most 64 letters, digits and _ . : -")
        .optional(),
      /** The node lease's TTL: how long a dead node's sessions wait before another takes them over. */
      nodeTtlMs: z.number().int().min(NODE_LEASE_MIN_TTL_MS).max(NODE_LEASE_MAX_TTL_MS).optional(),
      /** Replicas that confirm each append (`WAIT`) before its events are delivered; default 0. */
      waitReplicas: z.number().int().min(0).max(MAX_WAIT_REPLICAS).optional(),
      /** How long one `WAIT` may take; default 1,000 ms. */
      waitTimeoutMs: z.number().int().min(MIN_WAIT_TIMEOUT_MS).max(MAX_WAIT_TIMEOUT_MS).optional(),
      /** How long a request forwarded to a session's owner waits for its answer; default 5,000 ms. */
      requestTimeoutMs: z.number().int().min(MIN_REQUEST_TIMEOUT_MS).max(MAX_REQUEST_TIMEOUT_MS).optional(),
    })
    .superRefine((cluster, ctx) => {
      const problem = redisSeedsProblem([cluster.redis].flat(), cluster.waitReplicas);
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem, path: ["redis"] });
    })
    .optional(),
});
export type Config = z.infer<typeof ConfigSchema>;
/** A config as written in a file: every section optional. */
export type ConfigInput = z.input<typeof ConfigSchema>;

export const DEFAULT_AUTO_RELEASE_MS = 5 * 60 * 1000;

/** Resolved settings the gateway runs with. */
export function resolveLimits(config: Config): Limits {
  const out = { ...DEFAULT_LIMITS };
  for (const [k, v] of Object.entries(config.limits)) if (typeof v === "number") out[k as keyof Limits] = v;
  return out;
}

export function resolveRetention(config: Config) {
  return {
    maxEvents: config.retention.maxEvents ?? DEFAULT_RETENTION.maxEvents,
    maxBytes: config.retention.maxBytes ?? DEFAULT_RETENTION.maxBytes,
  };
}

/** Parses a config object; errors name the path of the field that is wrong. */
export function parseConfig(raw: unknown, source = "config"): Config {
  const result = ConfigSchema.safeParse(raw);
  if (!result.success) throw new SwitchboardError("CONFIG_INVALID", `${source}: ${formatIssues(result.error)}`);
  return result.data;
}

export function loadConfigFile(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new SwitchboardError("CONFIG_INVALID", `cannot read config ${file}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    // Without V8's excerpt of the text: it may be part of a token. With the line and column,
    // which an editor goes to (V8 gives a character position).
    throw new SwitchboardError(
      "CONFIG_INVALID",
      `config ${file} is not valid JSON: ${describeJsonError(error)}${lineAndColumn(text, error)}`,
    );
  }
  return parseConfig(raw, file);
}

/**
 * What a failed `JSON.parse` found wrong, without the excerpt of the input V8 puts in its
 * message (`Unexpected token 'o', ..."{"token":tok-SECRET"... is not valid JSON`): a malformed
 * login body or frame would otherwise echo part of a token (or typed password) into the error,
 * and from there into proxies' and clients' logs (docs/security.md: tokens never in error messages).
 */
export function describeJsonError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const excerpt = message.search(/, (?:\.\.\.)?"/);
  return (excerpt >= 0 ? message.slice(0, excerpt) : message).slice(0, 200);
}

/** ` (line L, column C)` for the position a JSON.parse error names, or "" when it names none. */
function lineAndColumn(text: string, error: unknown): string {
  const at = /at position (\d+)/.exec(error instanceof Error ? error.message : "");
  if (at === null) return "";
  const before = text.slice(0, Number(at[1]));
  const line = before.split("\n").length;
  return ` (line ${line}, column ${before.length - before.lastIndexOf("\n")})`;
}

/** `path.to.field: message; ...` — the wording every validation error uses. */
export function formatIssues(error: z.ZodError, at: readonly PropertyKey[] = []): string {
  return error.issues
    .slice(0, 5)
    .map((i) => {
      const path = [...at, ...i.path];
      const text = issueText(i);
      // "(root): Unrecognized key" read like an error inside the gateway; a field needs no place.
      if (path.length === 0) return i.code === "unrecognized_keys" ? text : `(root): ${text}`;
      return `${path.map(String).join(".")}: ${text}`;
    })
    .join("; ");
}

/** An issue in words a client author reads at once, rather than zod's own. */
function issueText(issue: z.core.$ZodIssue): string {
  // (Only zod's own wording is replaced: a schema's message of its own is kept.)
  if (issue.code === "unrecognized_keys" && issue.message.startsWith("Unrecognized key"))
    return `unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}`;
  if (issue.code === "invalid_value" && issue.values.length > 1 && issue.message.startsWith("Invalid option"))
    return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
  return issue.message;
}

/**
 * Writes `value` as the config file `file`'s new content, keeping what the user chose for the
 * file: written where a symbolic link leads (a config kept in a dotfiles repository stays
 * linked), with the file's permissions, its indentation (tabs, 4 spaces, or one line) and its
 * final newline. Before, every write re-indented the file with 2 spaces, made it 0600 and
 * replaced a link with a copy. Whole or not at all. Returns the text.
 * (JSON has no comments to keep; the order of keys is the merge patch's, RFC 7396.)
 */
export function rewriteConfigFile(file: string, value: unknown): string {
  const real = realpathSync(file);
  const current = readFileSync(real, "utf8");
  const mode = statSync(real).mode & 0o7777;
  const text = `${JSON.stringify(value, null, indentOf(current))}${current.endsWith("\n") ? "\n" : ""}`;
  writeFileWhole(real, text, mode);
  return text;
}

/** The indentation `text` (a JSON document) uses: that of its first indented member, or "" for one written on one line. */
export function indentOf(text: string): string {
  const member = /\n([ \t]+)["}\]]/.exec(text);
  if (member) return member[1]!;
  return text.trim().includes("\n") ? "  " : "";
}
