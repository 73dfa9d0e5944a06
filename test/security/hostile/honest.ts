// The honest clients of a hostile run, in the test's own process (the gateway and the hostile
// clients run in children): operators typing lines into their PTY `cat`, timing each keystroke
// echo and keeping every byte their `/ws/session` gives them, and a `/healthz` probe. Each
// latency is tagged with the run's phase, so the checker compares the honest-only baseline
// with the hostile phase of the same run.
import WebSocket from "ws";
import { sleep } from "../../cluster/nemesis/workload.js";

/**
 * The phases of a run: honest clients warming up (connections, the JIT; not judged), alone (the
 * baseline), beside the hostile ones, then draining (not judged).
 */
export type Phase = "warmup" | "baseline" | "hostile" | "drain";

export interface Sample {
  phase: Phase;
  ms: number;
  /** When it was sent (ms since the epoch), to tell which hostile actions ran meanwhile. */
  at: number;
}

/** An honest probe's pause between an answer and its next request. */
export const PROBE_GAP_MS = 10;
/** How long an honest client waits for an answer or its echo before it records it as lost. */
export const HONEST_TIMEOUT_MS = 10_000;
/** An operator reconnects (resuming at its offset) at most this often before it gives up. */
const RECONNECTS_MAX = 10;

/** What one operator typed and was given. */
export interface OperatorRecord {
  name: string;
  session: string;
  /** The lines typed, in order (each ends in "\r"). */
  typed: string[];
  /** Output bytes by offset, in the order given, across its connections. */
  output: Array<{ offset: number; bytes: Buffer }>;
  echo: Sample[];
  /** Broken promises seen on the wire: a frame at the wrong offset, an echo that never came. */
  problems: string[];
  connections: number;
}

/** Samples `GET /healthz` until `stopped`; a request that fails counts as HONEST_TIMEOUT_MS. */
export async function probeHealthz(url: string, phase: () => Phase, stopped: () => boolean): Promise<Sample[]> {
  const samples: Sample[] = [];
  while (!stopped()) {
    const now = phase();
    const at = Date.now();
    const sent = performance.now();
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(HONEST_TIMEOUT_MS) });
      await res.arrayBuffer();
      samples.push({ phase: now, at, ms: res.status === 200 ? performance.now() - sent : HONEST_TIMEOUT_MS });
    } catch {
      // Not answered in time (or refused): as slow as it gets.
      samples.push({ phase: now, at, ms: HONEST_TIMEOUT_MS });
    }
    await sleep(PROBE_GAP_MS);
  }
  return samples;
}

/** The honest screen probe's pause between an answer and its next request. */
export const SCREEN_GAP_MS = 250;

/**
 * Samples `GET .../screen` of an honest session until `stopped`: the screen thread is shared by
 * every session, so a hostile session's output must not take an honest one's screen with it.
 * A refusal or no answer in HONEST_TIMEOUT_MS counts as HONEST_TIMEOUT_MS, with its reason kept.
 */
export async function probeScreen(o: {
  url: string;
  token: string;
  session: string;
  phase: () => Phase;
  stopped: () => boolean;
}): Promise<{ samples: Sample[]; failures: string[] }> {
  const samples: Sample[] = [];
  const failures: string[] = [];
  while (!o.stopped()) {
    const phase = o.phase();
    const at = Date.now();
    const sent = performance.now();
    try {
      const res = await fetch(`${o.url}/v1/sessions/${o.session}/screen?format=text`, {
        headers: { authorization: `Bearer ${o.token}` },
        signal: AbortSignal.timeout(HONEST_TIMEOUT_MS),
      });
      const body = await res.text();
      if (res.status !== 200) failures.push(`${phase}: answered ${res.status} ${body.slice(0, 200)}`);
      samples.push({ phase, at, ms: res.status === 200 ? performance.now() - sent : HONEST_TIMEOUT_MS });
    } catch (error) {
      failures.push(`${phase}: ${(error as Error).name}`);
      samples.push({ phase, at, ms: HONEST_TIMEOUT_MS });
    }
    await sleep(SCREEN_GAP_MS);
  }
  return { samples, failures };
}

/** One `/ws/session` connection of an operator from its current offset; resolves once it said `connected`. */
function connect(url: string, token: string, o: OperatorRecord, wake: () => void): Promise<WebSocket | undefined> {
  const last = o.output.at(-1);
  const since = last === undefined ? 0 : last.offset + last.bytes.length;
  let at = since;
  o.connections++;
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/ws/session/${o.session}?since=${since}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  ws.on("error", () => undefined);
  return new Promise((resolve) => {
    ws.on("message", (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as Record<string, unknown>;
      if (frame["type"] === "connected") resolve(ws);
      if (frame["type"] !== "replay" && frame["type"] !== "stdout") return;
      const bytes = Buffer.from(frame["data"] as string, frame["enc"] === "base64" ? "base64" : "utf8");
      // A replay frame's offset is the byte after its data.
      const offset =
        frame["type"] === "replay" ? (frame["offset"] as number) - bytes.length : (frame["offset"] as number);
      if (offset !== at) o.problems.push(`output frame at ${offset}, the operator is at ${at}`);
      o.output.push({ offset, bytes });
      at = offset + bytes.length;
      wake();
    });
    ws.once("close", () => {
      resolve(undefined);
      wake();
    });
  });
}

/**
 * An operator: types `<name>-<n>` lines into its PTY `cat` until `stopped`, one at a time; each
 * line's echo is timed from its send to the first frame holding it, and the next line waits for
 * `cat`'s copy too, so the session's whole output is known: each line twice, "\r\n" after each.
 */
export async function runOperator(o: {
  url: string;
  token: string;
  record: OperatorRecord;
  phase: () => Phase;
  stopped: () => boolean;
}): Promise<void> {
  const r = o.record;
  let ws: WebSocket | undefined;
  let waiting: (() => void) | undefined;
  const wake = () => waiting?.();
  const text = () => Buffer.concat(r.output.map((p) => p.bytes)).toString("latin1");
  /** Resolves when `done()` holds, reconnecting (resuming at its offset) whenever the socket closed; false after `ms`. */
  const until = async (done: () => boolean, ms: number): Promise<boolean> => {
    const deadline = performance.now() + ms;
    while (!done()) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      if (ws === undefined || ws.readyState !== ws.OPEN) {
        if (r.connections >= RECONNECTS_MAX) return false;
        ws = await connect(o.url, o.token, r, wake);
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return true;
  };
  for (let n = 0; !o.stopped(); n++) {
    if (!(await until(() => ws?.readyState === WebSocket.OPEN, HONEST_TIMEOUT_MS))) {
      r.problems.push(`no connection after ${r.connections} tries`);
      break;
    }
    const line = `${r.name}-${n}`;
    const from = text().length;
    const phase = o.phase();
    const at = Date.now();
    const sent = performance.now();
    ws!.send(JSON.stringify({ type: "stdin", data: `${line}\r` }));
    r.typed.push(`${line}\r`);
    const echoed = await until(() => text().includes(line, from), HONEST_TIMEOUT_MS);
    r.echo.push({ phase, at, ms: echoed ? performance.now() - sent : HONEST_TIMEOUT_MS });
    const copied = await until(() => text().includes(`${line}\r\n${line}\r\n`, from), HONEST_TIMEOUT_MS);
    if (!copied) {
      r.problems.push(`no echo and copy of ${line} within ${HONEST_TIMEOUT_MS} ms`);
      break;
    }
    await sleep(PROBE_GAP_MS);
  }
  ws?.terminate();
}
