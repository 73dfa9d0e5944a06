// A hostile child process (`node --import tsx actor.ts`): runs one lane of the schedule against
// the gateway. Reads its ActorInput as the first line of stdin, says `ready`, waits for `go`, then
// starts each action at its time; reports each as a JSON line on stdout and exits when all are
// done (or ACTION_MAX_MS after the last one was due).
import { createInterface } from "node:readline";
import { Rng } from "../../cluster/nemesis/workload.js";
import { credentialMidstream } from "./credential-actions.js";
import { bigDownload, frameFlood, hostileEscapes, randomFrames, stalledSubscribe } from "./hostile-actions.js";
import { ACTION_MAX_MS } from "./schedule.js";
import type { HostileAction } from "./schedule.js";
import type { ActorInput, ActorReport } from "./targets.js";

function report(r: ActorReport): void {
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

async function run(input: ActorInput, action: HostileAction): Promise<void> {
  const rng = new Rng(action.seed);
  const started = Date.now();
  const done = (note: string) =>
    report({ type: "action", id: action.id, kind: action.kind, at: started, ms: Date.now() - started, note });
  switch (action.kind) {
    case "random-frames":
      return done(await randomFrames(input, rng, action.seed));
    case "frame-flood":
      return done(await frameFlood(input, rng));
    case "stalled-subscribe":
      return done(await stalledSubscribe(input, rng));
    case "hostile-escapes":
      return done(await hostileEscapes(input, rng));
    case "big-download":
      return done(await bigDownload(input, rng));
    case "sign-out-midstream":
    case "revoke-midstream": {
      const record = await credentialMidstream(input, rng, action.id, action.kind);
      report({ type: "credential", record });
      return done(`${record.how} answered ${record.status}`);
    }
  }
}

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const input = JSON.parse(String((await lines.next()).value)) as ActorInput;
report({ type: "ready" });
await lines.next();
const last = Math.max(0, ...input.actions.map((a) => a.at));
// Bounded whatever an action does: the run goes on without what it did not report.
setTimeout(() => process.exit(0), last + ACTION_MAX_MS).unref();
await Promise.all(
  input.actions.map(async (action) => {
    await new Promise((resolve) => setTimeout(resolve, action.at));
    try {
      await run(input, action);
    } catch (error) {
      report({
        type: "failed",
        id: action.id,
        kind: action.kind,
        error: String((error as Error).stack ?? error).slice(0, 500),
      });
    }
  }),
);
process.exit(0);
