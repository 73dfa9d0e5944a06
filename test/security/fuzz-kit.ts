/**
 * What the two live-gateway fuzzers (fuzz.test.ts, schema-fuzz.test.ts) share: one open
 * WebSocket per fuzzing identity and endpoint, and the judging of what came back after a frame.
 */
import { CLOSE_CODES } from "../../src/protocol/index.js";
import type { Gateway } from "../../src/server/gateway.js";
import { createSession } from "../helpers/gateway.js";
import { sleep } from "../helpers/sleep.js";
import { TOKENS, WsClient, http } from "./helpers.js";
import type { Defer, Frame, Who } from "./helpers.js";
import { waitFor } from "../helpers/wait-for.js";

/** Close codes a malformed frame may legitimately cause (docs/protocol.md "Close codes"): invalid UTF-8, too big. */
export const DOCUMENTED_CLOSES: ReadonlySet<number> = new Set([1007, CLOSE_CODES.TOO_BIG]);

/** One open connection per key, reopened after a close. */
export class FuzzConnections {
  private readonly open = new Map<string, WsClient>();

  constructor(
    private readonly gateway: () => Gateway,
    private readonly defer: Defer,
  ) {}

  async get(key: string, path: string, who: Who, ready: (f: Frame) => boolean): Promise<WsClient> {
    const open = this.open.get(key);
    if (open && open.closeCode === undefined) return open;
    const client = await WsClient.open(this.gateway(), path, who, { defer: this.defer });
    await client.waitFor(ready, `${key} ready`);
    this.open.set(key, client);
    return client;
  }

  /** `who`'s `/v1/ws` connection, once it said hello. */
  mux(who: Who): Promise<WsClient> {
    return this.get(`mux-${who}`, "/v1/ws", who, (f) => f["op"] === "hello");
  }

  /** `who`'s `/ws/session` connection to `session`, once connected. */
  terminal(who: Who, session: string): Promise<WsClient> {
    return this.get(`term-${who}`, `/ws/session/${session}`, who, (f) => f["type"] === "connected");
  }

  async closeAll(): Promise<void> {
    for (const c of this.open.values()) await c.close();
  }
}

/** How a fuzzer judges answers: `refusal` each `error` frame, `closed` a close; `fail` throws. */
export interface FrameJudge {
  refusal(code: unknown, message: unknown, where: string): void;
  closed(code: number): void;
  fail(problem: string): never;
}

/** Checks what came back after a frame: errors (judged), kinds in `allowed`, and only a documented close. */
export function checkFrames(
  frames: Frame[],
  closeCode: number | undefined,
  allowed: ReadonlySet<string>,
  tag: "op" | "type",
  where: string,
  judge: FrameJudge,
): void {
  for (const f of frames) {
    const kind = String(f[tag]);
    if (kind === "error") judge.refusal(f["code"], f["message"], where);
    else if (!allowed.has(kind)) judge.fail(`${where}: answered ${JSON.stringify(f).slice(0, 200)}`);
  }
  if (closeCode === undefined) return;
  judge.closed(closeCode);
  if (!DOCUMENTED_CLOSES.has(closeCode)) judge.fail(`${where}: closed with ${closeCode}`);
}

/** The sessions the fuzzers aim at: the admin's and bob's terminals (`cat`), bob's and mallory's stream sessions. */
export interface FuzzTargets {
  adminTerm: string;
  bobTerm: string;
  bobStream: string;
  mallory: string;
}

export async function createTargets(gw: Gateway): Promise<FuzzTargets> {
  return {
    adminTerm: (await createSession(gw, { command: ["cat"], pty: true, name: "admin-term" }, TOKENS.admin)).id,
    bobTerm: (await createSession(gw, { command: ["cat"], pty: true, name: "shared-bob-term" }, TOKENS.bob)).id,
    bobStream: (await createSession(gw, { kind: "stream", name: "shared-bob-stream" }, TOKENS.bob)).id,
    mallory: (await createSession(gw, { kind: "stream", name: "mallory-own" }, TOKENS.mallory)).id,
  };
}

/**
 * Everything a refused input must leave as it was, as the admin reads it: the session list
 * (controllers included; viewer counts left out, fuzzing connections come and go), each log and
 * each output.
 */
export async function stateOf(gw: Gateway): Promise<string> {
  const admin = http(gw, "admin");
  const list = ((await admin.get("/v1/sessions")).json.sessions as Array<{ id: string; viewers?: number }>)
    .map(({ viewers: _viewers, ...rest }) => rest)
    .sort((a, b) => a.id.localeCompare(b.id));
  const logs: string[] = [];
  for (const s of list) {
    logs.push((await admin.get(`/v1/sessions/${s.id}/events?limit=10000`)).text);
    logs.push((await admin.get(`/v1/sessions/${s.id}/output`)).text);
  }
  return JSON.stringify({ list, logs });
}

/** The state once two reads in a row agree and it holds every one of `marks` (PTY echo arrives asynchronously). */
export async function settledState(gw: Gateway, marks: readonly string[]): Promise<string> {
  let last = "";
  await waitFor(
    async () => {
      const now = await stateOf(gw);
      const quiet = now === last && marks.every((m) => now.includes(m));
      last = now;
      if (!quiet) await sleep(100);
      return quiet;
    },
    15_000,
    "quiet logs",
  );
  return last;
}

/** The `{error: {code, message}}` of a refused HTTP request; `fail` when the body is not one. */
export function errorBody(
  text: string,
  status: number,
  where: string,
  fail: (problem: string) => never,
): { code: unknown; message: string } {
  let parsed: { error?: { code?: unknown; message?: unknown } };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    fail(`${where}: ${status} with a body that is not JSON: ${text.slice(0, 100)}`);
  }
  if (typeof parsed.error?.message !== "string") fail(`${where}: error without a message`);
  return { code: parsed.error.code, message: parsed.error.message };
}
