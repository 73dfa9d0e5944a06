import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CatchUpPacing, CATCHUP_TOKEN_BYTES } from "../../src/server/ws/catch-up.js";
import { COPY_NODE_SESSIONS, COPY_TOKEN_SESSIONS, CopyGate } from "../../src/server/cluster/copy-gate.js";
import type { StoredEntry } from "../../src/log/store.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function entry(seq: number, size: number): StoredEntry {
  return { seq, type: "custom", json: "{}", size };
}

/** Pages under way, in all and per token, as the pages themselves see them (read to durable). */
class Watch {
  active = 0;
  maxActive = 0;
  readonly perToken = new Map<string, number>();
  readonly maxPerToken = new Map<string, number>();

  enter(token: string): void {
    this.maxActive = Math.max(this.maxActive, ++this.active);
    const n = (this.perToken.get(token) ?? 0) + 1;
    this.perToken.set(token, n);
    this.maxPerToken.set(token, Math.max(this.maxPerToken.get(token) ?? 0, n));
  }

  leave(token: string): void {
    this.active--;
    this.perToken.set(token, this.perToken.get(token)! - 1);
  }
}

describe("CopyGate", () => {
  it("property: never more pages at once than the node's and each token's bound; every page is copied once, its bytes given back", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            token: fc.constantFrom("a", "b", "c"),
            readMs: fc.integer({ min: 0, max: 3 }),
            durableMs: fc.integer({ min: 0, max: 3 }),
            size: fc.integer({ min: 1, max: 4096 }),
          }),
          { minLength: 1, maxLength: 40 },
        ),
        async (pages) => {
          const pacing = new CatchUpPacing((error) => {
            throw error;
          });
          const gate = new CopyGate(pacing);
          const watch = new Watch();
          const appended: number[] = [];
          const shares = ["a", "b", "c"].map((t) => pacing.hold(t));
          await Promise.all(
            pages.map((p, i) =>
              gate.copy({
                tokens: [p.token],
                read: async () => {
                  watch.enter(p.token);
                  await sleep(p.readMs);
                  return [entry(i + 1, p.size)];
                },
                append: (entries) => {
                  appended.push(...entries.map((e) => e.seq));
                  return entries.at(-1)?.seq;
                },
                durable: async () => {
                  await sleep(p.durableMs);
                  watch.leave(p.token);
                },
              }),
            ),
          );
          expect(watch.maxActive).toBeLessThanOrEqual(COPY_NODE_SESSIONS);
          for (const n of watch.maxPerToken.values()) expect(n).toBeLessThanOrEqual(COPY_TOKEN_SESSIONS);
          expect(appended.sort((x, y) => x - y)).toEqual(pages.map((_, i) => i + 1));
          expect(gate.waiting).toBe(0);
          for (const s of shares) expect(s.share.bytes).toBe(0);
          for (const s of shares) s.release();
        },
      ),
      { numRuns: 30 },
    );
  });

  it("lets a page through for a token with room when another token watching the same session is at its bound or its share is full", async () => {
    const pacing = new CatchUpPacing(() => undefined);
    const gate = new CopyGate(pacing);
    // Token "hog": its share is full (its clients do not read), and it copies its own sessions.
    const hog = pacing.hold("hog");
    hog.share.add(CATCHUP_TOKEN_BYTES);
    let hogPages = 0;
    const hogCopy = gate.copy({
      tokens: ["hog"],
      read: async () => {
        hogPages++;
        return [entry(1, 10)];
      },
      append: () => 1,
      durable: async () => undefined,
    });
    // A session both watch: charged to the other token, it is copied at once.
    const shared = await gate.copy({
      tokens: ["hog", "victim"],
      read: async () => [entry(1, 10)],
      append: () => 1,
      durable: async () => undefined,
    });
    expect(shared).toHaveLength(1);
    await sleep(20);
    expect(hogPages).toBe(0);
    expect(gate.waiting).toBe(1);
    // Its clients read: the share drains below half, the waiting page goes on.
    hog.share.remove(CATCHUP_TOKEN_BYTES);
    await hogCopy;
    expect(hogPages).toBe(1);
    hog.release();
  });
});
