import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { Holders, holderBinary } from "../../src/sessions/holders.js";
import { procStat } from "../../src/sessions/processes.js";
import { adoptTerminalProcess, startHeldProcess } from "../../src/sessions/terminal-process.js";
import type { TerminalExit } from "../../src/sessions/process-transport.js";
import type { TerminalProcess } from "../../src/sessions/terminal-process.js";
import { TEST_ENV } from "./process-helpers.js";
import { waitFor } from "../helpers/wait-for.js";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

const BINARY = holderBinary();
const TEST_MS = 30_000;

let dataDir = "";
let holders: Holders;
const started: TerminalProcess[] = [];

beforeEach(() => {
  if (BINARY === null) throw new Error("build/Release/holder is missing: run npm run build");
  dataDir = mkdtempSync(join(tmpdir(), "switchboard-holder-"));
  holders = new Holders({ dataDir, binary: BINARY, onStop: "keep" });
});

afterEach(() => {
  for (const p of started.splice(0)) p.dispose();
  holders.close();
  rmSync(dataDir, { recursive: true, force: true });
});

interface Run {
  proc: TerminalProcess;
  out: { stdout: Buffer[]; stderr: Buffer[]; pty: Buffer[] };
  exit: Promise<TerminalExit>;
  lost: Promise<string>;
}

async function held(command: string[], pty: boolean, sessionId: string): Promise<Run> {
  const out = { stdout: [] as Buffer[], stderr: [] as Buffer[], pty: [] as Buffer[] };
  let onExit!: (e: TerminalExit) => void;
  let onLost!: (r: string) => void;
  const exit = new Promise<TerminalExit>((r) => (onExit = r));
  const lost = new Promise<string>((r) => (onLost = r));
  const proc = await startHeldProcess({
    command,
    cwd: dataDir,
    env: TEST_ENV,
    pty,
    held: { holders, sessionId },
    onOutput: (stream, chunk) => out[stream].push(Buffer.from(chunk)),
    onExit,
    onLost,
  });
  started.push(proc);
  return { proc, out, exit, lost };
}

const text = (chunks: Buffer[]) => Buffer.concat(chunks).toString();

/** An actor's JSON, as a session gives it with input written at once. */
const actor = (name: string) => Buffer.from(JSON.stringify({ name, role: "operator" }));

/** A held process whose input is written at once (a 1.2 holder), once its holder said HELLO. */
async function heldRecording(command: string[], sessionId: string): Promise<Run> {
  const run = await held(command, false, sessionId);
  run.proc.recordInputLate({ nextSeq: () => 1, record: () => expect.unreachable("nothing to record at a start") });
  await waitFor(() => run.proc.inputDelivered() === undefined, 10_000, "the holder's HELLO");
  return run;
}

/**
 * `first`'s pipe process adopted by a next gateway whose log had `committedSeq` at its start and
 * appends next at `nextSeq`: what it records (actor name, bytes), its output, its loss if any.
 */
function adoptRecording(
  first: Run,
  sessionId: string,
  log: { resumeFrom: number; committedSeq: number; nextSeq: number },
) {
  const recorded: Array<[string, number]> = [];
  const again: Buffer[] = [];
  let lost: string | undefined;
  const proc = adoptTerminalProcess({
    socketPath: holders.socketPath(sessionId),
    holderPid: first.proc.holderPid!,
    holderStart: first.proc.holderStart,
    pid: first.proc.pid,
    startTime: first.proc.startTime,
    pty: false,
    resumeFrom: log.resumeFrom,
    committedSeq: log.committedSeq,
    onOutput: (_stream, chunk) => again.push(Buffer.from(chunk)),
    onExit: () => undefined,
    onLost: (reason) => (lost = reason),
  });
  started.push(proc);
  proc.recordInputLate({
    nextSeq: () => log.nextSeq,
    record: (inputs) =>
      recorded.push(
        ...inputs.map((i): [string, number] => [
          (JSON.parse(Buffer.from(i.by).toString()) as { name: string }).name,
          i.bytes,
        ]),
      ),
  });
  return { proc, again, recorded, lost: () => lost };
}

describe("session holders", () => {
  it(
    "runs a PTY and a pipe process under a holder: output, input, exit code, stderr apart",
    async () => {
      const pty = await held(["sh", "-c", "read line; echo got:$line; exit 3"], true, "pty1");
      const pipe = await held(["sh", "-c", "cat; echo oops >&2; exit 4"], false, "pipe1");
      expect(pty.proc.holderPid).toBeGreaterThan(0);
      pty.proc.write("hello\r");
      pipe.proc.write("piped\n");
      pipe.proc.endInput();
      expect(await pty.exit).toEqual({ exitCode: 3, signal: null });
      expect(await pipe.exit).toEqual({ exitCode: 4, signal: null });
      expect(text(pty.out.pty)).toContain("got:hello");
      expect(text(pipe.out.stdout)).toBe("piped\n");
      expect(text(pipe.out.stderr)).toBe("oops\n");
      // The holders end once told the exit is on record, and take their sockets with them.
      pty.proc.exitRecorded();
      pipe.proc.exitRecorded();
      await waitFor(
        () => !statSafe(join(holders.dir, "pty1.sock")) && !statSafe(join(holders.dir, "pipe1.sock")),
        10_000,
        "the holders' sockets removed",
      );
    },
    TEST_MS,
  );

  it(
    "adopts a holder told an acknowledgement and a resize before its socket connected: they follow the HELLO",
    async () => {
      // A restored session taken over on demand (a resize, a keystroke) acknowledges its commits
      // and steers at once, while its socket still connects: the holder refuses a first frame that
      // is not HELLO, and the session was lost.
      const first = await held(["sh", "-c", "stty size; read line; stty size; echo got:$line"], true, "early1");
      await waitFor(() => /\d+ \d+/.test(text(first.out.pty)), 10_000, "the first size");
      first.proc.detach();
      const before = Buffer.concat(first.out.pty).length;
      const again: Buffer[] = [];
      let lost: string | undefined;
      const exit = new Promise<TerminalExit>((resolve) => {
        const proc = adoptTerminalProcess({
          socketPath: holders.socketPath("early1"),
          holderPid: first.proc.holderPid!,
          holderStart: first.proc.holderStart,
          pid: first.proc.pid,
          startTime: first.proc.startTime,
          pty: true,
          resumeFrom: before,
          onOutput: (_stream, chunk) => again.push(Buffer.from(chunk)),
          onExit: resolve,
          onLost: (reason) => (lost = reason),
        });
        started.push(proc);
        proc.acknowledge(before);
        proc.resize(91, 33);
        proc.write("early\r");
      });
      await waitFor(() => text(again).includes("got:early") || lost !== undefined, 10_000, "the answer");
      expect(lost).toBeUndefined();
      expect(text(again)).toContain("33 91");
      expect(await exit).toEqual({ exitCode: 0, signal: null });
    },
    TEST_MS,
  );

  it(
    "keeps output while no gateway is connected and resends everything after the offset the next one names",
    async () => {
      const script = "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done; sleep 0.3; echo done";
      const first = await held(["sh", "-c", script], false, "adopt1");
      await waitFor(() => text(first.out.stdout).includes("line-10\n"), 10_000, "some output");
      first.proc.detach();
      const before = Buffer.concat(first.out.stdout);
      // The program runs on while nobody reads; then a second gateway adopts it from where the first stopped.
      await new Promise((r) => setTimeout(r, 500));
      const again: Buffer[] = [];
      const exit = await new Promise<TerminalExit>((resolve, reject) => {
        const proc = adoptTerminalProcess({
          socketPath: holders.socketPath("adopt1"),
          holderPid: first.proc.holderPid!,
          holderStart: first.proc.holderStart,
          pid: first.proc.pid,
          startTime: first.proc.startTime,
          pty: false,
          resumeFrom: before.length,
          onOutput: (_stream, chunk) => again.push(Buffer.from(chunk)),
          onExit: resolve,
          onLost: (reason) => reject(new Error(reason)),
        });
        started.push(proc);
      });
      expect(exit).toEqual({ exitCode: 0, signal: null });
      let expected = "";
      for (let i = 0; i < 3000; i++) expected += `line-${i}\n`;
      expect(Buffer.concat([before, ...again]).toString()).toBe(`${expected}done\n`);
    },
    TEST_MS,
  );

  it(
    "gives input to the program only once its event is committed; the next gateway drops input it has no record of",
    async () => {
      const first = await held(["cat"], false, "input1");
      first.proc.write("one\n", 1);
      await new Promise((r) => setTimeout(r, 300));
      expect(text(first.out.stdout)).toBe("");
      first.proc.commitInput(1);
      await waitFor(() => text(first.out.stdout) === "one\n", 10_000, "input 1 once committed");
      first.proc.write("two\n", 2);
      first.proc.write("three\n", 3);
      first.proc.write("four\n", 4);
      first.proc.commitInput(2);
      await waitFor(() => text(first.out.stdout) === "one\ntwo\n", 10_000, "input 2 once committed");
      // The gateway dies: seq 3 reached its log, seq 4 did not, and the holder was told neither.
      first.proc.detach();
      const before = Buffer.concat(first.out.stdout);
      const again: Buffer[] = [];
      const exit = new Promise<TerminalExit>((resolve, reject) => {
        const proc = adoptTerminalProcess({
          socketPath: holders.socketPath("input1"),
          holderPid: first.proc.holderPid!,
          holderStart: first.proc.holderStart,
          pid: first.proc.pid,
          startTime: first.proc.startTime,
          pty: false,
          resumeFrom: before.length,
          committedSeq: 3,
          onOutput: (_stream, chunk) => again.push(Buffer.from(chunk)),
          onExit: resolve,
          onLost: (reason) => reject(new Error(reason)),
          // The next gateway's seq 4 is another event: its input goes, the dead gateway's does not.
          onAdopted: () => {
            proc.write("five\n", 4);
            proc.endInput(4);
            proc.commitInput(4);
          },
        });
        started.push(proc);
      });
      expect(await exit).toEqual({ exitCode: 0, signal: null });
      expect(Buffer.concat([before, ...again]).toString()).toBe("one\ntwo\nthree\nfive\n");
    },
    TEST_MS,
  );

  it(
    "writes input at once and keeps its record until committed; each next gateway appends the records no gateway committed, once",
    async () => {
      const first = await heldRecording(["cat"], "late1");
      // Written before any commit: the holder keeps the record instead of the input.
      expect(first.proc.write("one\n", 1, actor("ann"))).toBe(true);
      await waitFor(() => text(first.out.stdout) === "one\n", 10_000, "input 1 before its commit");
      first.proc.commitInput(1);
      expect(first.proc.write("two\n", 2, actor("bob"))).toBe(true);
      expect(first.proc.write("three\n", 3, actor("cy"))).toBe(true);
      first.proc.commitInput(2);
      await waitFor(() => text(first.out.stdout) === "one\ntwo\nthree\n", 10_000, "inputs 2 and 3");
      // The gateway dies with seq 3 not in its log: the holder still keeps its record.
      first.proc.detach();
      let output = Buffer.concat(first.out.stdout).length;

      // Adopted by gateways whose logs had `committedSeq` when they started; each records what
      // it is told at `nextSeq` and dies (detach) before or after committing it.
      const adopt = async (name: string, committedSeq: number, nextSeq: number) => {
        const next = adoptRecording(first, "late1", { resumeFrom: output, committedSeq, nextSeq });
        // Given before the holder's HELLO, it goes after the records that HELLO reported were taken.
        next.proc.write(`${name}\n`);
        await waitFor(() => text(next.again) === `${name}\n` || next.lost() !== undefined, 10_000, `${name}'s echo`);
        expect(next.lost()).toBeUndefined();
        output += Buffer.concat(next.again).length;
        return next;
      };

      // Gateway 2 appends seq 3's input at its seq 10 and dies before that commit.
      const second = await adopt("g2", 2, 10);
      expect(second.recorded).toEqual([["cy", 6]]);
      second.proc.detach();
      // Gateway 3's log lacks seq 10: told again, appended at its seq 12, committed, and it dies
      // before telling the holder.
      const third = await adopt("g3", 9, 12);
      expect(third.recorded).toEqual([["cy", 6]]);
      third.proc.detach();
      // Gateway 4's log has seq 12: the record was placed there, so it is not appended twice.
      const fourth = await adopt("g4", 12, 13);
      expect(fourth.recorded).toEqual([]);
      expect(fourth.proc.write("four\n", 13, actor("dee"))).toBe(true);
      await waitFor(() => text(fourth.again) === "g4\nfour\n", 10_000, "input 13 before its commit");
      fourth.proc.commitInput(13);
    },
    TEST_MS,
  );

  it(
    "releases input a take-over was given and committed before the HELLO of a holder that reports records, and writes at once after it",
    async () => {
      const first = await heldRecording(["cat"], "late2");
      expect(first.proc.write("one\n", 1, actor("ann"))).toBe(true);
      await waitFor(() => text(first.out.stdout) === "one\n", 10_000, "input 1");
      // The gateway dies before seq 1 is committed: its record is reported to the next one.
      first.proc.detach();
      const next = adoptRecording(first, "late2", { resumeFrom: 4, committedSeq: 0, nextSeq: 3 });
      // A take-over on demand: given (held, seq 2) and committed before the holder's HELLO.
      expect(next.proc.write("two\n", 2, actor("bob"))).toBe(false);
      next.proc.commitInput(2);
      await waitFor(() => text(next.again) === "two\n" || next.lost() !== undefined, 10_000, "input 2 released");
      expect({ lost: next.lost(), recorded: next.recorded }).toEqual({ lost: undefined, recorded: [["ann", 4]] });
      // Nothing held is left: the next key is written at once (a holder still holding seq 2 refuses it).
      expect(next.proc.write("three\n", 4, actor("cy"))).toBe(true);
      await waitFor(() => text(next.again) === "two\nthree\n" || next.lost() !== undefined, 10_000, "input 4 at once");
      expect(next.lost()).toBeUndefined();
    },
    TEST_MS,
  );

  it(
    "counts the output its holder keeps until it is acknowledged (held bytes), from the HELLO of an adopting gateway on",
    async () => {
      const first = await held(["sh", "-c", "echo 12345; read x; echo 6789; read y"], false, "heldbytes");
      await waitFor(() => text(first.out.stdout) === "12345\n", 10_000, "the first line");
      expect(first.proc.heldBytes).toBe(6);
      first.proc.acknowledge(6);
      expect(first.proc.heldBytes).toBe(0);
      first.proc.write("x\n", 1);
      first.proc.commitInput(1);
      await waitFor(() => text(first.out.stdout) === "12345\n6789\n", 10_000, "the second line");
      first.proc.detach();
      expect(first.proc.heldBytes).toBe(0);
      // The next gateway has only the first line on record: the holder still keeps the second.
      const proc = adoptTerminalProcess({
        socketPath: holders.socketPath("heldbytes"),
        holderPid: first.proc.holderPid!,
        holderStart: first.proc.holderStart,
        pid: first.proc.pid,
        startTime: first.proc.startTime,
        pty: false,
        resumeFrom: 6,
        committedSeq: 1,
        onOutput: () => undefined,
        onExit: () => undefined,
        onLost: () => undefined,
      });
      started.push(proc);
      await waitFor(() => proc.heldBytes === 5, 10_000, "the second line held");
      proc.acknowledge(11);
      expect(proc.heldBytes).toBe(0);
    },
    TEST_MS,
  );

  it(
    "ends only its session, lost with a reason, when its holder is killed (kill -9)",
    async () => {
      const victim = await held(["sh", "-c", "while :; do sleep 1; done"], true, "victim");
      const bystander = await held(["sh", "-c", "read x; echo still-here"], true, "bystander");
      process.kill(victim.proc.holderPid!, "SIGKILL");
      expect(await victim.lost).toMatch(/its holder \(pid \d+\) ended without the program's exit.*killed/);
      // Its program does not linger, nobody can steer it.
      await waitFor(() => !alive(victim.proc.pid), 10_000, "the program gone");
      bystander.proc.write("x\r");
      await waitFor(() => text(bystander.out.pty).includes("still-here"), 10_000, "the other session unharmed");
    },
    TEST_MS,
  );

  it(
    "adopts a holder of a newer minor protocol version, and leaves one of another major running, saying so",
    async () => {
      const build = (name: string, flags: string[]) => {
        const out = join(dataDir, name);
        execFileSync("cc", ["-O2", ...flags, "-o", out, join(REPO, "native", "holder.c")]);
        return out;
      };
      const adoptWith = async (binary: string, sessionId: string) => {
        const older = new Holders({ dataDir, binary, onStop: "keep" });
        onTestFinished(() => older.close());
        const first = await startHeldProcess({
          command: ["sh", "-c", "echo before; read x; echo after-$x"],
          cwd: dataDir,
          env: TEST_ENV,
          pty: false,
          held: { holders: older, sessionId },
          onOutput: () => undefined,
          onExit: () => undefined,
        });
        first.detach();
        const out: Buffer[] = [];
        return new Promise<{ exit?: TerminalExit; lost?: string; out: string; proc: TerminalProcess }>((resolve) => {
          const proc = adoptTerminalProcess({
            socketPath: holders.socketPath(sessionId),
            holderPid: first.holderPid!,
            holderStart: first.holderStart,
            pid: first.pid,
            startTime: first.startTime,
            pty: false,
            resumeFrom: 0,
            onOutput: (_s, chunk) => out.push(Buffer.from(chunk)),
            onExit: (exit) => resolve({ exit, out: text(out), proc }),
            onLost: (lost) => resolve({ lost, out: text(out), proc }),
            onAdopted: () => proc.write("x\n"),
          });
          started.push(proc);
        });
      };
      const newer = await adoptWith(build("holder-1.7", ["-DPROTO_MINOR=7"]), "minor");
      expect(newer).toMatchObject({ exit: { exitCode: 0, signal: null }, out: "before\nafter-x\n" });
      // A 1.0 holder does not hold input: it gets plain INPUT frames.
      const older = await adoptWith(build("holder-1.0", ["-DPROTO_MINOR=0"]), "older");
      expect(older).toMatchObject({ exit: { exitCode: 0, signal: null }, out: "before\nafter-x\n" });
      const other = await adoptWith(build("holder-2.0", ["-DPROTO_MAJOR=2", "-DPROTO_MINOR=0"]), "major");
      expect(other.lost).toMatch(
        /speaks protocol 2\.0 and this gateway 1\.x: the program \(pid \d+\) was left running; .*kill \d+/,
      );
      expect(alive(other.proc.pid)).toBe(true);
      process.kill(-other.proc.pid, "SIGKILL");
    },
    TEST_MS,
  );

  it(
    "keeps its socket to the owner (0700 directory, 0600 socket) and hangs up on another uid (SO_PEERCRED)",
    async () => {
      // Outside the test run's private TMPDIR, so that another uid can be let in below.
      const open = mkdtempSync("/tmp/switchboard-holder-peer-");
      onTestFinished(() => rmSync(open, { recursive: true, force: true }));
      const own = new Holders({ dataDir: open, binary: BINARY!, onStop: "keep" });
      onTestFinished(() => own.close());
      const proc = await startHeldProcess({
        command: ["sleep", "30"],
        cwd: open,
        env: TEST_ENV,
        pty: false,
        held: { holders: own, sessionId: "private" },
        onOutput: () => undefined,
        onExit: () => undefined,
        onLost: () => undefined,
      });
      started.push(proc);
      const socket = join(own.dir, "private.sock");
      expect(statSync(own.dir).mode & 0o777).toBe(0o700);
      expect(statSync(socket).mode & 0o777).toBe(0o600);
      if (process.getuid?.() !== 0) return;
      // Opened up on purpose: the uid check alone must refuse the stranger.
      execFileSync("chmod", ["0755", open, own.dir]);
      execFileSync("chmod", ["0666", socket]);
      const probe =
        "const s=require('net').createConnection(process.argv[1]);let n=0;" +
        "s.on('data',d=>n+=d.length);s.on('close',()=>{console.log('bytes:'+n)});s.on('error',e=>console.log('error:'+e.code))";
      const answer = execFileSync(
        "setpriv",
        ["--reuid=65534", "--regid=65534", "--clear-groups", "node", "-e", probe, socket],
        {
          encoding: "utf8",
          timeout: 10_000,
        },
      );
      expect(answer.trim()).toBe("bytes:0");
      // The owner still gets the holder's HELLO.
      const hello = await new Promise<number>((resolve) => {
        const s = createConnection(socket);
        s.once("data", (d: Buffer) => {
          resolve(d[0]!);
          s.destroy();
        });
      });
      expect(hello).toBe(1);
    },
    TEST_MS,
  );
});

function statSafe(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Running (a zombie nobody reaped yet counts as gone). */
function alive(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== null && stat[0] !== "Z";
}
