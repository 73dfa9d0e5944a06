import type { ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpClient, connect } from "../../src/client/node.js";
import { FaultProxy, TEST_ENV, startTestGateway } from "../client/helpers.js";
import type { TestGateway } from "../client/helpers.js";
import { spawnCli } from "./helpers.js";
import type { RunningCli } from "./helpers.js";
import { sleep } from "../helpers/sleep.js";
import { waitFor } from "../helpers/wait-for.js";

let gw: TestGateway;
let http: HttpClient;
const children: ChildProcess[] = [];

beforeAll(async () => {
  gw = await startTestGateway();
  http = new HttpClient({ url: gw.url, token: gw.token });
});
afterAll(async () => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
  await gw.close();
});

/** `switchboard attach ID` with its stdin and stdout on pipes, as in `printf ... | switchboard attach ID`. */
function pipedAttach(id: string): RunningCli {
  const run = spawnCli(["attach", id], { SWITCHBOARD_URL: gw.url, SWITCHBOARD_TOKEN: gw.token });
  children.push(run.child);
  return run;
}

function within(exit: Promise<number | null>, ms: number): Promise<number | null | "still running"> {
  return Promise.race([exit, new Promise<"still running">((r) => setTimeout(() => r("still running"), ms))]);
}

describe.concurrent("switchboard attach with input on a pipe", () => {
  // Regression (CLI exploratory pass): keys that came before the connection was up (piped in,
  // or pasted right after starting attach) were dropped with "not connected: keys dropped", and
  // attach then waited forever for a session that never got its input.
  it("sends keys that arrive before the connection is up, instead of dropping them", async () => {
    const sh = await http.createSession({ command: ["sh"], env: TEST_ENV });
    const attached = pipedAttach(sh.id);
    attached.child.stdin!.end("echo piped-$((2+3))\nexit 5\n");
    expect(await within(attached.exit, 25_000)).toBe(5);
    expect(attached.stdout()).toBe("piped-5\n");
    expect(attached.stderr()).not.toMatch(/dropped/);
    expect(attached.stderr()).toMatch(/\[session \S+ exited with code 5\]\n$/);
  }, 40_000);

  // Regression (CLI exploratory pass): a chunk of stdin over the gateway's 64 KiB per message
  // (a pipe delivers 64 KiB at a time; with a character cut at a chunk's edge, its text is a
  // little more) was refused whole, and that input was lost.
  it("sends input bigger than the gateway takes in one message, in pieces, losing nothing", async ({ expect }) => {
    const bytes = 300_000;
    const wc = await http.createSession({ command: ["sh", "-c", `head -c ${bytes} | wc -c`], env: TEST_ENV });
    const attached = pipedAttach(wc.id);
    await waitFor(async () => (await http.getSession(wc.id)).controller !== null, 20_000);
    // "✓" is 3 bytes: the pipe's 64 KiB chunks cut characters, so the decoded text runs over.
    attached.child.stdin!.write("✓".repeat(bytes / 3));
    expect(await within(attached.exit, 25_000)).toBe(0);
    expect(attached.stdout().trim()).toBe(String(bytes));
    expect(attached.stderr()).not.toMatch(/PAYLOAD_TOO_LARGE|dropped/);
  }, 40_000);
});

describe("switchboard attach with input on a pipe that ends", () => {
  // Regression: `printf ... | switchboard attach ID` on a pipe session did not pass on the end
  // of its input, so `sort` (or `wc`, `cat`) waited for more and attach never returned.
  it("ends a pipe session's input, so a program that reads to the end finishes", async () => {
    const sort = await http.createSession({ command: ["sort"], env: TEST_ENV });
    const attached = pipedAttach(sort.id);
    attached.child.stdin!.end("pear\napple\nfig\n");
    expect(await within(attached.exit, 25_000)).toBe(0);
    expect(attached.stdout()).toBe("apple\nfig\npear\n");
    expect(attached.stderr()).toMatch(/\[session \S+ exited with code 0\]\n$/);
  }, 40_000);

  it("leaves a PTY session's input open (Ctrl-D would end a shell)", async () => {
    const cat = await http.createSession({ command: ["cat"], pty: true, env: TEST_ENV });
    const attached = pipedAttach(cat.id);
    attached.child.stdin!.end("typed\n");
    await waitFor(() => attached.stdout().includes("typed"), 20_000);
    expect(await within(attached.exit, 1500)).toBe("still running");
    expect((await http.getSession(cat.id)).state).toBe("running");
    await http.deleteSession(cat.id);
    expect(await within(attached.exit, 20_000)).not.toBe("still running");
  }, 40_000);
});

describe("switchboard attach on an agent session", () => {
  // Regression (exploratory testing): an agent's answers are events, not terminal output, and
  // attach showed an empty screen, without a word, until the session ended.
  it("says that it shows nothing and where the conversation is, then ends with the session", async () => {
    const agent = await http.createSession({ kind: "agent", agent: { adapter: "echo" } });
    const attached = pipedAttach(agent.id);
    await waitFor(
      () =>
        attached
          .stderr()
          .includes(`${agent.id} is an agent session: it prints nothing here; "switchboard logs -f ${agent.id}"`),
      20_000,
    );
    await http.deleteSession(agent.id);
    expect(await within(attached.exit, 20_000)).toBe(0);
    expect(attached.stdout()).toBe("");
    expect(attached.stderr()).toMatch(/\[session \S+ ended\]\n$/);
  }, 40_000);
});

// Found by a terminal re-check: attaches that had lost control passed their terminals' answers
// to the program's queries on as keys once control was free (vim answered twice, the PTY
// resized to each of them in turn).
describe("switchboard attach without control", () => {
  it("does not pass its terminal's own answers on, but does once it types while control is free", async () => {
    const cat = await http.createSession({ command: ["cat"], env: TEST_ENV });
    const holder = await connect({ url: gw.url, token: gw.token });
    try {
      await holder.control(cat.id, "acquire");
      const attached = pipedAttach(cat.id);
      await waitFor(() => attached.stderr().includes("held by"), 20_000);
      await holder.control(cat.id, "release");
      const inputs = async () => (await http.events(cat.id, { types: ["input"] })).events.length;
      attached.child.stdin!.write("\x1b[3;3R");
      await sleep(1_000);
      expect(await inputs()).toBe(0);
      attached.child.stdin!.write("typed\n");
      await waitFor(() => attached.stdout().includes("typed\n"), 10_000);
      // Typing while control is free makes it steer: its terminal's answers go now.
      attached.child.stdin!.write("\x1b[5;5R");
      await waitFor(async () => (await inputs()) === 2, 10_000);
      attached.child.kill("SIGTERM");
    } finally {
      holder.close();
      await http.deleteSession(cat.id);
    }
  }, 60_000);
});

// Found by a terminal user: Ctrl-] could never reach the session (vim jumps to tags with it).
describe("switchboard attach with another detach key", () => {
  it("detaches with the key --detach-key (or SWITCHBOARD_DETACH_KEY) names, and sends Ctrl-] on", async () => {
    const od = await http.createSession({ command: ["sh", "-c", "head -c 3 | od -An -tx1"], env: TEST_ENV });
    const typed = spawnCli(["attach", od.id], {
      SWITCHBOARD_URL: gw.url,
      SWITCHBOARD_TOKEN: gw.token,
      SWITCHBOARD_DETACH_KEY: "ctrl-q",
    });
    children.push(typed.child);
    typed.child.stdin!.write("\x1dab");
    expect(await within(typed.exit, 25_000)).toBe(0);
    expect(typed.stdout().trim()).toBe("1d 61 62");

    const cat = await http.createSession({ command: ["cat"], env: TEST_ENV });
    const attached = spawnCli(["attach", "--detach-key", "^Q", cat.id], {
      SWITCHBOARD_URL: gw.url,
      SWITCHBOARD_TOKEN: gw.token,
    });
    children.push(attached.child);
    await waitFor(async () => (await http.getSession(cat.id)).controller !== null, 20_000);
    attached.child.stdin!.write("\x11");
    expect(await within(attached.exit, 20_000)).toBe(0);
    expect(attached.stderr()).toMatch(/\[detached from \S+; "switchboard attach \S+" to come back\]\n$/);
    expect((await http.getSession(cat.id)).state).toBe("running");
    await http.deleteSession(cat.id);

    const wrong = spawnCli(["attach", "--detach-key", "ctrl-[", cat.id], {
      SWITCHBOARD_URL: gw.url,
      SWITCHBOARD_TOKEN: gw.token,
    });
    expect(await within(wrong.exit, 20_000)).toBe(2);
    expect(wrong.stderr()).toContain(
      '--detach-key takes a control key, written ctrl-q or ^Q: ctrl-a to ctrl-z, or ctrl-\\, ctrl-], ctrl-^, ctrl-_ (not "ctrl-[")',
    );
  }, 60_000);
});

/** `switchboard attach ID` through `proxy`, once it holds control; then the proxy cuts it and refuses new connections. */
async function attachedThenCut(id: string, proxy: FaultProxy): Promise<RunningCli> {
  const attached = spawnCli(["attach", id], { SWITCHBOARD_URL: proxy.url, SWITCHBOARD_TOKEN: gw.token });
  children.push(attached.child);
  await waitFor(async () => (await http.getSession(id)).controller !== null, 20_000);
  proxy.down = true;
  proxy.cut();
  return attached;
}

describe("switchboard attach over a dropped connection", () => {
  // Regression: attach asked for control without a clientKey, so a dropped connection's lease
  // went at once to whoever asked next, and attach came back read-only.
  it("keeps control for its reconnect: nobody else takes it meanwhile, and its keys go on", async () => {
    const sh = await http.createSession({ command: ["sh"], env: TEST_ENV });
    const proxy = await FaultProxy.start(gw.url);
    const other = await connect({ url: gw.url, token: gw.token });
    try {
      const attached = await attachedThenCut(sh.id, proxy);
      await waitFor(() => attached.stderr().includes("connection lost; reconnecting"), 20_000);
      await expect(other.control(sh.id, "acquire")).rejects.toMatchObject({ code: "CONTROL_HELD" });
      proxy.down = false;
      await waitFor(() => attached.stderr().includes("reconnected"), 20_000);
      attached.child.stdin!.write("echo back-$((40+2))\n");
      await waitFor(() => attached.stdout().includes("back-42"), 20_000);
      expect(attached.stderr()).not.toMatch(/read-only|held by/);
    } finally {
      await other.close();
      await proxy.close();
      await http.deleteSession(sh.id);
    }
  }, 60_000);
});

describe("switchboard attach while the gateway is gone", () => {
  // Regression (exploratory testing): with the gateway killed, attach said only that keys were
  // dropped; Ctrl-C is a key in raw mode (dropped too), and nothing said how to get out.
  it("says that Ctrl-] detaches, and detaches while disconnected", async () => {
    const sh = await http.createSession({ command: ["sh"], env: TEST_ENV });
    const proxy = await FaultProxy.start(gw.url);
    try {
      const attached = await attachedThenCut(sh.id, proxy);
      await waitFor(
        () =>
          attached
            .stderr()
            .includes("connection lost; reconnecting (keys typed meanwhile are dropped; Ctrl-] detaches)"),
        20_000,
      );
      attached.child.stdin!.write("\x03");
      await waitFor(() => attached.stderr().includes("not connected: keys dropped (Ctrl-] detaches)"), 20_000);
      attached.child.stdin!.write("\x1d");
      expect(await within(attached.exit, 20_000)).toBe(0);
      expect(attached.stderr()).toMatch(/\[detached from \S+; "switchboard attach \S+" to come back\]\n$/);
      expect((await http.getSession(sh.id)).state).toBe("running");
    } finally {
      await proxy.close();
      await http.deleteSession(sh.id);
    }
  }, 60_000);
});
