/**
 * `logs -f` across a network outage long enough for retention to drop output it had not
 * read: it must say so on stderr (once), not skip silently, and print exactly what the
 * gateway still has after what it printed before.
 */
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpClient } from "../../src/client/node.js";
import { FaultProxy, startTestGateway } from "../client/helpers.js";
import type { TestGateway } from "../client/helpers.js";
import { CLI, REPO, cli } from "./helpers.js";
import { waitFor } from "../helpers/wait-for.js";

let gw: TestGateway;
let http: HttpClient;
beforeAll(async () => {
  // A few hundred small events: a burst while the follower is away trims what it had not read.
  gw = await startTestGateway({ config: { retention: { maxBytes: 20_000 } } });
  http = new HttpClient({ url: gw.url, token: gw.token });
});
afterAll(async () => {
  await gw.close();
});

function lines(tag: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${tag}${i}\n`);
}

async function append(id: string, chunks: readonly string[]): Promise<void> {
  await http.appendEvents(
    id,
    chunks.map((data) => ({ type: "output" as const, data: { stream: "stdout" as const, data } })),
  );
}

describe("logs -f across an outage that retention outlasted", () => {
  it.each([["raw"], ["json"]] as const)("%s: says what was dropped, then prints what is retained", async (mode) => {
    const proxy = await FaultProxy.start(gw.url);
    const { id } = await http.createSession({ kind: "stream" });
    await append(id, lines("a", 5));
    const args = ["logs", "-f", ...(mode === "json" ? ["--json"] : []), id];
    const child = spawn(CLI[0]!, [...CLI.slice(1), ...args], {
      cwd: REPO,
      env: { ...process.env, SWITCHBOARD_URL: proxy.url, SWITCHBOARD_TOKEN: gw.token, SWITCHBOARD_LOG_LEVEL: "silent" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      // Following: the first lines are printed and the follower's connection is up.
      await waitFor(() => stdout.includes(mode === "json" ? '"a4\\n"' : "a4\n"), 15_000, "the first lines");
      await waitFor(() => proxy.openSockets === 1, 15_000, "the follower's connection");
      // Subscribed, not only upgraded: a cut before the gateway's hello is a failed first
      // connect, which the CLI reports and gives up on instead of reconnecting.
      const deadline = Date.now() + 15_000;
      while ((await http.getSession(id)).viewers !== 1) {
        if (Date.now() > deadline) throw new Error("the follower never subscribed");
        await new Promise((r) => setTimeout(r, 20));
      }

      proxy.down = true;
      proxy.cut();
      await waitFor(() => stderr.includes("connection lost; reconnecting"), 10_000, "the outage notice");
      for (let batch = 0; batch < 10; batch++) await append(id, lines(`b${batch}-`, 100));
      await waitFor(() => (stderr.match(/\[switchboard\]/g) ?? []).length === 1, 1, "no other notice meanwhile");
      proxy.down = false;
      await waitFor(() => stderr.includes("reconnected"), 15_000, "the reconnected notice");
      await append(id, ["c0\n"]);
      await http.appendEvents(id, { type: "exit", data: { exitCode: 0, signal: null } });
      expect(await exited).toBe(0);
    } finally {
      child.kill();
      await proxy.close();
    }

    // Retention goes on trimming after the follower's replay: check against what the notice says.
    const all = [...lines("a", 5), ...Array.from({ length: 10 }, (_, b) => lines(`b${b}-`, 100)).flat(), "c0\n"];
    if (mode === "raw") {
      const said = /output bytes 15 to (\d+) were dropped by retention; the replay goes on from byte (\d+)/.exec(
        stderr,
      );
      expect(said).not.toBeNull();
      const from = Number(said![2]);
      expect(Number(said![1])).toBe(from);
      expect(from).toBeGreaterThan(15);
      const text = all.join("");
      expect(stdout).toBe(text.slice(0, 15) + text.slice(from));
    } else {
      // Catch-up reads take turns with other work, so an append during the replay (c0, the exit)
      // may trim again: each trim is its own notice, and together they name every dropped event.
      const said = [
        ...stderr.matchAll(
          /events (\d+) to (\d+) were dropped by retention before they could be read; following from seq (\d+)/g,
        ),
      ].map((m) => ({ from: Number(m[1]), to: Number(m[2]), first: Number(m[3]) }));
      expect(said.length).toBeGreaterThan(0);
      expect(said[0]!.from).toBe(6);
      for (const [i, notice] of said.entries()) {
        expect(notice.to).toBe(notice.first - 1);
        if (i > 0) expect(notice.from).toBe(said[i - 1]!.first);
      }
      const first = said.at(-1)!.first;
      const events = stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { seq: number; type: string; data?: string });
      const head = all.length + 1;
      expect(events.map((e) => e.seq)).toEqual([
        1,
        2,
        3,
        4,
        5,
        ...Array.from({ length: head - first + 1 }, (_, i) => first + i),
      ]);
      expect(events.slice(5, -1).map((e) => e.data)).toEqual(all.slice(first - 1));
    }
    // One notice per fact: lost, (dropped,) back.
    expect(stderr.match(/connection lost/g)).toHaveLength(1);
    expect(stderr.match(/reconnected/g)).toHaveLength(1);
  });
});

// Found by exploratory testing: `logs ID` of a session whose first output retention had dropped
// printed what was left from the start of the answer, with nothing on stderr, while `logs -f`
// across an outage says which bytes are gone.
describe("logs of a session retention already trimmed", () => {
  it("says which bytes were dropped, then prints what is retained", async () => {
    const { id } = await http.createSession({ kind: "stream" });
    await append(id, lines("a", 5));
    for (let batch = 0; batch < 10; batch++) await append(id, lines(`b${batch}-`, 100));
    await http.appendEvents(id, { type: "exit", data: { exitCode: 0, signal: null } });
    const env = { SWITCHBOARD_URL: gw.url, SWITCHBOARD_TOKEN: gw.token };

    const result = await cli(["logs", id], env);
    expect(result.code).toBe(0);
    const said = /^\[switchboard\] output bytes 0 to (\d+) were dropped by retention; printing from byte (\d+)\n$/.exec(
      result.stderr,
    );
    expect(said).not.toBeNull();
    const from = Number(said![2]);
    expect(Number(said![1])).toBe(from);
    expect(from).toBeGreaterThan(0);
    const text = [...lines("a", 5), ...Array.from({ length: 10 }, (_, b) => lines(`b${b}-`, 100)).flat()].join("");
    expect(result.stdout).toBe(text.slice(from));

    // A --since that retention passed: the same notice from that byte, and what is retained
    // (exploratory test: it was an error, HISTORY_TRIMMED, exit 1; attach went on).
    for (const args of [
      ["logs", id, "--since", "5"],
      ["logs", "-f", id, "--since", "5"],
    ]) {
      const passed = await cli(args, env);
      expect(passed).toMatchObject({
        code: 0,
        stderr: `[switchboard] output bytes 5 to ${from} were dropped by retention; printing from byte ${from}\n`,
      });
      expect(passed.stdout === text.slice(from)).toBe(true);
    }

    // Nothing dropped after what was asked for: nothing said.
    const tail = await cli(["logs", id, "--since", String(from)], env);
    expect(tail).toMatchObject({ code: 0, stderr: "", stdout: text.slice(from) });

    // As events (--json): the same, by seq.
    const events = await cli(["--json", "logs", id], env);
    expect(events.code).toBe(0);
    const seqs = events.stdout
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { seq: number }).seq);
    expect(seqs[0]).toBeGreaterThan(1);
    expect(events.stderr).toBe(
      `[switchboard] events 1 to ${seqs[0]! - 1} were dropped by retention; printing from seq ${seqs[0]}\n`,
    );
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i));
    const after = await cli(["--json", "logs", id, "--since", String(seqs[0]! - 1)], env);
    expect(after.stderr).toBe("");
  });
});
