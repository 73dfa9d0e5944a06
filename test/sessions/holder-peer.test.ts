import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { Holders, holderBinary } from "../../src/sessions/holders.js";
import { adoptTerminalProcess, startHeldProcess } from "../../src/sessions/terminal-process.js";
import type { AdoptOptions, TerminalProcess } from "../../src/sessions/terminal-process.js";
import type { SessionEvent } from "../../src/protocol/index.js";
import { createTerminalSession } from "../../src/sessions/terminal-session.js";
import { TEST_ENV } from "./process-helpers.js";
import { api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";

/** The gateway admin token's principal, as a session owner. */
const ADMIN_OWNER = { id: "token:admin", name: "admin" };

/*
 * A holder's socket is a path in DATA_DIR/holders: any process of the gateway's uid may unlink it
 * and bind its own there while no gateway runs. The gateway that adopts the session must take
 * nothing from such a peer, nor give it a byte of input (src/sessions/holder-peer.ts).
 */

const BINARY = holderBinary();
const TEST_MS = 20_000;

let dataDir = "";
let holders: Holders;
const started: TerminalProcess[] = [];

beforeEach(() => {
  if (BINARY === null) throw new Error("build/Release/holder is missing: run npm run build");
  dataDir = mkdtempSync(join(tmpdir(), "switchboard-holder-peer-"));
  holders = new Holders({ dataDir, binary: BINARY, onStop: "keep" });
});

afterEach(() => {
  for (const p of started.splice(0)) p.dispose();
  holders.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/**
 * The impostor, a process of its own: takes the holder's socket path over, says the holder's
 * HELLO with the pids it read from the session's record, offers a fake password prompt as the
 * program's output, and writes down every byte the gateway sends it.
 */
const IMPOSTOR = `
const net = require("net"), fs = require("fs");
const [path, holderPid, childPid, offset, capture] = process.argv.slice(1);
fs.rmSync(path, { force: true });
const frame = (type, payload) => { const h = Buffer.alloc(5); h[0] = type; h.writeUInt32LE(payload.length, 1); return Buffer.concat([h, payload]); };
net.createServer((c) => {
  const hello = Buffer.alloc(32);
  hello.writeUInt16LE(1, 0); hello.writeUInt16LE(1, 2);
  hello.writeUInt32LE(Number(holderPid), 4); hello.writeUInt32LE(Number(childPid), 8);
  hello.writeBigUInt64LE(BigInt(offset), 16); hello.writeBigUInt64LE(BigInt(offset), 24);
  const text = Buffer.from("FAKE sudo password: ");
  const out = Buffer.alloc(9); out.writeBigUInt64LE(BigInt(offset), 1);
  c.write(Buffer.concat([frame(1, hello), frame(2, Buffer.concat([out, text]))]));
  c.on("data", (d) => fs.appendFileSync(capture, d));
  c.on("error", () => {});
}).listen(path, () => console.log("listening"));
`;

function startImpostor(args: { path: string; holderPid: number; childPid: number; offset: number; capture: string }) {
  const child = spawn(
    process.execPath,
    ["-e", IMPOSTOR, args.path, String(args.holderPid), String(args.childPid), String(args.offset), args.capture],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  onTestFinished(() => void child.kill("SIGKILL"));
  return new Promise<void>((resolve, reject) => {
    child.stdout.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`the impostor exited (${code})`)));
  });
}

/** Adopts with `record`; resolves with what the program "said" and why the session was lost. */
function adopt(record: Pick<AdoptOptions, "holderPid" | "holderStart" | "pid" | "startTime" | "resumeFrom">) {
  const output: Buffer[] = [];
  let proc!: TerminalProcess;
  const lost = new Promise<string>((resolve, reject) => {
    proc = adoptTerminalProcess({
      socketPath: holders.socketPath("victim"),
      ...record,
      pty: false,
      onOutput: (_stream, chunk) => output.push(Buffer.from(chunk)),
      onExit: () => reject(new Error("an exit was reported")),
      onLost: resolve,
      onAdopted: () => reject(new Error("the peer was taken for the holder")),
    });
  });
  started.push(proc);
  return { proc, output, lost };
}

describe("a session holder's peer at adoption", () => {
  it(
    "refuses a same-uid process bound on the holder's socket path: none of its output is logged, no input reaches it",
    async () => {
      const first = await startHeldProcess({
        command: ["sh", "-c", "echo ready; read pw; echo got-it"],
        cwd: dataDir,
        env: TEST_ENV,
        pty: false,
        held: { holders, sessionId: "victim" },
        onOutput: () => undefined,
        onExit: () => undefined,
        onLost: () => undefined,
      });
      started.push(first);
      // The gateway stops; while none runs, the impostor takes the socket's path over.
      first.detach();
      const capture = join(dataDir, "captured");
      await startImpostor({
        path: holders.socketPath("victim"),
        holderPid: first.holderPid!,
        childPid: first.pid,
        offset: 0,
        capture,
      });
      const next = adopt({
        holderPid: first.holderPid!,
        holderStart: first.holderStart,
        pid: first.pid,
        startTime: first.startTime,
        resumeFrom: 0,
      });
      // The user types their password at once, as to the prompt they expect.
      next.proc.write("hunter2\n");
      expect(await next.lost).toMatch(
        new RegExp(
          `answered on the holder's socket, not the holder \\(pid ${first.holderPid}\\): it was refused; the program \\(pid ${first.pid}\\) was left running`,
        ),
      );
      await new Promise((r) => setTimeout(r, 200));
      expect(Buffer.concat(next.output).toString()).toBe("");
      let captured = "";
      try {
        captured = readFileSync(capture, "latin1");
      } catch {
        // No file: the impostor was sent nothing at all.
      }
      expect(captured).not.toContain("hunter2");
      expect(captured).toBe("");
    },
    TEST_MS,
  );

  it(
    "refuses the holder's pid when its start time is not the one on record (a later process with the pid)",
    async () => {
      const first = await startHeldProcess({
        command: ["sleep", "30"],
        cwd: dataDir,
        env: TEST_ENV,
        pty: false,
        held: { holders, sessionId: "victim" },
        onOutput: () => undefined,
        onExit: () => undefined,
        onLost: () => undefined,
      });
      started.push(first);
      first.detach();
      expect(first.holderStart).toBeGreaterThan(0);
      const wrong = adopt({
        holderPid: first.holderPid!,
        holderStart: first.holderStart! + 1,
        pid: first.pid,
        startTime: first.startTime,
        resumeFrom: 0,
      });
      expect(await wrong.lost).toMatch(/started at tick \d+, not \d+ as the holder did: it was refused/);
      // A record without a start time cannot be checked: refused too, saying so.
      const unknown = adopt({
        holderPid: first.holderPid!,
        holderStart: null,
        pid: first.pid,
        startTime: first.startTime,
        resumeFrom: 0,
      });
      expect(await unknown.lost).toMatch(/no start time for holder pid \d+ to check it by/);
      // The real holder, checked, is adopted.
      let adopted = false;
      const right = adoptTerminalProcess({
        socketPath: holders.socketPath("victim"),
        holderPid: first.holderPid!,
        holderStart: first.holderStart,
        pid: first.pid,
        startTime: first.startTime,
        resumeFrom: 0,
        pty: false,
        onOutput: () => undefined,
        onExit: () => undefined,
        onLost: () => undefined,
        onAdopted: () => (adopted = true),
      });
      started.push(right);
      await waitFor(() => adopted, 5_000, "the real holder adopted");
    },
    TEST_MS,
  );

  it(
    "marks the session lost at a gateway's start when an impostor holds its socket, with none of its output in the log",
    async () => {
      const config = { sessions: { holders: true, onStop: "keep" as const } };
      const first = await testGateway({ config, dataDir: join(dataDir, "gw") });
      const session = await createTerminalSession(
        first.core.sessions,
        { kind: "terminal", command: ["sh", "-c", "echo ready; read pw; echo got-it"] },
        ADMIN_OWNER,
      );
      const { id, record } = session;
      const outputOf = async (http: ReturnType<typeof api>) => {
        const events = (await http.get(`/v1/sessions/${id}/events?since=0`)).json.events as SessionEvent[];
        return { events, text: events.map((e) => (e.type === "output" ? e.data : "")).join("") };
      };
      await waitFor(async () => (await outputOf(api(first.url))).text === "ready\n", 5_000, "the program's first line");
      await first.close();
      // While no gateway runs, the impostor takes the socket's path over with the record's pids.
      await startImpostor({
        path: join(first.dataDir, "holders", `${id}.sock`),
        holderPid: record.holder!.pid,
        childPid: record.pid!,
        offset: "ready\n".length,
        capture: join(dataDir, "captured"),
      });
      const next = await testGateway({ config, dataDir: first.dataDir });
      const http = api(next.url);
      await waitFor(async () => (await http.get(`/v1/sessions/${id}`)).json.state === "lost", 5_000, "lost");
      const { events, text } = await outputOf(http);
      expect(text).toBe("ready\n");
      const lost = events.find((e) => e.type === "lost");
      expect(JSON.stringify(lost)).toMatch(/answered on the holder's socket, not the holder/);
      // The real holder, its socket taken, ends the program within 2 s.
    },
    TEST_MS,
  );
});
