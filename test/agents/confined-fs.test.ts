import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfinedFs, FsAccessError } from "../../src/agents/confined-fs.js";

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

describe("ConfinedFs", () => {
  const fs = (): ConfinedFs => new ConfinedFs(root);

  it("reads relative paths against the root and paths through an alias of the root", async () => {
    expect(await fs().readTextFile("sub/in.txt")).toBe("inside");
    expect(await fs().readTextFile(path.join(base, "root-alias", "sub", "in.txt"))).toBe("inside");
    expect(await new ConfinedFs(path.join(base, "root-alias")).readTextFile(path.join(root, "sub", "in.txt"))).toBe(
      "inside",
    );
  });

  it("refuses a write through a dangling symlink that points outside, creating nothing", async () => {
    expect(await refusal(fs().writeTextFile(path.join(root, "dangling-out"), "x"))).toBe("outside-root");
    expect(existsSync(path.join(outside, "created-by-write.txt"))).toBe(false);
  });

  it("writes through a symlink that stays inside to its target", async () => {
    await fs().writeTextFile(path.join(root, "link-in"), "rewritten");
    expect(await readFile(path.join(root, "sub", "in.txt"), "utf8")).toBe("rewritten");
  });

  it("refuses .. even when it would land inside, and reports missing files and directories", async () => {
    expect(await refusal(fs().readTextFile("sub/../sub/in.txt"))).toBe("outside-root");
    expect(await refusal(fs().readTextFile("missing.txt"))).toBe("not-found");
    expect(await refusal(fs().readTextFile("sub"))).toBe("not-a-file");
  });
});
