import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpClient, connect } from "../../src/client/node.js";
import { TEST_ENV, startTestGateway } from "../client/helpers.js";
import type { TestGateway } from "../client/helpers.js";
import { CLI, Tmux, shellQuote } from "./helpers.js";

let gw: TestGateway;
let http: HttpClient;
const terminals: Tmux[] = [];
const attachCmd = (args: string) => `${CLI.map(shellQuote).join(" ")} attach ${args}`;

beforeAll(async () => {
  gw = await startTestGateway();
  http = new HttpClient({ url: gw.url, token: gw.token });
});
afterAll(async () => {
  await gw.close();
});
afterAll(() => {
  for (const t of terminals.splice(0)) t.kill();
});

/** A tmux server of its own per test: the tests run concurrently (they wait on processes, not CPU). */
function startTmux(): Tmux {
  const tmux = new Tmux({ SWITCHBOARD_URL: gw.url, SWITCHBOARD_TOKEN: gw.token });
  terminals.push(tmux);
  tmux.start();
  return tmux;
}

async function bash(): Promise<string> {
  const session = await http.createSession({
    command: ["bash", "--norc", "--noprofile"],
    pty: true,
    cols: 100,
    rows: 20,
    env: { ...TEST_ENV, PS1: "remote$ " },
  });
  return session.id;
}

/** The local terminal is back in cooked mode with echo: what a shell needs after attach. */
async function expectRestored(t: Tmux): Promise<void> {
  const modes = await t.run("stty -a | tr ' ' '\\n' | grep -x -- '-\\?icanon\\|-\\?echo\\|-\\?isig'");
  expect(modes.split(/\s+/).sort()).toEqual(["echo", "icanon", "isig"]);
}

describe.concurrent("switchboard attach, driven through tmux", () => {
  it("replays the screen, forwards keys, detaches with Ctrl-], and re-attaches to the same screen", async () => {
    const id = await bash();
    await http.input(id, "echo before-$((2+3))\r");
    const t = startTmux();
    await t.waitFor(/local\$/);
    t.type(attachCmd(`-- ${id}`));
    // The screen comes back: output produced before attach is replayed.
    await t.waitFor(/^before-5$/m);
    t.type("echo typed-$((6*7)); stty size");
    await t.waitFor(/^typed-42\n20 100$/m);
    t.keys("C-]");
    await t.waitFor(/\[detached from /);
    expect(await t.exitStatus()).toBe(0);
    await expectRestored(t);

    // Still running; attach again: the same screen, keys still go through.
    t.clear();
    await t.waitFor(/^local\$\s*$/);
    t.type(attachCmd(`-- ${id}`));
    await t.waitFor(/^typed-42$/m);
    t.type("exit 5");
    await t.waitFor(/\[session \S+ exited with code 5\]/);
    expect(await t.exitStatus()).toBe(5);
    await expectRestored(t);
  }, 45_000);

  it("sends the local size on start and when the local terminal is resized", async () => {
    const id = await bash();
    const t = startTmux();
    await t.waitFor(/local\$/);
    t.type(attachCmd(`-- ${id}`));
    await t.waitFor(/remote\$/);
    t.type("stty size");
    await t.waitFor(/^20 100$/m);
    t.resize(80, 15);
    await expect.poll(async () => (await http.getSession(id)).cols, { timeout: 5_000 }).toBe(80);
    t.type("clear; stty size");
    await t.waitFor(/^15 80$/m);
    t.keys("C-]");
    await t.waitFor(/\[detached from /);
    await http.deleteSession(id);
  }, 30_000);

  it("says so when someone else holds control, watches read-only, and types once control is free", async () => {
    const id = await bash();
    const holder = await connect({ url: gw.url, token: gw.token });
    try {
      await holder.control(id, "acquire");
      const t = startTmux();
      await t.waitFor(/local\$/);
      t.type(attachCmd(`-- ${id}`));
      await t.waitFor(/held by admin.*watching read-only/s);
      t.type("echo should-not-run");
      await t.waitFor(/keys are not sent/);
      // The holder types: the attached terminal shows it.
      await holder.input(id, "echo from-holder\r");
      await t.waitFor(/^from-holder$/m);
      expect(t.screen()).not.toMatch(/^should-not-run$/m);
      // Control released: keys typed from now on go through.
      await holder.control(id, "release");
      t.keys("C-u");
      t.type("echo now-$((1+1))");
      await t.waitFor(/^now-2$/m);
      t.keys("C-]");
      await t.waitFor(/\[detached from /);
      await expectRestored(t);
    } finally {
      holder.close();
      await http.deleteSession(id);
    }
  }, 30_000);

  it("--read-only never sends keys", async () => {
    const id = await bash();
    const t = startTmux();
    await t.waitFor(/local\$/);
    t.type(attachCmd(`--read-only -- ${id}`));
    await t.waitFor(/remote\$/);
    t.type("echo should-not-run");
    await t.waitFor(/read-only: keys are not sent/);
    await http.input(id, "echo visible\r");
    await t.waitFor(/^visible$/m);
    expect(t.screen()).not.toMatch(/^should-not-run$/m);
    t.keys("C-]");
    await t.waitFor(/\[detached from /);
    await http.deleteSession(id);
  }, 30_000);

  it("restores the terminal when killed by a signal (modes the program set included), and exits 128+N", async () => {
    const id = await bash();
    // A full-screen program: alternate screen, hidden cursor, mouse reporting.
    await http.input(id, "printf '\\033[?1049h\\033[?25l\\033[?1000h'; echo full-screen\r");
    const t = startTmux();
    await t.waitFor(/local\$/);
    expect(t.modes()).toEqual({ alternate: false, cursor: true, mouse: false });
    t.type(attachCmd(`-- ${id}`));
    await t.waitFor(/^full-screen$/m);
    expect(t.modes()).toEqual({ alternate: true, cursor: false, mouse: true });
    // The attach process is the child of the pane's shell (started by this test).
    const attachPid = Number(
      execFileSync("ps", ["-o", "pid=", "--ppid", String(t.panePid())], { encoding: "utf8" })
        .trim()
        .split(/\s+/)[0],
    );
    expect(attachPid).toBeGreaterThan(0);
    process.kill(attachPid, "SIGTERM");
    await t.waitFor(/SIGTERM; the session keeps running/);
    expect(await t.exitStatus()).toBe(143);
    await expectRestored(t);
    expect(t.modes()).toEqual({ alternate: false, cursor: true, mouse: false });
    expect((await http.getSession(id)).state).toBe("running");
    await http.deleteSession(id);
  }, 30_000);

  it("run --attach on a pipe session: Enter sends a line, Ctrl-C interrupts, the exit code comes back", async () => {
    const t = startTmux();
    await t.waitFor(/local\$/);
    const run = `${CLI.map(shellQuote).join(" ")} run --attach -- sh -c ${shellQuote("echo ready; read line; echo got:$line; sleep 30")}`;
    t.type(run);
    await t.waitFor(/^ready$/m);
    t.type("hello");
    await t.waitFor(/^got:hello$/m);
    t.keys("C-c");
    await t.waitFor(/\[session \S+ was killed by SIGINT\]/);
    expect(await t.exitStatus()).toBe(130);
    await expectRestored(t);
  }, 30_000);
});
