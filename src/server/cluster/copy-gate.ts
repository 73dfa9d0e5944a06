import type { StoredEntry } from "../../log/store.js";
import type { CatchUpPacing, CatchUpStep, TokenCatchUp } from "../ws/catch-up.js";

/**
 * Sessions a node copies at once from Redis, a page each (read and not yet held by the replica;
 * a session's fills run one at a time). With pages of about READ_PAGE_BYTES (1 MiB,
 * src/cluster/read-pages.ts), about what copies hold in memory, whatever their history.
 */
export const COPY_NODE_SESSIONS = 4;
/** Of those, sessions copied at once for one token (its watchers' and requesters'): others keep their turn. */
export const COPY_TOKEN_SESSIONS = 2;
/** The token name a copy nobody here watches or asked for is charged to (the mirror's own sweep). */
export const COPY_NOBODY = "";

/** One page of a copy: what it reads, how it appends, how it knows the replica holds it. */
export interface CopyPage {
  /** Token names the copy is for (see RemoteSession.copyFor); a page is charged to one of them. */
  tokens: readonly string[];
  read(): Promise<StoredEntry[]>;
  /** Appends what the read returned; returns the last seq appended (undefined: none). */
  append(entries: readonly StoredEntry[]): number | undefined;
  /** Resolves once the replica holds everything up to `seq` (published before: Redis holds it). */
  durable(seq: number): Promise<void>;
}

interface Waiter {
  tokens: readonly string[];
  resolve: (place: Place) => void;
}

interface Place {
  token: string;
  share: TokenCatchUp;
  release: () => void;
}

/**
 * Paces the copies a node makes of other nodes' sessions (cluster mode): at most
 * {@link COPY_NODE_SESSIONS} pages at once, {@link COPY_TOKEN_SESSIONS} per token, first come first
 * served. A page's bytes are charged to its token's catch-up share (docs/architecture.md,
 * guarantee 4), its entries appended in a catch-up turn after the node's own I/O, and its place
 * held until the replica committed it: copies never queue more than these pages for the writer.
 */
export class CopyGate {
  private active = 0;
  private readonly perToken = new Map<string, number>();
  private readonly queue: Waiter[] = [];
  /** Asked again by a token's share once it drained (TokenCatchUp.wait). */
  private readonly wake: CatchUpStep = {
    step: () => {
      this.grant();
      return 0;
    },
  };

  constructor(private readonly pacing: CatchUpPacing) {}

  /** Copies one page; resolves with the entries read (empty: nothing more to read). */
  async copy(page: CopyPage): Promise<readonly StoredEntry[]> {
    const place = await new Promise<Place>((resolve) => {
      this.queue.push({ tokens: page.tokens.length > 0 ? page.tokens : [COPY_NOBODY], resolve });
      this.grant();
    });
    let bytes = 0;
    try {
      const entries = await page.read();
      for (const entry of entries) bytes += entry.size;
      place.share.add(bytes);
      await this.pacing.scheduler.turn(bytes);
      const last = page.append(entries);
      if (last !== undefined) await page.durable(last);
      return entries;
    } finally {
      place.share.remove(bytes);
      place.release();
    }
  }

  /** Pages waiting for a place (for tests and metrics). */
  get waiting(): number {
    return this.queue.length;
  }

  /** Gives places to waiters in order while the node has some; a waiter none of whose tokens has room waits on. */
  private grant(): void {
    for (let i = 0; i < this.queue.length && this.active < COPY_NODE_SESSIONS;) {
      const waiter = this.queue[i]!;
      const token = this.roomFor(waiter.tokens);
      if (token === undefined) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      waiter.resolve(this.take(token));
    }
  }

  /** The token of `tokens` with the fewest pages under way that has room for one more. */
  private roomFor(tokens: readonly string[]): string | undefined {
    let best: string | undefined;
    for (const token of tokens) {
      const pages = this.perToken.get(token) ?? 0;
      if (pages >= COPY_TOKEN_SESSIONS || (best !== undefined && pages >= (this.perToken.get(best) ?? 0))) continue;
      const held = this.pacing.hold(token);
      const full = held.share.full;
      if (full) held.share.wait(this.wake);
      held.release();
      if (!full) best = token;
    }
    return best;
  }

  private take(token: string): Place {
    this.active++;
    this.perToken.set(token, (this.perToken.get(token) ?? 0) + 1);
    const held = this.pacing.hold(token);
    let released = false;
    return {
      token,
      share: held.share,
      release: () => {
        if (released) return;
        released = true;
        held.release();
        this.active--;
        const left = (this.perToken.get(token) ?? 1) - 1;
        if (left > 0) this.perToken.set(token, left);
        else this.perToken.delete(token);
        this.grant();
      },
    };
  }
}
