import fc from "fast-check";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ManualClock, systemClock } from "../../src/core/clock.js";
import { EventLog, SqliteEventStore } from "../../src/log/index.js";
import { SearchIndex } from "../../src/log/search/search-index.js";
import { SEARCH_BATCH_WAIT_MS, SEARCH_BUSY_WAIT_MS } from "../../src/log/search/search-indexer.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";

/**
 * How far behind the log a busy session's search is: a session typed into (an entry every few
 * ms, as keystrokes' echoes come) is batched to the search thread at most once per
 * SEARCH_BUSY_WAIT_MS, and every word is found once that long has passed since it was
 * published. The indexer's timers run on a manual clock; the thread, SQLite and the log are real.
 */
describe("search behind a busy session", () => {
  it("finds every typed word within SEARCH_BUSY_WAIT_MS, in a batch per that long", async () => {
    const dir = tempDir("switchboard-search-lag-");
    const events = new EventLog({ store: new SqliteEventStore(join(dir, "log.db")), clock: systemClock });
    const clock = new ManualClock();
    const index = new SearchIndex({ dataDir: dir, events, clock });
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 20, maxLength: 60 }), async (gaps) => {
          const log = events.create(`typing-${++run}`);
          index.indexer.start([log.sessionId]);
          await waitFor(() => index.indexer.idle, 10_000, "the index opened");
          let batches = 0;
          const take = index.indexer.take.bind(index.indexer);
          index.indexer.take = (reply) => {
            if (reply.t === "indexed" && reply.sessionId === log.sessionId) batches++;
            take(reply);
          };
          const typed: Array<{ word: string; at: number }> = [];
          const started = clock.monotonic();
          let checked = 0;
          for (const [i, gap] of gaps.entries()) {
            const word = `k${run}x${i}`;
            log.appendOutput("stdout", `${word} `);
            await log.whenPublished();
            typed.push({ word, at: clock.monotonic() });
            clock.advance(gap);
            // Every word published at least the bound ago is found (once the thread answers).
            for (; checked < typed.length && typed[checked]!.at <= clock.monotonic() - SEARCH_BUSY_WAIT_MS; checked++) {
              const { word: due } = typed[checked]!;
              await waitFor(
                async () => (await index.search(due, { sessions: [log.sessionId], limit: 1 })).hits.length === 1,
                10_000,
                `${due} found ${SEARCH_BUSY_WAIT_MS} ms after it was published`,
              );
            }
          }
          const span = clock.monotonic() - started;
          index.indexer.take = take;
          // A batch per round: the first SEARCH_BATCH_WAIT_MS after the first word, then one per SEARCH_BUSY_WAIT_MS.
          expect(batches).toBeLessThanOrEqual(Math.ceil((span - SEARCH_BATCH_WAIT_MS) / SEARCH_BUSY_WAIT_MS) + 1);
          clock.advance(SEARCH_BUSY_WAIT_MS);
          await waitFor(() => index.indexer.idle, 10_000, "the last round indexed");
          const last = typed.at(-1)!.word;
          expect((await index.search(last, { sessions: [log.sessionId], limit: 1 })).hits).toHaveLength(1);
        }),
        { numRuns: 5, seed: 20261127 },
      );
    } finally {
      index.close();
      events.close();
    }
  });
});
