// The nemesis's checker: it knows only the promises (docs/cluster.md, "What the checker checks"),
// not how the gateway keeps them. Pure: the history and the final logs in, anomalies out.
import type { AppendOp, ViewerRecord } from "./workload.js";

/** A session's final log as one reader saw it: every event by seq, as JSON objects. */
export interface FinalLog {
  session: string;
  /** Where it was read: "record" (the log of record: Redis, or a single node's own log) or a node id. */
  from: string;
  events: Array<Record<string, unknown>>;
  /**
   * For the record of a session still written to (a PTY that runs on): its length when the nodes
   * were first asked. Each node must hold at least that much, and no more than `events`, read
   * from Redis after the nodes.
   */
  reached?: number;
}

export interface Anomaly {
  kind:
    | "acked-missing"
    | "acked-elsewhere"
    | "duplicate"
    | "failed-present"
    | "phantom"
    | "gap"
    | "node-differs"
    | "viewer-order"
    | "viewer-differs"
    | "viewer-protocol"
    | "liveness"
    | "process";
  detail: string;
}

/** Key order left out: a JSON object as text with its keys sorted, for comparing what two readers were given. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object")
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(value);
}

/** The values a stream session's output events carry, one per line, with the seq that holds each. */
function valuesOf(log: FinalLog): Array<{ value: string; seq: number }> {
  const out: Array<{ value: string; seq: number }> = [];
  for (const e of log.events) {
    if (e["type"] !== "output") continue;
    const data = e["enc"] === "base64" ? Buffer.from(e["data"] as string, "base64").toString() : (e["data"] as string);
    for (const line of data.split("\n")) if (line !== "") out.push({ value: line, seq: e["seq"] as number });
  }
  return out;
}

/**
 * Checks a run: `ops` what producers were told, `viewers` what viewers were given, `logs` each
 * session's final log of record (`from: "record"`: Redis, or a single node's own log) and from every node.
 * `streams` are the sessions producers appended to (their output lines are producers' values).
 */
export function check(o: {
  ops: readonly AppendOp[];
  viewers: readonly ViewerRecord[];
  logs: readonly FinalLog[];
  streams: readonly string[];
}): Anomaly[] {
  const anomalies: Anomaly[] = [];
  const add = (kind: Anomaly["kind"], detail: string) => anomalies.push({ kind, detail });
  const record = new Map(o.logs.filter((l) => l.from === "record").map((l) => [l.session, l]));

  // Seqs contiguous from the first retained one; every node's copy equal to Redis's.
  for (const log of record.values()) {
    log.events.forEach((e, i) => {
      const first = log.events[0]!["seq"] as number;
      if (e["seq"] !== first + i) add("gap", `${log.session}: seq ${String(e["seq"])} at index ${i} (first ${first})`);
    });
  }
  for (const log of o.logs) {
    if (log.from === "record") continue;
    const truth = record.get(log.session);
    if (truth === undefined) {
      add("node-differs", `${log.from} has ${log.session}, Redis does not`);
      continue;
    }
    const mine = log.events.map(canonical);
    const theirs = truth.events.map(canonical);
    const at = mine.findIndex((e, i) => e !== theirs[i]);
    if (mine.length < (truth.reached ?? theirs.length) || mine.length > theirs.length || at >= 0)
      add(
        "node-differs",
        `${log.from} ${log.session}: ${mine.length} events, Redis ${theirs.length}; first difference at index ${at}: ${mine[at]?.slice(0, 200)} vs ${theirs[at]?.slice(0, 200)}`,
      );
  }

  // Every acknowledged value exactly once, at the seq its answer named; failed ones absent.
  const where = new Map<string, Array<{ session: string; seq: number }>>();
  for (const id of o.streams) {
    const log = record.get(id);
    if (log === undefined) continue;
    for (const { value, seq } of valuesOf(log)) {
      const list = where.get(value) ?? [];
      list.push({ session: id, seq });
      where.set(value, list);
    }
  }
  const made = new Map(o.ops.map((op) => [op.value, op]));
  for (const [value, places] of where) {
    if (places.length > 1)
      add(
        "duplicate",
        `${value} at ${places.map((p) => `${p.session}#${p.seq}`).join(", ")}; sent to ${made.get(value)?.node}, answered ${JSON.stringify(made.get(value)?.outcome)}`,
      );
    if (!made.has(value)) add("phantom", `${value} is in the log, no producer sent it`);
  }
  for (const op of o.ops) {
    const places = where.get(op.value) ?? [];
    if (op.outcome.kind === "ok") {
      if (places.length === 0)
        add(
          "acked-missing",
          `${op.value} acknowledged at ${op.session}#${op.outcome.seq} by ${op.node}, not in the log`,
        );
      else if (places[0]!.session !== op.session || places[0]!.seq !== op.outcome.seq)
        add(
          "acked-elsewhere",
          `${op.value} acknowledged at ${op.session}#${op.outcome.seq} by ${op.node}, in the log at ${places[0]!.session}#${places[0]!.seq}`,
        );
    } else if (op.outcome.kind === "fail" && places.length > 0)
      add(
        "failed-present",
        `${op.value} refused (${op.outcome.code}) by ${op.node}, yet in the log at #${places[0]!.seq}`,
      );
  }

  // Viewers: strictly increasing and gap-free (or an explicit reset), equal to the log at each seq.
  for (const v of o.viewers) {
    for (const p of v.problems) add("viewer-protocol", `${v.name}: ${p}`);
    const truth = record.get(v.session);
    if (truth === undefined) continue;
    const bySeq = new Map(truth.events.map((e) => [e["seq"] as number, canonical(e)]));
    if (v.bytes) {
      const all = Buffer.concat(
        truth.events
          .filter((e) => e["type"] === "output")
          .map((e) => Buffer.from(e["data"] as string, e["enc"] === "base64" ? "base64" : "utf8")),
      );
      let at = v.output[0]?.offset ?? 0;
      for (const piece of v.output) {
        if (piece.offset !== at) add("viewer-order", `${v.name}: bytes at ${piece.offset} after ${at}`);
        if (!all.subarray(piece.offset, piece.offset + piece.bytes.length).equals(piece.bytes))
          add("viewer-differs", `${v.name}: bytes at ${piece.offset} differ from the log's`);
        at = piece.offset + piece.bytes.length;
      }
      continue;
    }
    // Every viewer starts from the beginning (since 0).
    let last = 0;
    let resets = 0;
    v.events.forEach((e, i) => {
      while (resets < v.resets.length && v.resets[resets]!.at <= i) last = v.resets[resets++]!.first - 1;
      if (e.seq !== last + 1)
        add("viewer-order", `${v.name}: seq ${e.seq} after ${last} (event ${i} of ${v.events.length})`);
      const expected = bySeq.get(e.seq);
      if (expected !== canonical(JSON.parse(e.json)))
        add(
          "viewer-differs",
          `${v.name}: seq ${e.seq} was ${e.json.slice(0, 200)}, the log has ${expected?.slice(0, 200)}`,
        );
      last = e.seq;
    });
  }
  return anomalies;
}
