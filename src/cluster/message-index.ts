import { createHash } from "node:crypto";
import type { RedisClient } from "./redis-client.js";

/**
 * How long a node may hold a key's claim while it creates the key's session: past it, another
 * node may claim the key (the holder died between claim and record).
 */
export const MESSAGE_CLAIM_TTL_MS = 10_000;

/** Claims a key whose entry still names `expected` ('' for none): `{1, entry}` won, `{0, entry}` not. */
const CLAIM = `
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then return {0, current} end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return {1, current} end
return {0, current}
`;

/** Records the key's new session and ends the claim, if `holder` still holds it. */
const RECORD = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
return 1
`;

/** Ends the claim without recording anything (creating the session failed). */
const RELEASE = `
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 0
`;

/** Removes the key's entry if it still names ARGV[1] (that session ended). */
const FORGET = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`;

/** What a message's session is found by, as on one node: the agent, the session key and the caller who owns it. */
export interface MessageKey {
  agentId: string;
  sessionKey: string;
  owner: string;
}

/**
 * The session key → session index of `/v1/messages` in cluster mode (docs/cluster.md,
 * "Messages on any node"), so a message reaches the same session on whichever node it arrives.
 * One string per key, `<prefix>msg:{<sha256 of the key>}`, and a claim beside it (same hash
 * tag) that one node holds while it creates the key's session.
 */
export class MessageSessionIndex {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  private keys(key: MessageKey): [entry: string, claim: string] {
    const digest = createHash("sha256")
      .update(JSON.stringify([key.agentId, key.sessionKey, key.owner]))
      .digest("hex");
    const entry = `${this.prefix}msg:{${digest}}`;
    return [entry, `${entry}:claim`];
  }

  /** The session the key names, if any. */
  async get(key: MessageKey): Promise<string | undefined> {
    return (await this.redis.get(this.keys(key)[0])) ?? undefined;
  }

  /**
   * Claims the key for `holder` while its entry still names `expected` (undefined: none), to
   * create its session; false when another node holds the claim or the entry changed meanwhile.
   */
  async claim(key: MessageKey, expected: string | undefined, holder: string): Promise<boolean> {
    const [won] = (await this.redis.eval(
      CLAIM,
      2,
      ...this.keys(key),
      expected ?? "",
      holder,
      String(MESSAGE_CLAIM_TTL_MS),
    )) as [number, string];
    return won === 1;
  }

  /** Names `sessionId` for the key and ends `holder`'s claim; false when the claim had expired. */
  async record(key: MessageKey, holder: string, sessionId: string): Promise<boolean> {
    return Number(await this.redis.eval(RECORD, 2, ...this.keys(key), holder, sessionId)) === 1;
  }

  /**
   * Removes the key's entry while it still names `sessionId`, whose session ended: the next
   * message makes a new session either way, and so each conversation ever held does not keep
   * a key in Redis for good.
   */
  async forget(key: MessageKey, sessionId: string): Promise<void> {
    await this.redis.eval(FORGET, 1, this.keys(key)[0], sessionId);
  }

  /** Ends `holder`'s claim with nothing recorded. */
  async release(key: MessageKey, holder: string): Promise<void> {
    await this.redis.eval(RELEASE, 2, ...this.keys(key), holder);
  }
}
