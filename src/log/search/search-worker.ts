import { readlinkSync } from "node:fs";
import { setPriority } from "node:os";
import { parentPort, workerData } from "node:worker_threads";
import { SearchEngine } from "./search-engine.js";
import { SEARCH_ERROR_PAUSE_MS } from "./search-messages.js";
import type { IndexBatch, SearchReply, SearchRequest } from "./search-messages.js";
import { SearchStore } from "./search-store.js";
import { SEARCH_THREAD_NICE } from "./search-thread.js";
import type { SearchThreadData } from "./search-thread.js";

/**
 * A search thread's side (see search-thread.ts), in one of two roles. The indexing thread alone
 * writes `search.db`: batches and deletions are queued and done one per turn of its loop, at a
 * lower priority. The query thread reads it (a read-only connection: WAL lets it read while the
 * other commits) and answers queries and cursors as they come, at normal priority, so a query
 * never waits behind indexing.
 */
const port = parentPort!;
const { file, done, role } = workerData as SearchThreadData;
/** Wakes the event loop waiting in `close()`, whether the thread closed or failed to start. */
const wake = () => {
  Atomics.store(done, 0, 1);
  Atomics.notify(done, 0);
};
process.on("exit", wake);
if (role === "index") lowerPriority();
const store = new SearchStore(file, { readonly: role === "query" });
const engine = new SearchEngine(store);
if (role === "index") port.postMessage({ t: "ready" } satisfies SearchReply);
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

/** Linux: this thread's nice value to SEARCH_THREAD_NICE (a thread is a task of its own there). */
function lowerPriority(): void {
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    if (Number.isInteger(tid)) setPriority(tid, SEARCH_THREAD_NICE);
  } catch {
    // Not Linux, or not permitted: indexing then competes with the output path at equal weight.
  }
}
