/**
 * The hostile run's checker and schedule on made-up histories (docs/security.md, "Hostile clients
 * beside honest ones"): each broken promise is reported, a kept one is not, and a seed names one
 * schedule.
 */
import { describe, expect, it } from "vitest";
import { CUT_WITHIN_MS, PROMISED_P99_MS, RSS_GROWTH_MAX, checkHostile, p99Bound } from "./hostile/checker.js";
import type { HostileHistory } from "./hostile/checker.js";
import type { OperatorRecord, Sample } from "./hostile/honest.js";
import { ACTION_MAX_MS, hostileSchedule } from "./hostile/schedule.js";

const samples = (phase: Sample["phase"], ms: number[]): Sample[] => ms.map((m, i) => ({ phase, ms: m, at: i }));

/** An operator that typed `lines` and was given their echo and copy in `pieces` (split anywhere). */
function operator(lines: string[], given = lines.map((l) => `${l}\r\n${l}\r\n`).join("")): OperatorRecord {
  const bytes = Buffer.from(given, "latin1");
  const half = Math.floor(bytes.length / 2);
  return {
    name: "alice",
    session: "s1",
    typed: lines.map((l) => `${l}\r`),
    output: [
      { offset: 0, bytes: bytes.subarray(0, half) },
      { offset: half, bytes: bytes.subarray(half) },
    ],
    echo: samples("hostile", [5, 6, 7]),
    problems: [],
    connections: 1,
  };
}

function history(over: Partial<HostileHistory> = {}): HostileHistory {
  const alice = operator(["alice-0", "alice-1"]);
  return {
    healthz: [...samples("baseline", Array(100).fill(3)), ...samples("hostile", Array(100).fill(4))],
    screenFailures: [],
    operators: [alice],
    recordOutput: new Map([["s1", Buffer.concat(alice.output.map((p) => p.bytes))]]),
    viewers: [],
    viewerLogs: [],
    credentials: [
      {
        action: 1,
        how: "revoke-token",
        status: 200,
        connections: [
          { transport: "v1-ws", state: "open", endedAfterMs: 3 },
          { transport: "download", state: "refused", endedAfterMs: 0 },
        ],
        whoamiAfter: 401,
      },
    ],
    rss: { baseline: 200 * 2 ** 20, max: 300 * 2 ** 20 },
    gateway: { problems: [], aliveAtEnd: true },
    ...over,
  };
}

describe("the hostile run's checker", () => {
  it("finds nothing in a history that keeps every promise", () => {
    expect(checkHostile(history())).toEqual([]);
  });

  it("reports a slow p99 against the promise, or against twice a loaded machine's baseline", () => {
    const slow = samples("hostile", Array(100).fill(PROMISED_P99_MS + 1));
    const quiet = checkHostile(history({ healthz: [...samples("baseline", Array(100).fill(3)), ...slow] }));
    expect(quiet.map((a) => a.kind)).toEqual(["healthz-p99"]);
    // A baseline of 40 ms: 51 ms is within twice it; 81 ms is not.
    expect(p99Bound(40)).toBe(80);
    const loaded = samples("baseline", Array(100).fill(40));
    expect(checkHostile(history({ healthz: [...loaded, ...slow] }))).toEqual([]);
    const slower = samples("hostile", Array(100).fill(81));
    expect(checkHostile(history({ healthz: [...loaded, ...slower] })).map((a) => a.kind)).toEqual(["healthz-p99"]);
  });

  it("reports honest output lost, duplicated or out of order, on the wire or in the log", () => {
    const lost = operator(["alice-0", "alice-1"], "alice-0\r\nalice-0\r\nalice-1\r\n");
    expect(checkHostile(history({ operators: [lost] })).map((a) => a.kind)).toEqual(["honest-output"]);
    const twice = operator(["alice-0"], "alice-0\r\nalice-0\r\nalice-0\r\n");
    expect(checkHostile(history({ operators: [twice] })).map((a) => a.kind)).toContain("honest-output");
    const gap = operator(["alice-0"]);
    gap.output[1]!.offset += 1;
    expect(checkHostile(history({ operators: [gap] }))[0]!.detail).toMatch(/bytes at \d+ after \d+/);
    expect(checkHostile(history({ recordOutput: new Map([["s1", Buffer.from("alice-0\r\n")]]) }))[0]!.detail).toMatch(
      /the log has 9 bytes/,
    );
  });

  it("reports a connection of an ended credential that outlived it, and a credential still accepted", () => {
    const late = history({
      credentials: [
        {
          action: 4,
          how: "sign-out",
          status: 200,
          connections: [
            { transport: "sse", state: "open", endedAfterMs: CUT_WITHIN_MS + 1 },
            { transport: "download", state: "open", endedAfterMs: null },
            { transport: "ws-session", state: "ended-before", endedAfterMs: 0 },
          ],
          whoamiAfter: 200,
        },
      ],
    });
    expect(checkHostile(late).map((a) => `${a.kind}: ${a.detail}`)).toEqual([
      `credential-outlived: sign-out (action 4, answered 200): sse closed ${CUT_WITHIN_MS + 1} ms after`,
      "credential-outlived: sign-out (action 4, answered 200): download still open after",
      "credential-accepted: sign-out (action 4, answered 200): GET /v1/whoami answered 200 after",
    ]);
  });

  it("reports memory growth, an unanswered screen and a gateway that died", () => {
    const found = checkHostile(
      history({
        rss: { baseline: 100 * 2 ** 20, max: 100 * 2 ** 20 + RSS_GROWTH_MAX },
        screenFailures: ["hostile: TimeoutError"],
        gateway: { problems: ["gw exited by itself (SIGABRT)"], aliveAtEnd: false },
      }),
    );
    expect(found.map((a) => a.kind)).toEqual(["honest-screen", "rss", "gateway", "gateway"]);
  });
});

describe("the hostile schedule", () => {
  it("is the same for the same seed, overlaps within the run, and ends inside it", () => {
    const a = hostileSchedule(42, 16_000);
    expect(hostileSchedule(42, 16_000)).toEqual(a);
    expect(hostileSchedule(43, 16_000)).not.toEqual(a);
    expect(a.every((x) => x.at >= 0 && x.at < 16_000 - 2_000)).toBe(true);
    expect(new Set(a.map((x) => x.lane))).toEqual(new Set(["wire", "output", "credentials"]));
    // Actions start closer together than one lasts: they run at once.
    const starts = a.map((x) => x.at);
    expect(starts.some((t, i) => i > 0 && t - starts[i - 1]! < ACTION_MAX_MS)).toBe(true);
  });
});
