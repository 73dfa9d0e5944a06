import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CommitQueues, LOG_DIRECT_MAX_BYTES, LOG_STREAMING_BYTES } from "../../src/log/commit-queues.js";
import type { Taken } from "../../src/log/commit-queues.js";
import type { CommitOp } from "../../src/log/sqlite-commit.mjs";

function entry(sessionId: string, seq: number, bytes: number, file: number | null = null): CommitOp {
  return {
    kind: "entry",
    sessionId,
    seq,
    type: "output",
    outStart: file ?? 0,
    outEnd: (file ?? 0) + bytes,
    json: "{}",
    data: new Uint8Array(bytes),
    file,
    syncFile: null,
    mark: false,
  };
}

const seqsOf = (taken: Taken, session: string): number[] =>
  taken.ops.flatMap((op) => (op.kind === "entry" && op.sessionId === session ? [op.seq] : []));

describe("CommitQueues", () => {
  it("hands every op out exactly once, in each session's order, however batches are taken and put back", () => {
    const step = fc.oneof(
      fc.record({ push: fc.constantFrom("a", "b", "c"), size: fc.integer({ min: 1, max: 40_000 }) }),
      fc.record({ take: fc.integer({ min: 1, max: 100_000 }) }),
      fc.record({ small: fc.boolean(), putBack: fc.boolean(), busy: fc.subarray(["a", "b", "c"]) }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 120 }), (steps) => {
        const queues = new CommitQueues();
        const next = new Map<string, number>();
        const got = new Map<string, number[]>();
        const keep = (taken: Taken) => {
          for (const op of taken.ops)
            if (op.kind === "entry") got.set(op.sessionId, [...(got.get(op.sessionId) ?? []), op.seq]);
          // What it makes durable is each session's last op in it.
          for (const key of taken.keys) {
            const seqs = seqsOf(taken, key);
            if (seqs.length > 0) expect(taken.durable.get(key)).toBe(seqs[seqs.length - 1]);
          }
        };
        let pushed = 0;
        for (const s of steps) {
          if ("push" in s) {
            const seq = (next.get(s.push) ?? 0) + 1;
            next.set(s.push, seq);
            queues.push(s.push, s.size, entry(s.push, seq, s.size));
            pushed++;
          } else if ("take" in s) {
            const before = queues.sessions;
            const taken = queues.take(s.take);
            // At least one op of every session that had some.
            expect(new Set(taken.keys).size).toBe(before);
            keep(taken);
          } else {
            const taken = queues.takeSmall(new Map(s.busy.map((k) => [k, 1])));
            for (const key of taken.keys) expect(s.busy).not.toContain(key);
            expect(taken.bytes).toBeLessThanOrEqual(LOG_DIRECT_MAX_BYTES);
            if (s.putBack) queues.putBack(taken);
            else keep(taken);
          }
        }
        const rest = queues.take(Infinity);
        keep(rest);
        expect(queues.ops).toBe(0);
        let handed = 0;
        for (const [key, n] of next) {
          expect(got.get(key) ?? []).toEqual(Array.from({ length: n }, (_, i) => i + 1));
          handed += n;
        }
        expect(handed).toBe(pushed);
      }),
      { numRuns: 300 },
    );
  });

  it("leaves streaming sessions, purges and a new output file's first write to the writer thread", () => {
    const queues = new CommitQueues();
    queues.push("quiet", 10, entry("quiet", 1, 10));
    queues.push("flood", LOG_STREAMING_BYTES + 1, entry("flood", 1, LOG_STREAMING_BYTES + 1));
    queues.push("purged", 64, { kind: "delete", sessionId: "purged" });
    queues.push("newfile", 9000, entry("newfile", 1, 9000, 0));
    expect(queues.writerOnly()).toBe(true);
    const small = queues.takeSmall(new Map());
    expect(small.keys).toEqual(["quiet"]);
    expect(queues.ops).toBe(3);
    expect(queues.take(Infinity).keys.sort()).toEqual(["flood", "newfile", "purged"]);
    expect(queues.writerOnly()).toBe(false);
  });
});
