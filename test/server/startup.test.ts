import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import { TEST_TOKEN, api, testGateway } from "../helpers/gateway.js";
import { cliCommand } from "../helpers/compiled-cli.js";
import { waitFor } from "../helpers/wait-for.js";
import { tempDir } from "../helpers/tmp.js";
import { fillDisk, smallDisk } from "../helpers/disk.js";
import { uiBase } from "../../src/cli/serve.js";
import { DATA_DIR_CHECK_MS } from "../../src/server/ops/data-dir-watch.js";
import { createLogger } from "../../src/server/ops/logger.js";

/** `switchboard serve` as a user runs it: its exit code, what it printed, and how long it took to end. */
async function serve(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  const [node, ...cli] = cliCommand();
  const child = spawn(node!, [...cli, "serve", "--token", TEST_TOKEN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  onTestFinished(() => {
    child.kill("SIGKILL");
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { code, stdout, stderr, ms: Date.now() - started };
}

describe("starting a gateway", () => {
  it("refuses a data directory another gateway uses, and leaves that gateway's sessions alone", async () => {
    const first = await testGateway();
    const http = api(first.url);
    const { json: sleeper } = await http.post("/v1/sessions", { command: ["sleep", "30"] });
    const before = (await http.get(`/v1/sessions/${sleeper.id}/events`)).json.events;

    await expect(testGateway({ dataDir: first.dataDir })).rejects.toThrow(
      new RegExp(`another gateway is using the data directory ${first.dataDir} .*--data-dir`),
    );
    // The refused gateway restored nothing: the running session is not `lost`, its log unchanged.
    expect((await http.get(`/v1/sessions/${sleeper.id}`)).json).toMatchObject({ state: "running" });
    expect((await http.get(`/v1/sessions/${sleeper.id}/events`)).json.events).toEqual(before);

    // Once the first one is closed, the directory is free again.
    await first.close();
    const second = await testGateway({ dataDir: first.dataDir });
    const after = await api(second.url).get(`/v1/sessions/${sleeper.id}`);
    expect(after.json).toMatchObject({ state: "exited", signal: "SIGTERM" });
  });

  it("says when the port is taken, exits with 1 at once and leaves the data directory free", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    onTestFinished(() => void blocker.close());
    const port = (blocker.address() as AddressInfo).port;
    const dataDir = tempDir();

    // A data directory the failed start made itself is not left behind (it was, lock and all):
    // `fresh`, which the second start (side by side with the first) makes.
    const fresh = join(tempDir(), "fresh");
    const [result, inFresh] = await Promise.all([
      serve(["--port", String(port), "--data-dir", dataDir]),
      serve(["--port", String(port), "--data-dir", fresh]),
    ]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain(`switchboard: 127.0.0.1:${port} is in use (another gateway?)`);
    expect(result.stderr).toContain("--port");
    // It ended by itself (nothing left running: log writer, timers), not by the test's kill.
    expect(result.ms).toBeLessThan(15_000);

    const gw = await testGateway({ dataDir });
    expect((await api(gw.url).get("/v1/sessions")).status).toBe(200);

    expect(inFresh.code).toBe(1);
    expect(existsSync(fresh)).toBe(false);
  });

  it("refuses a second `serve` on the same data directory with exit code 1", async () => {
    const first = await testGateway();
    const result = await serve(["--port", "0", "--data-dir", first.dataDir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`switchboard: another gateway is using the data directory ${first.dataDir}`);
    await waitFor(async () => (await api(first.url).get("/v1/sessions")).status === 200, 5_000, "first still serving");
  });

  it("refuses a data directory it cannot write with exit code 1, saying which and why", async () => {
    if (process.getuid?.() !== 0) {
      throw new Error("this test mounts a read-only tmpfs: run it as root (CI does)");
    }
    const disk = tempDir("switchboard-ro-");
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", disk]);
    onTestFinished(() => {
      execFileSync("umount", ["-l", disk]);
    });
    const [created, existing] = await Promise.all([
      serve(["--port", "0", "--data-dir", `${disk}/data`]),
      serve(["--port", "0", "--data-dir", disk]),
    ]);
    // Was: "switchboard: ENOENT: no such file or directory, mkdir '…/data'".
    expect(created.code).toBe(1);
    expect(created.stderr).toContain(
      `switchboard: the data directory ${disk}/data cannot be used: ${disk} is on a read-only file system;`,
    );
    expect(created.stderr).toContain("--data-dir");
    // Was: "switchboard: unable to open database file".
    expect(existing.code).toBe(1);
    expect(existing.stderr).toContain(
      `switchboard: the data directory ${disk} cannot be used: ${disk} is on a read-only file system;`,
    );
  });

  // Found by exploratory testing: a --data-dir that is a file said "EEXIST: EEXIST: file already
  // exists, mkdir …" and then "make it writable", which would not help.
  it("refuses a data directory that is a file, saying so", async () => {
    const file = join(tempDir(), "not-a-dir");
    writeFileSync(file, "");
    await expect(testGateway({ dataDir: file })).rejects.toThrow(
      `the data directory ${file} cannot be used: ${file} exists and is not a directory;`,
    );
  });

  // Found by exploratory testing: on a full disk serve ended with SQLite's bare "database or disk
  // is full" (or, generating its token, "ENOSPC: no space left on device, write"), naming neither
  // the data directory nor what to do.
  it("refuses a data directory on a full disk with exit code 1, saying which and what to do", async () => {
    if (process.getuid?.() !== 0) {
      throw new Error("this test mounts a small tmpfs: run it as root (CI does)");
    }
    const disk = tempDir("switchboard-full-");
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", disk]);
    onTestFinished(() => {
      execFileSync("umount", ["-l", disk]);
    });
    mkdirSync(`${disk}/data`);
    // Fill it: dd stops with ENOSPC, which is the point.
    expect(() => execFileSync("dd", ["if=/dev/zero", `of=${disk}/fill`, "bs=4k"], { stdio: "ignore" })).toThrow();

    const expected = `switchboard: the data directory ${disk}/data is full (`;
    const withToken = await serve(["--port", "0", "--data-dir", `${disk}/data`]);
    expect(withToken.code).toBe(1);
    expect(withToken.stderr).toContain(`${expected}SQLITE_FULL`);
    expect(withToken.stderr).toContain("free some space there or give another --data-dir");
    expect(withToken.stdout).toBe("");
    // Without a token, the first thing it writes is the one it generates.
    await expect(testGateway({ dataDir: `${disk}/data`, token: "" })).rejects.toThrow(
      `the data directory ${disk}/data is full (ENOSPC`,
    );
    // Nothing half-written is left: an empty token file (the next start took it for none).
    expect(readdirSync(`${disk}/data`).filter((f) => f.startsWith("token"))).toEqual([]);
  });

  // Exploratory test (operator): an existing data directory on a full disk ended serve with a
  // bare "switchboard: disk I/O error" (SQLite cannot grow its shared-memory index: SHMSIZE).
  it("refuses an existing data directory whose disk filled up, saying it is full", async () => {
    const disk = smallDisk("4m");
    const gateway = await testGateway({ dataDir: `${disk}/data` });
    await api(gateway.url).post("/v1/sessions", { command: ["true"] });
    await gateway.close();
    fillDisk(`${disk}/fill`, 4096);

    const again = await serve(["--port", "0", "--data-dir", `${disk}/data`]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(
      new RegExp(
        `^switchboard: the data directory ${disk}/data is full \\(SQLITE_\\w+: .*free some space there or give another --data-dir\\n`,
      ),
    );
  });

  // Exploratory test (operator): `rm -rf` of the data directory under a running gateway went
  // unnoticed: new sessions were accepted into deleted files, switchboard_log_writable stayed 1,
  // and a second gateway started on the same path.
  it("notices its data directory removed under it: says so, refuses new work, and keeps steering", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({
      level: "info",
      destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    });
    const gateway = await testGateway({ logger });
    const http = api(gateway.url);
    const cat = (await http.post("/v1/sessions", { command: ["cat"] })).json.id as string;
    // As `rm -rf` would, again when the gateway wrote a file into a directory between its emptying
    // and its removal (ENOTEMPTY).
    rmSync(gateway.dataDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 });

    const refused = await waitFor(
      async () => {
        const r = await http.post("/v1/sessions", { command: ["true"] });
        // (Before the check notices, new work may be refused because the log's writer thread,
        // starting when the directory went, could not open the file.)
        return r.status === 503 && /removed or replaced/.test(r.text) ? r : undefined;
      },
      DATA_DIR_CHECK_MS + 5_000,
      "new sessions to be refused",
    );
    expect(refused.json.error).toEqual({
      code: "LOG_UNAVAILABLE",
      message: `the data directory ${gateway.dataDir} was removed or replaced while the gateway ran: what it records now goes to deleted files and is lost when it stops; stop the gateway (it ends its sessions) and start it again; nothing new is accepted until then`,
    });
    expect(lines.filter((l) => l["code"] === "DATA_DIR_GONE")).toEqual([
      expect.objectContaining({ level: 50, dataDir: gateway.dataDir }),
    ]);
    expect((await http.get("/metrics")).text).toMatch(/^switchboard_log_writable 0$/m);
    // What runs can still be steered and stopped, and is answered at once.
    const input = await http.post(`/v1/sessions/${cat}/input`, { data: "still typed\n" });
    expect(input.status).toBe(200);
    expect(input.headers.get("switchboard-log-pending")).toBe("DATA_DIR_GONE");
  }, 30_000);

  // Found by exploratory testing: `serve --token abc` is refused (at least 16 characters), but a
  // token file holding `abc` was taken as it was, and one left readable by everyone (0644) stayed
  // so, though the docs say it is kept with mode 0600. A token file that is a directory ended
  // serve with a bare "EISDIR: illegal operation on a directory, read".
  it("refuses a token file too short to be safe, narrows a token file others can read to 0600, and names a token file it cannot read", async () => {
    const short = tempDir();
    writeFileSync(join(short, "token"), "abc\n", { mode: 0o600 });
    await expect(testGateway({ dataDir: short, token: "" })).rejects.toThrow(
      `the token in ${join(short, "token")} has 3 characters: a token needs at least 16; put a longer one there, or remove the file to have one generated`,
    );

    const wide = tempDir();
    const token = "an-operator-chosen-token-0123456789";
    writeFileSync(join(wide, "token"), `${token}\n`);
    execFileSync("chmod", ["0644", join(wide, "token")]);
    const gw = await testGateway({ dataDir: wide, token: "" });
    expect(gw.token).toBe(token);
    expect(statSync(join(wide, "token")).mode & 0o777).toBe(0o600);
    expect((await api(gw.url, token).get("/v1/sessions")).status).toBe(200);

    const unreadable = tempDir();
    mkdirSync(join(unreadable, "token"));
    await expect(testGateway({ dataDir: unreadable, token: "" })).rejects.toThrow(
      `cannot read the token file ${join(unreadable, "token")}: EISDIR`,
    );
  });

  it("prints a UI address a browser here can open, also when bound to every address", () => {
    expect(uiBase("0.0.0.0", 7317, "http://0.0.0.0:7317")).toBe("http://127.0.0.1:7317");
    expect(uiBase("::", 7317, "http://[::]:7317")).toBe("http://[::1]:7317");
    expect(uiBase("127.0.0.1", 7317, "http://127.0.0.1:7317")).toBe("http://127.0.0.1:7317");
  });
});
