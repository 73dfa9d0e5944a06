import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit-codes.js";
import { CLI, CLI_TIMEOUT_MS, REPO, sessionEnded, startCliGateway } from "./helpers.js";
import type { CliGateway } from "./helpers.js";

let cg: CliGateway;

beforeAll(async () => {
  cg = await startCliGateway();
});
afterAll(() => cg.close());

/** Runs the CLI with its stdout on `/dev/full`, where every write fails with ENOSPC (a disk that filled up). */
function cliIntoFullDisk(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const full = openSync("/dev/full", "w");
  try {
    const child = spawn(CLI[0]!, [...CLI.slice(1), ...args], {
      cwd: REPO,
      env: { ...process.env, ...cg.env, SWITCHBOARD_LOG_LEVEL: "silent" },
      stdio: ["ignore", full, "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    return new Promise((resolve) => child.once("close", (code) => resolve({ code, stderr })));
  } finally {
    closeSync(full);
  }
}

describe("output that cannot be written", () => {
  // Regression (exploratory testing): `switchboard logs ID > file` on a disk that filled up
  // ended with "throw error" and a stack trace of main.ts; only EPIPE was handled.
  it(
    "says so in one line and exits 1 when stdout refuses a write (ENOSPC), with no stack trace",
    async () => {
      const session = await cg.http.createSession({ command: ["seq", "1", "20000"] });
      await sessionEnded(cg.http, session.id);
      for (const args of [["logs", session.id], ["logs", "--json", session.id], ["ls"]]) {
        const result = await cliIntoFullDisk(args);
        expect({ args, ...result }).toEqual({
          args,
          code: EXIT.FAILURE,
          stderr: "switchboard: cannot write the output: ENOSPC: no space left on device, write\n",
        });
      }
    },
    CLI_TIMEOUT_MS * 2,
  );
});
