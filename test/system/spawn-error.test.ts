import { describe, expect, it } from "vitest";
import { SPAWN_FDS } from "../../src/system/fd-usage.js";
import { fdExhaustedError, spawnError } from "../../src/system/spawn-error.js";

/** What child_process emits when a spawn fails: a Node system error with errno, code and syscall. */
function spawnFailure(program: string, code: string, errno: number): NodeJS.ErrnoException {
  return Object.assign(new Error(`spawn ${program} ${code}`), { code, errno, syscall: `spawn ${program}` });
}

const WHAT_TO_DO = /end sessions or connections, or raise the limit \(`ulimit -n`, systemd `LimitNOFILE=`\)/;

describe("why a process could not be started", () => {
  it("EMFILE is the gateway's own limit, with its counts when they are known and without them when not", () => {
    const emfile = spawnFailure("cat", "EMFILE", -24);
    const counted = fdExhaustedError("cat", emfile, { open: 128, limit: 128 });
    expect(counted?.code).toBe("RESOURCE_EXHAUSTED");
    expect(counted?.message).toMatch(
      /^cannot start cat: the gateway is out of file descriptors \(limit 128, 128 open\): /,
    );
    expect(counted?.message).toMatch(WHAT_TO_DO);
    // The errno decides, whatever the count says (a spawn takes a few at once).
    expect(fdExhaustedError("cat", emfile, { open: 100, limit: 128 })?.message).toMatch(/\(limit 128, 100 open\)/);
    const uncounted = fdExhaustedError("cat", emfile, null);
    expect(uncounted?.message).toMatch(/^cannot start cat: the gateway is out of file descriptors: end sessions/);
  });

  it("ENFILE is the whole system's open-file table, not the gateway's limit: the message names fs.file-max and not ulimit", () => {
    const error = fdExhaustedError("cat", spawnFailure("cat", "ENFILE", -23), { open: 40, limit: 1024 });
    expect(error?.code).toBe("RESOURCE_EXHAUSTED");
    expect(error?.message).toMatch(/^cannot start cat: the system is out of file descriptors \(ENFILE: /);
    expect(error?.message).toMatch(/`fs\.file-max`, not the gateway's own limit/);
    expect(error?.message).not.toMatch(/ulimit|LimitNOFILE|limit 1024/);
  });

  it("without an errno (node-pty's forkpty(3) failed.) the count decides: fewer than SPAWN_FDS free", () => {
    const forkpty = new Error("forkpty(3) failed.");
    expect(fdExhaustedError("sh", forkpty, { open: 128 - SPAWN_FDS + 1, limit: 128 })?.message).toMatch(
      /^cannot start sh: the gateway is out of file descriptors \(limit 128, 121 open\)/,
    );
    expect(fdExhaustedError("sh", forkpty, { open: 128 - SPAWN_FDS, limit: 128 })).toBeNull();
    expect(fdExhaustedError("sh", forkpty, null)).toBeNull();
  });

  it("any other errno is not for lack of descriptors, even near the limit", () => {
    for (const [code, errno] of [
      ["ENOENT", -2],
      ["EACCES", -13],
      ["EAGAIN", -11],
    ] as const) {
      expect(fdExhaustedError("cat", spawnFailure("cat", code, errno), { open: 128, limit: 128 })).toBeNull();
    }
  });

  it("spawnError is SPAWN_FAILED with what the spawn said when descriptors did not run out", () => {
    const error = spawnError("/no/such/agent", spawnFailure("/no/such/agent", "ENOENT", -2));
    expect(error).toMatchObject({
      code: "SPAWN_FAILED",
      message: "cannot start /no/such/agent: spawn /no/such/agent ENOENT",
    });
    expect(spawnError("cat", spawnFailure("cat", "ENFILE", -23)).code).toBe("RESOURCE_EXHAUSTED");
  });
});
