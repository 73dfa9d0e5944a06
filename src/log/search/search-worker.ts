import { parentPort, workerData } from "node:worker_threads";
import { SearchEngine } from "./search-engine.js";
import { SEARCH_ERROR_PAUSE_MS } from "./search-messages.js";
import type { IndexBatch, SearchReply, SearchRequest } from "./search-messages.js";
import { SearchStore } from "./search-store.js";
import type { SearchThreadData } from "./search-thread.js";

/**
 * The search thread's side (see search-thread.ts): it alone opens `search.db`. Queries and
 * cursors are answered as they come; batches and deletions are queued and done one per turn of
 * this thread's loop, so a query waits behind at most one of them (a batch of SEARCH_READ_BYTES
 * takes a few ms).
 */
const port = parentPort!;
const { file, done } = workerData as SearchThreadData;
/** Wakes the event loop waiting in `close()`, whether the thread closed or failed to start. */
const wake = () => {
  Atomics.store(done, 0, 1);
  Atomics.notify(done, 0);
};
process.on("exit", wake);
const store = new SearchStore(file);
const engine = new SearchEngine(store);
/** Batches not indexed yet, in the order they came (at most SEARCH_QUEUE_BATCHES: the loop waits for their answers). */
const batches: IndexBatch[] = [];
/** Sessions whose deletion was asked: `forgotten` is answered once it is done. */
const asked = new Set<string>();
let scheduled = false;
let closed = false;

const reply = (r: SearchReply) => port.postMessage(r);
const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

port.on("message", (m: SearchRequest) => {
  if (closed) return;
  switch (m.t) {
    case "open":
      reply({ t: "opened", cursors: engine.open(m.live) });
      return schedule();
    case "index":
      batches.push(m);
      return schedule();
    case "forget":
      asked.add(m.sessionId);
      engine.forget(m.sessionId);
      return schedule();
    case "query":
      try {
        const hits = store.search(m.match, { sessions: m.sessions, before: m.before, limit: m.limit });
        return reply({ t: "hits", req: m.req, hits });
      } catch (error) {
        return reply({ t: "hits", req: m.req, error: messageOf(error) });
      }
    case "cursor":
      return reply({ t: "cursor", req: m.req, cursor: store.cursor(m.sessionId) });
    case "close":
      closed = true;
      batches.length = 0;
      try {
        engine.finish();
      } finally {
        // The next start forgets the sessions the log no longer holds, should this have failed.
        store.close();
        port.close();
        wake();
      }
      return;
  }
});

function schedule(delayMs = 0): void {
  if (scheduled || closed) return;
  scheduled = true;
  const run = () => {
    scheduled = false;
    if (!closed) runOne();
  };
  if (delayMs > 0) setTimeout(run, delayMs);
  else setImmediate(run);
}

/** One batch, or one deletion step when no batch waits. */
function runOne(): void {
  const batch = batches.shift();
  if (batch !== undefined) {
    if (engine.forgetting(batch.sessionId)) {
      reply({ t: "indexed", sessionId: batch.sessionId, cursor: batch.since });
    } else {
      try {
        reply({ t: "indexed", sessionId: batch.sessionId, cursor: engine.index(batch) });
      } catch (error) {
        // Nothing of it was committed: the loop sends it again from the cursor, after a pause.
        reply({ t: "indexed", sessionId: batch.sessionId, cursor: batch.since, error: messageOf(error) });
      }
    }
  } else if (engine.trimming) {
    try {
      const finished = engine.step();
      if (finished !== undefined && asked.delete(finished)) reply({ t: "forgotten", sessionId: finished });
    } catch (error) {
      // Kept, and tried again after the pause.
      reply({ t: "error", error: messageOf(error) });
      return schedule(SEARCH_ERROR_PAUSE_MS);
    }
  }
  if (batches.length > 0 || engine.trimming) schedule();
}
