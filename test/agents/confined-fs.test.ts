import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import type * as FsPromises from "node:fs/promises";
import {
  link,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  realpath,
  rename,
  rm,
  symlink,
  truncate,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ConfinedFs, FsAccessError, MAX_FS_READ_BYTES } from "../../src/agents/confined-fs.js";
import type { ConfinedFsOptions } from "../../src/agents/confined-fs.js";

// The races below are made deterministic by running a swap right after realpath answers for one
// path, i.e. after ConfinedFs has checked that path and before it opens anything.
const race = vi.hoisted(() => ({ afterRealpath: new Map<string, () => Promise<void>>() }));
vi.mock("node:fs/promises", async (importOriginal) => {
  const actual = await importOriginal<typeof FsPromises>();
  const realpath = async (p: string): Promise<string> => {
    const result = await actual.realpath(p);
    const swap = race.afterRealpath.get(p);
    if (swap !== undefined) {
      race.afterRealpath.delete(p);
      await swap();
    }
    return result;
  };
  return { ...actual, realpath };
});

let base: string;
let root: string;
let outside: string;

beforeAll(async () => {
  base = await realpath(await mkdtemp(path.join(tmpdir(), "sb-confined-")));
  root = path.join(base, "root");
  outside = path.join(base, "outside");
  await mkdir(path.join(root, "sub"), { recursive: true });
  await mkdir(outside);
  await writeFile(path.join(root, "sub", "in.txt"), "inside");
  // A dangling link whose target would be created outside the root by a naive write.
  await symlink(path.join(outside, "created-by-write.txt"), path.join(root, "dangling-out"));
  await symlink(path.join(root, "sub", "in.txt"), path.join(root, "link-in"));
  // The root reached through a symlink still counts as the root.
  await symlink(root, path.join(base, "root-alias"));
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

async function refusal(p: Promise<unknown>): Promise<string> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FsAccessError);
  return (err as FsAccessError).reason;
}

/** Replaces `p` (inside the root) with a symlink to `target`, keeping the original aside. */
async function swapForSymlink(p: string, target: string): Promise<void> {
  await rename(p, `${p}.orig`);
  await symlink(target, p);
}

/** A fresh directory for one test, inside (`root`) or outside the root. */
let dirs = 0;
async function fresh(parent: string): Promise<string> {
  const dir = path.join(parent, `t${++dirs}`);
  await mkdir(dir);
  return dir;
}

const modes: [string, ConfinedFsOptions][] = [
  ["on Linux with /proc/self/fd", {}],
  ["in the fallback without /proc/self/fd", { procFd: false }],
];

describe.each(modes)("ConfinedFs %s", (_mode, options) => {
  const fs = (): ConfinedFs => new ConfinedFs(root, options);

  it("reads relative paths against the root and paths through an alias of the root", async () => {
    expect(await fs().readTextFile("sub/in.txt")).toBe("inside");
    expect(await fs().readTextFile(path.join(base, "root-alias", "sub", "in.txt"))).toBe("inside");
    expect(
      await new ConfinedFs(path.join(base, "root-alias"), options).readTextFile(path.join(root, "sub", "in.txt")),
    ).toBe("inside");
  });

  it("selects lines and refuses a file larger than MAX_FS_READ_BYTES", async () => {
    const dir = await fresh(root);
    await writeFile(path.join(dir, "lines.txt"), "a\nb\nc\nd");
    expect(await fs().readTextFile(path.join(dir, "lines.txt"), { line: 2, limit: 2 })).toBe("b\nc");
    await writeFile(path.join(dir, "big.txt"), "");
    await truncate(path.join(dir, "big.txt"), MAX_FS_READ_BYTES + 1);
    expect(await refusal(fs().readTextFile(path.join(dir, "big.txt")))).toBe("too-large");
  });

  it("refuses a write through a dangling symlink that points outside, creating nothing", async () => {
    expect(await refusal(fs().writeTextFile(path.join(root, "dangling-out"), "x"))).toBe("outside-root");
    expect(existsSync(path.join(outside, "created-by-write.txt"))).toBe(false);
  });

  it("writes through a symlink that stays inside to its target", async () => {
    const dir = await fresh(root);
    await writeFile(path.join(dir, "target.txt"), "before");
    await symlink(path.join(dir, "target.txt"), path.join(dir, "link"));
    await fs().writeTextFile(path.join(dir, "link"), "rewritten");
    expect(await readFile(path.join(dir, "target.txt"), "utf8")).toBe("rewritten");
  });

  it("creates missing parent directories and replaces a longer file entirely", async () => {
    const dir = await fresh(root);
    await fs().writeTextFile(path.join(dir, "a", "b", "new.txt"), "a long first version");
    await fs().writeTextFile(path.join(dir, "a", "b", "new.txt"), "short");
    expect(await readFile(path.join(dir, "a", "b", "new.txt"), "utf8")).toBe("short");
  });

  it("says what a write replaced: nothing for a file it made, else the bytes that were there", async () => {
    const dir = await fresh(root);
    const file = path.join(dir, "replaced.txt");
    expect(await fs().writeTextFile(file, "first\n")).toEqual({ before: null });
    const replaced = await fs().writeTextFile(file, "second\n");
    expect(replaced.before).toEqual(Buffer.from("first\n"));
    await writeFile(path.join(dir, "empty.txt"), "");
    expect(await fs().writeTextFile(path.join(dir, "empty.txt"), "x")).toEqual({ before: Buffer.alloc(0) });
    expect(await readFile(file, "utf8")).toBe("second\n");
  });

  it("refuses .. even when it would land inside, and reports missing files and directories", async () => {
    expect(await refusal(fs().readTextFile("sub/../sub/in.txt"))).toBe("outside-root");
    expect(await refusal(fs().readTextFile("missing.txt"))).toBe("not-found");
    expect(await refusal(fs().readTextFile("sub"))).toBe("not-a-file");
    expect(await refusal(fs().writeTextFile("sub", "x"))).toBe("not-a-file");
  });

  // Issue: a file where a directory should be, or a session directory removed under the agent,
  // answered the raw ENOTDIR/ENOENT with the gateway's absolute paths (`/proc/self/fd/N/…`).
  it("answers a file in place of a directory, or a removed root, with a documented reason naming only the agent's path", async () => {
    const dir = await fresh(root);
    await writeFile(path.join(dir, "plain.txt"), "a file");
    const through = path.join(dir, "plain.txt", "x.txt");
    const below = path.join(dir, "plain.txt", "deeper", "x.txt");
    const gone = await fresh(root);
    const goneFs = new ConfinedFs(gone, options);
    await rm(gone, { recursive: true });
    const refusals: Array<[string, () => Promise<unknown>, string]> = [
      ["read through a file", () => fs().readTextFile(through), through],
      ["write through a file", () => fs().writeTextFile(through, "x"), through],
      ["write below a file", () => fs().writeTextFile(below, "x"), below],
      ["read in a removed root", () => goneFs.readTextFile("x.txt"), "x.txt"],
      ["write in a removed root", () => goneFs.writeTextFile("x.txt", "x"), "x.txt"],
    ];
    for (const [what, attempt, requested] of refusals) {
      const err = await attempt().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, what).toBeInstanceOf(FsAccessError);
      expect((err as FsAccessError).reason, what).toBe("not-found");
      // The path the agent sent and why, never a real path, a descriptor's path or an errno code.
      expect((err as Error).message, what).toMatch(new RegExp(`^${requested.replaceAll(".", "\\.")} does not exist`));
      expect((err as Error).message, what).not.toMatch(/\/proc\/|ENOTDIR|ENOENT|realpath/);
    }
  });

  it("refuses to write a file hard-linked from outside the root, leaving it as it was", async () => {
    const secret = path.join(await fresh(outside), "secret.txt");
    await writeFile(secret, "outside content");
    const inside = path.join(await fresh(root), "linked.txt");
    await link(secret, inside);
    const err: unknown = await fs()
      .writeTextFile(inside, "overwritten")
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(FsAccessError);
    expect((err as FsAccessError).reason).toBe("hard-linked");
    expect((err as FsAccessError).message).toMatch(/2 hard links/);
    expect(await readFile(secret, "utf8")).toBe("outside content");
  });

  it("refuses to read or write a FIFO at once instead of waiting for its other end", { timeout: 5000 }, async () => {
    const fifo = path.join(await fresh(root), "pipe");
    execFileSync("mkfifo", [fifo]);
    expect(await refusal(fs().readTextFile(fifo))).toBe("not-a-file");
    expect(await refusal(fs().writeTextFile(fifo, "x"))).toBe("not-a-file");
  });
});

// What the fallback cannot do: it trusts the realpath check up to the open, so these need /proc/self/fd.
describe.runIf(existsSync("/proc/self/fd"))("ConfinedFs against a symlink swapped in after the check", () => {
  /** A ConfinedFs whose root's real path is already known, so the next realpath call is the check. */
  async function warmFs(): Promise<ConfinedFs> {
    const fs = new ConfinedFs(root);
    await fs.readTextFile("sub/in.txt");
    return fs;
  }

  it("does not read outside when a directory on the path becomes a symlink (caught on the opened fd)", async () => {
    const dir = await fresh(root);
    await mkdir(path.join(dir, "a", "deep"), { recursive: true });
    await writeFile(path.join(dir, "a", "deep", "f.txt"), "inside");
    const away = await fresh(outside);
    await mkdir(path.join(away, "deep"));
    await writeFile(path.join(away, "deep", "f.txt"), "secret");
    const fs = await warmFs();
    // `a` is not the last directory, so O_NOFOLLOW does not apply to it: only the real path of
    // the opened descriptor shows that the open went outside.
    race.afterRealpath.set(path.join(dir, "a", "deep", "f.txt"), () => swapForSymlink(path.join(dir, "a"), away));
    expect(await refusal(fs.readTextFile(path.join(dir, "a", "deep", "f.txt")))).toBe("outside-root");
  });

  it("does not read outside when the file itself or its directory becomes a symlink", async () => {
    const dir = await fresh(root);
    await mkdir(path.join(dir, "d"));
    await writeFile(path.join(dir, "d", "f.txt"), "inside");
    const away = await fresh(outside);
    await writeFile(path.join(away, "f.txt"), "secret");
    const fs = await warmFs();
    const file = path.join(dir, "d", "f.txt");
    race.afterRealpath.set(file, () => swapForSymlink(file, path.join(away, "f.txt")));
    expect(await refusal(fs.readTextFile(file))).toBe("outside-root");
    await rm(file);
    await rename(`${file}.orig`, file);
    race.afterRealpath.set(file, () => swapForSymlink(path.join(dir, "d"), away));
    expect(await refusal(fs.readTextFile(file))).toBe("outside-root");
  });

  it("does not write outside when the parent directory becomes a symlink", async () => {
    const dir = await fresh(root);
    await mkdir(path.join(dir, "d"));
    const away = await fresh(outside);
    await writeFile(path.join(away, "f.txt"), "outside content");
    const fs = await warmFs();
    race.afterRealpath.set(path.join(dir, "d"), () => swapForSymlink(path.join(dir, "d"), away));
    expect(await refusal(fs.writeTextFile(path.join(dir, "d", "f.txt"), "overwritten"))).toBe("outside-root");
    expect(await readFile(path.join(away, "f.txt"), "utf8")).toBe("outside content");
  });

  it("does not create directories outside when a missing parent appears as a symlink", async () => {
    const dir = await fresh(root);
    const away = await fresh(outside);
    const fs = await warmFs();
    // The check finds `dir` as the deepest existing ancestor of dir/made/sub/f.txt; then `made` appears.
    race.afterRealpath.set(dir, () => symlink(away, path.join(dir, "made")));
    expect(await refusal(fs.writeTextFile(path.join(dir, "made", "sub", "f.txt"), "x"))).toBe("outside-root");
    expect(existsSync(path.join(away, "sub"))).toBe(false);
  });

  it("does not upload outside when the parent directory becomes a symlink, and leaves no temporary file", async () => {
    const dir = await fresh(root);
    await mkdir(path.join(dir, "d"));
    const away = await fresh(outside);
    const fs = await warmFs();
    race.afterRealpath.set(path.join(dir, "d"), () => swapForSymlink(path.join(dir, "d"), away));
    const upload = fs.writeStream(path.relative(root, path.join(dir, "d", "f.bin")), chunksOf("x"), { maxBytes: 10 });
    expect(await refusal(upload)).toBe("outside-root");
    expect(await readdir(away)).toEqual([]);
  });
});

async function* chunksOf(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield Buffer.from(part);
}

async function* failingAfter(part: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(part);
  throw new Error("the sender went away");
}

describe("ConfinedFs.writeStream", () => {
  it("leaves nothing when the sender goes away or sends too much: no file, no temporary file, no directory it made", async () => {
    const fs = new ConfinedFs(root);
    await expect(fs.writeStream("up/a/b.bin", failingAfter("partial"), { maxBytes: 100 })).rejects.toThrow(/went away/);
    expect(existsSync(path.join(root, "up"))).toBe(false);
    const tooLarge = fs.writeStream("sub/big.bin", chunksOf("12345", "67890", "x"), { maxBytes: 10 });
    await expect(tooLarge).rejects.toMatchObject({ reason: "too-large" });
    expect((await readdir(path.join(root, "sub"))).filter((n) => n.includes("big"))).toEqual([]);
    expect(await fs.writeStream("sub/ok.bin", chunksOf("12345", "67890"), { maxBytes: 10 })).toMatchObject({
      bytes: 10,
      replaced: false,
    });
    expect(await readFile(path.join(root, "sub", "ok.bin"), "utf8")).toBe("1234567890");
  });

  it("refuses to read a hard-linked file for download, and opens a plain one with its size", async () => {
    const fs = new ConfinedFs(root);
    await writeFile(path.join(outside, "linked-secret.txt"), "secret");
    await link(path.join(outside, "linked-secret.txt"), path.join(root, "linked-for-read.txt"));
    expect(await refusal(fs.openRead("linked-for-read.txt"))).toBe("hard-linked");
    const { handle, size } = await fs.openRead("sub/in.txt");
    await handle.close();
    expect(size).toBe("inside".length);
  });
});
