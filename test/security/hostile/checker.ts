// The hostile run's checker: it knows only the promise (docs/security.md, "Fuzzing": hostile
// clients beside honest ones), not how the gateway keeps it. Pure: what the honest clients and
// the credential actions recorded, the gateway's memory and fate in; anomalies out.
import { check } from "../../cluster/nemesis/checker.js";
import type { FinalLog } from "../../cluster/nemesis/checker.js";
import type { ViewerRecord } from "../../cluster/nemesis/workload.js";
import type { OperatorRecord, Phase, Sample } from "./honest.js";
import type { CredentialRecord } from "./targets.js";

/** The promise: honest `/healthz` and keystroke echo p99 under this, hostile clients or not. */
export const PROMISED_P99_MS = 50;
/**
 * On a machine too loaded to keep the promise with honest clients alone (the same run's
 * baseline), the hostile phase is held to this many times the baseline's p99 instead: what the
 * hostile clients add is judged, not the machine. Both figures are in the report.
 */
export const LOADED_RATIO_MAX = 2;
/** A signed-out or revoked credential's connections are closed by the gateway within this. */
export const CUT_WITHIN_MS = 1_000;
/** The gateway's resident memory grows by less than this over its honest-only baseline. */
export const RSS_GROWTH_MAX = 512 * 1024 * 1024;

export type HostileAnomalyKind =
  | "healthz-p99"
  | "echo-p99"
  | "honest-output"
  | "honest-viewer"
  | "honest-screen"
  | "credential-outlived"
  | "credential-accepted"
  | "rss"
  | "gateway";

export interface HostileAnomaly {
  kind: HostileAnomalyKind;
  detail: string;
}

export function p99(samples: readonly number[]): number {
  if (samples.length === 0) return 0;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
}

/** p99, max and count of one probe's samples in `phase`. */
export function summarize(samples: readonly Sample[], phase: Phase): { p99: number; max: number; n: number } {
  const ms = samples.filter((s) => s.phase === phase).map((s) => s.ms);
  return { p99: p99(ms), max: ms.length === 0 ? 0 : Math.max(...ms), n: ms.length };
}

/** The p99 the hostile phase must stay under, given the honest-only baseline's p99 of the same run. */
export function p99Bound(baselineP99: number): number {
  return Math.max(PROMISED_P99_MS, LOADED_RATIO_MAX * baselineP99);
}

export interface HostileHistory {
  healthz: readonly Sample[];
  /** An honest session's `GET .../screen`: its failures (refused or unanswered in HONEST_TIMEOUT_MS). */
  screenFailures: readonly string[];
  operators: readonly OperatorRecord[];
  /** Each operator session's output as the gateway's log of record has it. */
  recordOutput: ReadonlyMap<string, Buffer>;
  viewers: readonly ViewerRecord[];
  /** The log of record of each session a viewer followed. */
  viewerLogs: readonly FinalLog[];
  credentials: readonly CredentialRecord[];
  rss: { baseline: number; max: number };
  /** What the gateway process did that nobody asked for (exits, `bug` log lines), and whether it answered at the end. */
  gateway: { problems: readonly string[]; aliveAtEnd: boolean };
}

export function checkHostile(h: HostileHistory): HostileAnomaly[] {
  const anomalies: HostileAnomaly[] = [];
  const add = (kind: HostileAnomalyKind, detail: string) => anomalies.push({ kind, detail });

  const echoes = h.operators.flatMap((o) => o.echo);
  for (const [kind, samples] of [
    ["healthz-p99", h.healthz],
    ["echo-p99", echoes],
  ] as const) {
    const hostile = summarize(samples, "hostile");
    const baseline = summarize(samples, "baseline");
    const bound = p99Bound(baseline.p99);
    if (hostile.p99 >= bound)
      add(
        kind,
        `p99 ${hostile.p99.toFixed(1)} ms (max ${hostile.max.toFixed(1)}, n ${hostile.n}) with hostile clients, bound ${bound.toFixed(1)} ms; honest-only p99 ${baseline.p99.toFixed(1)} ms`,
      );
  }

  // Every byte each operator was given exactly once, in order, equal to what it typed and to the log.
  for (const o of h.operators) {
    for (const p of o.problems) add("honest-output", `${o.name}: ${p}`);
    const expected = Buffer.from(o.typed.map((t) => `${t.slice(0, -1)}\r\n`.repeat(2)).join(""), "latin1");
    let at = 0;
    for (const piece of o.output) {
      if (piece.offset !== at) add("honest-output", `${o.name}: bytes at ${piece.offset} after ${at}`);
      at = piece.offset + piece.bytes.length;
    }
    const given = Buffer.concat(o.output.map((p) => p.bytes));
    const record = h.recordOutput.get(o.session);
    if (!given.equals(expected))
      add(
        "honest-output",
        `${o.name}: given ${given.length} bytes, typed ${expected.length}; first difference at ${firstDifference(given, expected)}`,
      );
    if (record !== undefined && !record.equals(expected))
      add(
        "honest-output",
        `${o.name}: the log has ${record.length} bytes, typed ${expected.length}; first difference at ${firstDifference(record, expected)}`,
      );
  }
  for (const f of h.screenFailures) add("honest-screen", f);
  for (const a of check({ ops: [], viewers: h.viewers, logs: h.viewerLogs, streams: [] }))
    add("honest-viewer", `${a.kind}: ${a.detail}`);

  for (const c of h.credentials) {
    const what = `${c.how} (action ${c.action}, answered ${c.status})`;
    for (const conn of c.connections) {
      if (conn.state !== "open") continue;
      if (conn.endedAfterMs === null || conn.endedAfterMs > CUT_WITHIN_MS)
        add(
          "credential-outlived",
          `${what}: ${conn.transport} ${conn.endedAfterMs === null ? "still open" : `closed ${conn.endedAfterMs} ms`} after${conn.note !== undefined ? ` (${conn.note})` : ""}`,
        );
    }
    if (c.whoamiAfter < 400) add("credential-accepted", `${what}: GET /v1/whoami answered ${c.whoamiAfter} after`);
  }

  const growth = h.rss.max - h.rss.baseline;
  if (growth >= RSS_GROWTH_MAX)
    add(
      "rss",
      `grew ${(growth / 2 ** 20).toFixed(0)} MiB over its baseline of ${(h.rss.baseline / 2 ** 20).toFixed(0)} MiB`,
    );
  for (const p of h.gateway.problems) add("gateway", p);
  if (!h.gateway.aliveAtEnd) add("gateway", "GET /healthz went unanswered at the end");
  return anomalies;
}

function firstDifference(a: Buffer, b: Buffer): string {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return `${i}: ${JSON.stringify(a.subarray(i, i + 40).toString("latin1"))} vs ${JSON.stringify(b.subarray(i, i + 40).toString("latin1"))}`;
}
