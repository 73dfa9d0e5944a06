import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SqliteEventStore } from "../../src/log/index.js";
import type { StoredEntry } from "../../src/log/index.js";
import type { GroupCommit } from "../../src/log/group-commit.js";
import { tempDir } from "../helpers/tmp.js";
import { restartingStore, writerOf } from "./helpers.js";
import { waitFor } from "../helpers/wait-for.js";

const event = (seq: number): StoredEntry => {
  const json = JSON.stringify({ seq, type: "custom", ts: 0 });
  return { seq, type: "custom", json, size: json.length };
};

/** The store's group commit. */
const commitOf = (store: SqliteEventStore) => (store as unknown as { writes: GroupCommit }).writes;

describe("GroupCommit's state", () => {
  it("goes starting → writer → down (the thread died) → writer (it runs again) → closed, committing in each", async () => {
    const file = join(tempDir(), "log.db");
    const { store, said } = restartingStore(file, 200);
    const writes = commitOf(store);
    // The state as each step found it (sampling on a timer missed short states on a loaded machine).
    const seen: string[] = [];
    const note = () => {
      if (seen.at(-1) !== writes.state) seen.push(writes.state);
    };
    let seq = 0;
    try {
      note();
      // Starting: committed here all the same.
      store.enqueue("s", event(++seq));
      expect(store.flush()).toBe(1);
      await waitFor(() => writes.state === "writer", 10_000, "the writer thread to run");
      note();
      await writerOf(store).kill();
      await waitFor(() => writes.state === "down", 10_000, "the store to see its writer stop");
      note();
      store.enqueue("s", event(++seq));
      expect(store.flush()).toBe(1);
      await waitFor(() => writes.state === "writer", 10_000, "the writer thread to run again");
      note();
      store.enqueue("s", event(++seq));
      expect(store.flush()).toBe(1);
    } finally {
      store.close();
    }
    note();
    expect(seen).toEqual(["starting", "writer", "down", "writer", "closed"]);
    // Said once when it stopped, once when it ran again.
    expect(said.errors.map((e) => (e as { code?: string }).code)).toEqual(["LOG_WRITER_STOPPED"]);
    expect(said.restarted).toBe(1);
    const reopened = new SqliteEventStore(file);
    try {
      expect(reopened.readAfter("s", 0, 10).map((e) => e.seq)).toEqual([1, 2, 3]);
    } finally {
      reopened.close();
    }
  });

  it("closed is final: it takes no write, a flush commits nothing, and a late report from the writer thread moves nothing", async () => {
    const { store, said } = restartingStore(join(tempDir(), "log.db"), 200);
    const writes = commitOf(store);
    await waitFor(() => writes.state === "writer", 10_000, "the writer thread to run");
    store.close();
    expect(writes.state).toBe("closed");
    expect(() => writes.push("s", 10, { kind: "delete", sessionId: "s" } as const)).toThrow("event store is closed");
    expect(writes.flush()).toBe(0);
    const late = writes as unknown as { onWriterStopped(reason: string, ms: number): void; onWriterReady(): void };
    late.onWriterStopped("it exited", 1000);
    late.onWriterReady();
    expect(writes.state).toBe("closed");
    expect(said.errors).toEqual([]);
    expect(said.restarted).toBe(0);
    // Whoever waits for a purge is not left waiting.
    await writes.whenCommitted({ kind: "delete", sessionId: "s" } as const);
  });
});
