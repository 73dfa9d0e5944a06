import type { RedisClient } from "../../cluster/redis-client.js";
import { subscriberClient } from "../../cluster/redis-client.js";
import type { Logger } from "../ops/logger.js";
import { parseSavedShare } from "../identity/share-links.js";
import type { SavedShare, ShareChange, ShareStore } from "../identity/share-links.js";

/** The hash of every live share link (`id` → the saved link: hashes only, never a secret). */
export function sharesKey(keyPrefix: string): string {
  return `${keyPrefix}shares`;
}

/** Where a node tells the others of a link it made or revoked. */
export function sharesChannel(keyPrefix: string): string {
  return `${keyPrefix}shares:changed`;
}

export interface ShareSyncOptions {
  redis: RedisClient;
  keyPrefix: string;
  store: ShareStore;
  logger: Logger;
}

/**
 * Cluster mode: share links live in Redis (`sb:shares`), so a link made on one node opens its
 * session on any node, and revoking it on one closes its connections on every node. Each node
 * keeps a copy in its ShareStore (tokens are verified in memory, in constant time); a change is
 * written to the hash, then announced on `sb:shares:changed`; a node reads the whole hash at
 * start and again whenever its subscription comes back, so a notice lost in a drop is made up.
 * test/cluster/share-any-node.test.ts.
 */
export class ShareSync {
  private subscriber: RedisClient | undefined;

  constructor(private readonly o: ShareSyncOptions) {}

  async start(): Promise<void> {
    const { store, keyPrefix } = this.o;
    store.changed = (change) => this.publish(change);
    store.onClose(() => this.close());
    const subscriber = subscriberClient(this.o.redis);
    this.subscriber = subscriber;
    // Reconnects on its own; the reload on "ready" makes up for what a drop lost.
    subscriber.on("error", () => undefined);
    subscriber.on("message", (_channel: string, message: string) => this.apply(message));
    await subscriber.subscribe(sharesChannel(keyPrefix));
    subscriber.on("ready", () => {
      this.reload().catch((error: unknown) =>
        this.o.logger.warn({ err: error }, "could not read the share links from Redis; retried at the next reconnect"),
      );
    });
    await this.reload();
  }

  close(): void {
    this.o.store.changed = undefined;
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }

  private async publish(change: ShareChange): Promise<void> {
    const { redis, keyPrefix } = this.o;
    if (change.op === "add") await redis.hset(sharesKey(keyPrefix), change.share.id, JSON.stringify(change.share));
    else await redis.hdel(sharesKey(keyPrefix), change.id);
    await redis.publish(sharesChannel(keyPrefix), JSON.stringify(change));
  }

  private async reload(): Promise<void> {
    const all = await this.o.redis.hgetall(sharesKey(this.o.keyPrefix));
    const saved: SavedShare[] = [];
    for (const [id, text] of Object.entries(all)) {
      const share = this.parse(text);
      if (share !== undefined && share.id === id) saved.push(share);
    }
    this.o.store.replaceAll(saved);
  }

  private apply(message: string): void {
    let change: unknown;
    try {
      change = JSON.parse(message);
    } catch (error) {
      this.o.logger.warn({ err: error }, "a share link notice that is not JSON was ignored");
      return;
    }
    const { op, id, share } = (change ?? {}) as { op?: unknown; id?: unknown; share?: unknown };
    if (op === "remove" && typeof id === "string") this.o.store.drop(id);
    else if (op === "add") {
      const parsed = this.parse(JSON.stringify(share));
      if (parsed !== undefined) this.o.store.adopt(parsed);
    }
  }

  /** A saved link another node wrote, or undefined (logged) when it is not one. */
  private parse(text: string): SavedShare | undefined {
    try {
      return parseSavedShare(JSON.parse(text));
    } catch (error) {
      this.o.logger.warn({ err: error }, "a share link in Redis is not valid and was ignored");
      return undefined;
    }
  }
}
