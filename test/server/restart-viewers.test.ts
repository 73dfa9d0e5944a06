/**
 * Viewers across a stop that keeps sessions running under their holders: WebSockets are closed
 * with 1012 (service restart), `switchboard attach` says the gateway restarts and stays, and the
 * SDK and attach resume after the next gateway adopts the session, with no byte lost or repeated.
 */
import { execFile, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { describe, it } from "vitest";
import { HttpClient, connect } from "../../src/client/node.js";
import type { SessionEvent } from "../../src/protocol/index.js";
import { CLI, REPO } from "../cli/helpers.js";
import { TEST_ENV } from "../client/helpers.js";
import { TEST_TOKEN } from "../helpers/gateway.js";
import { serveInChild } from "../helpers/serve-child.js";
import { waitFor } from "../helpers/wait-for.js";

const TEST_MS = 90_000;

/** A raw WebSocket's close code and reason. */
function closeOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
}

describe.concurrent("viewers at a gateway restart", () => {
  it(
    "closes /ws/session and /v1/ws with 1012 when sessions keep running; attach says so, stays, and SDK and attach resume exactly",
    async ({ expect, onTestFinished }) => {
      const dataDir = mkdtempSync(join(tmpdir(), "switchboard-restart-viewers-"));
      onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
      const first = await serveInChild({ dataDir, holders: true, defer: onTestFinished });
      const port = Number(new URL(first.url).port);
      const http = new HttpClient({ url: first.url, token: TEST_TOKEN });
      const script = "echo ready; while read l; do echo got:$l; done; echo bye";
      const { id } = await http.createSession({ command: ["sh", "-c", script], env: TEST_ENV });

      const headers = { authorization: `Bearer ${TEST_TOKEN}` };
      const ws = first.url.replace(/^http/, "ws");
      const raw = [
        new WebSocket(`${ws}/ws/session/${id}?since=0`, { headers }),
        new WebSocket(`${ws}/v1/ws`, { headers }),
      ];
      const closes = raw.map(closeOf);

      const client = await connect({ url: first.url, token: TEST_TOKEN });
      onTestFinished(() => client.close());
      const events: SessionEvent[] = [];
      const sub = client.subscribe(id, { since: 0 }, (e) => events.push(e));

      const attach = spawn(CLI[0]!, [...CLI.slice(1), "attach", "--read-only", id], {
        cwd: REPO,
        env: {
          ...process.env,
          SWITCHBOARD_URL: first.url,
          SWITCHBOARD_TOKEN: TEST_TOKEN,
          SWITCHBOARD_LOG_LEVEL: "silent",
        },
        stdio: ["pipe", "pipe", "pipe"],
      });
      onTestFinished(() => void attach.kill("SIGKILL"));
      let out = "";
      let err = "";
      attach.stdout.on("data", (d: Buffer) => (out += d.toString()));
      attach.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const attachExit = new Promise<number | null>((resolve) => attach.once("exit", resolve));

      await http.input(id, "before\n");
      await waitFor(() => out.includes("got:before\n"), 20_000, "attach shows the output before the stop");

      first.child.kill("SIGTERM");
      await new Promise((resolve) => first.child.once("exit", resolve));
      for (const close of await Promise.all(closes)) expect(close).toEqual({ code: 1012, reason: expect.any(String) });
      await waitFor(() => err.includes("gateway restarting…"), 20_000, "attach's notice");
      expect(attach.exitCode).toBeNull();

      const second = await serveInChild({ dataDir, port, holders: true, defer: onTestFinished });
      const again = new HttpClient({ url: second.url, token: TEST_TOKEN });
      await again.input(id, "after\n", { eof: true });
      expect(await attachExit).toBe(0);
      await sub.done;

      const expected = "ready\ngot:before\ngot:after\nbye\n";
      expect(out).toBe(expected);
      expect(err).toMatch(/reconnected/);
      const seqs = events.map((e) => e.seq);
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
      const output = events.flatMap((e) => (e.type === "output" ? [e.data] : [])).join("");
      expect(output).toBe(expected);
      expect(events.at(-1)).toMatchObject({ type: "exit", exitCode: 0 });
    },
    TEST_MS,
  );

  it(
    "switchboard shutdown leaves held sessions to the next gateway; shutdown --sessions ends them with it",
    async ({ expect, onTestFinished }) => {
      const dataDir = mkdtempSync(join(tmpdir(), "switchboard-shutdown-"));
      onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
      const cli = (url: string, args: string[]) =>
        new Promise<{ code: number; stdout: string }>((resolve) => {
          const env = { ...process.env, SWITCHBOARD_URL: url, SWITCHBOARD_TOKEN: TEST_TOKEN };
          execFile(CLI[0]!, [...CLI.slice(1), ...args], { cwd: REPO, env }, (error, stdout) =>
            resolve({ code: error === null ? 0 : Number(error.code), stdout }),
          );
        });
      const stop = async (gw: { url: string; child: ChildProcess }, args: string[]) => {
        const exited = new Promise<number | null>((resolve) => gw.child.once("exit", resolve));
        const answer = await cli(gw.url, ["shutdown", ...args]);
        expect(answer.code).toBe(0);
        expect(await exited).toBe(0);
        return answer.stdout;
      };
      // An operator may not stop the gateway.
      const config = join(dataDir, "config.json");
      const operatorToken = "operator-token-0123456789abcdef";
      const tokenSha256 = createHash("sha256").update(operatorToken).digest("hex");
      writeFileSync(config, JSON.stringify({ auth: { tokens: [{ name: "op", tokenSha256, role: "operator" }] } }));
      const first = await serveInChild({ dataDir, holders: true, config, defer: onTestFinished });
      const port = Number(new URL(first.url).port);
      await expect(
        new HttpClient({ url: first.url, token: operatorToken }).shutdown({ sessions: "end" }),
      ).rejects.toMatchObject({
        code: "FORBIDDEN",
      });
      const info = await new HttpClient({ url: first.url, token: TEST_TOKEN }).createSession({
        command: ["sleep", "300"],
        env: TEST_ENV,
      });
      const pid = info.pid!;

      expect(await stop(first, [])).toMatch(/keep running/);
      expect(alive(pid)).toBe(true);
      const second = await serveInChild({ dataDir, port, holders: true, defer: onTestFinished });
      const http = new HttpClient({ url: second.url, token: TEST_TOKEN });
      expect((await http.getSession(info.id)).state).toBe("running");

      expect(await stop(second, ["--sessions"])).toMatch(/ending every session/);
      await waitFor(() => !alive(pid), 10_000, "the program ended with the gateway");
      const third = await serveInChild({ dataDir, port, holders: true, defer: onTestFinished });
      const ended = await new HttpClient({ url: third.url, token: TEST_TOKEN }).getSession(info.id);
      expect(ended).toMatchObject({ state: "exited", signal: "SIGTERM" });
    },
    TEST_MS,
  );
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // ESRCH: no such process; anything else (EPERM) means it exists.
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}
