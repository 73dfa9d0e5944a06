// Worktree sessions on a real repository (real git, a real gateway on 127.0.0.1:0): a session
// created with `worktree` runs in a new worktree of its branch; its info names the branch, the
// worktree route says dirty and ahead, the diff route shows commits and uncommitted changes
// against the base; deleting it with removeWorktree is refused while it is dirty, unless
// discardChanges. Repositories outside worktrees.roots and git's own refusals are clear errors.
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionInfo, WorktreeDiff, WorktreeStatus } from "../../src/protocol/index.js";
import type { Gateway } from "../../src/server/gateway.js";
import { cli } from "../cli/helpers.js";
import { git, gitRepo } from "../helpers/git-repo.js";
import { TOKENS, errorOf, http, secGateway } from "../security/helpers.js";

let gw: Gateway;
let base: string;
let root: string;
let repo: string;
const closers: (() => unknown)[] = [];

beforeAll(async () => {
  base = realpathSync(mkdtempSync(path.join(tmpdir(), "sb-worktree-")));
  root = path.join(base, "src");
  repo = path.join(root, "app");
  gitRepo(repo, { "README.md": "hello\n" });
  gw = await secGateway({ defer: (fn) => void closers.unshift(fn), config: { worktrees: { roots: [root] } } });
});

afterAll(async () => {
  for (const close of closers) await close();
  rmSync(base, { recursive: true, force: true });
});

async function create(body: Record<string, unknown>) {
  return http(gw, "alice").post("/v1/sessions", body);
}

describe("worktree sessions", () => {
  it("runs a terminal session in a new worktree of a new branch, shows its state and diff, and removes it only when clean", async () => {
    const created = await create({ command: ["cat"], worktree: { repo, branch: "feature/one" } });
    expect(created.status).toBe(201);
    const info = created.json as SessionInfo;
    const where = path.join(`${repo}.worktrees`, "feature-one");
    expect(info.cwd).toBe(where);
    expect(info.worktree).toEqual({ repo, path: where, branch: "feature/one", base: "main", newBranch: true });
    expect(git(where, "rev-parse", "--abbrev-ref", "HEAD").trim()).toBe("feature/one");

    const clean = (await http(gw, "alice").get(`/v1/sessions/${info.id}/worktree`)).json as WorktreeStatus;
    expect(clean).toEqual({ branch: "feature/one", base: "main", dirty: false, changed: 0, ahead: 0, behind: 0 });

    // A commit and an uncommitted change: ahead 1, dirty; the diff has both against main.
    writeFileSync(path.join(where, "feature.txt"), "one\n");
    git(where, "add", "feature.txt");
    git(where, "commit", "-q", "-m", "feature");
    writeFileSync(path.join(where, "README.md"), "hello\nworld\n");
    writeFileSync(path.join(where, "scratch.txt"), "untracked\n");
    const dirty = (await http(gw, "alice").get(`/v1/sessions/${info.id}/worktree`)).json as WorktreeStatus;
    expect(dirty).toMatchObject({ dirty: true, changed: 2, ahead: 1, behind: 0 });
    const diff = (await http(gw, "alice").get(`/v1/sessions/${info.id}/worktree/diff`)).json as WorktreeDiff;
    expect(diff.mergeBase).toBe(git(repo, "rev-parse", "main").trim());
    expect(diff.untracked).toEqual(["scratch.txt"]);
    expect(diff.files.map((f) => [f.path, f.status, f.added, f.removed])).toEqual([
      ["README.md", "modified", 1, 0],
      ["feature.txt", "added", 1, 0],
    ]);
    expect(diff.files[0]!.hunks).toBe("@@ -1 +1,2 @@\n hello\n+world\n");

    // Dirty: refused, and nothing was stopped or removed.
    const refused = await http(gw, "alice").del(`/v1/sessions/${info.id}?removeWorktree=true`);
    expect(errorOf(refused)).toMatchObject({ status: 409, code: "WORKTREE_DIRTY" });
    expect(errorOf(refused).message).toContain("README.md");
    expect(existsSync(path.join(where, "scratch.txt"))).toBe(true);
    expect(((await http(gw, "alice").get(`/v1/sessions/${info.id}`)).json as SessionInfo).state).toBe("running");

    // Committed: removed; the branch keeps its commits.
    git(where, "add", "-A");
    git(where, "commit", "-q", "-m", "more");
    const removed = await http(gw, "alice").del(`/v1/sessions/${info.id}?removeWorktree=true`);
    expect(removed.status).toBe(200);
    expect((removed.json as SessionInfo).worktree?.removedAt).toEqual(expect.any(Number));
    expect(existsSync(where)).toBe(false);
    expect(git(repo, "log", "--format=%s", "feature/one").trim().split("\n")).toEqual(["more", "feature", "first"]);
    expect(git(repo, "worktree", "list", "--porcelain")).not.toContain(where);
  });

  it("discards uncommitted work only when asked to, and runs an agent session in an existing branch", async () => {
    git(repo, "branch", "existing");
    const created = await create({
      kind: "agent",
      agent: "echo",
      worktree: { repo, branch: "existing", base: "main" },
    });
    expect(created.status).toBe(201);
    const info = created.json as SessionInfo;
    expect(info.worktree).toMatchObject({ branch: "existing", newBranch: false });
    writeFileSync(path.join(info.cwd!, "wip.txt"), "work in progress\n");
    const purged = await http(gw, "alice").del(
      `/v1/sessions/${info.id}?purge=true&force=true&removeWorktree=true&discardChanges=true`,
    );
    expect(purged.status).toBe(200);
    expect(existsSync(info.cwd!)).toBe(false);
    expect(git(repo, "branch", "--list", "existing").trim()).toBe("existing");
  });

  it("runs and removes a worktree session from the CLI (run --worktree, kill --remove-worktree)", async () => {
    const env = { SWITCHBOARD_URL: gw.url, SWITCHBOARD_TOKEN: TOKENS.alice };
    const ran = await cli(["run", "--cwd", repo, "--worktree", "cli-branch", "--base", "main", "--json", "cat"], env);
    expect(ran.code).toBe(0);
    const info = JSON.parse(ran.stdout) as SessionInfo;
    expect(info.worktree).toMatchObject({ branch: "cli-branch", base: "main" });
    writeFileSync(path.join(info.cwd!, "wip.txt"), "x\n");
    const refused = await cli(["kill", "--remove-worktree", info.id], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("WORKTREE_DIRTY");
    expect(existsSync(info.cwd!)).toBe(true);
    const killed = await cli(["kill", "--remove-worktree", "--discard-changes", info.id], env);
    expect(killed.code).toBe(0);
    expect(existsSync(info.cwd!)).toBe(false);
  });

  it("refuses a repository outside the roots, a branch checked out elsewhere, and cwd with worktree, leaving nothing behind", async () => {
    const outside = path.join(base, "elsewhere");
    mkdirSync(outside, { recursive: true });
    git(outside, "init", "-q", "-b", "main");
    expect(errorOf(await create({ command: ["cat"], worktree: { repo: outside, branch: "x" } }))).toMatchObject({
      status: 403,
      code: "OUTSIDE_ROOTS",
    });
    // main is checked out in the repository itself: git refuses, and says so.
    const taken = errorOf(await create({ command: ["cat"], worktree: { repo, branch: "main" } }));
    expect(taken).toMatchObject({ status: 409, code: "GIT_FAILED" });
    expect(taken.message).toMatch(/already checked out|already used by worktree/);
    const badBase = errorOf(await create({ command: ["cat"], worktree: { repo, branch: "b2", base: "nope" } }));
    expect(badBase).toMatchObject({ code: "GIT_FAILED" });
    expect(badBase.message).toContain("nope");
    expect(errorOf(await create({ command: ["cat"], cwd: repo, worktree: { repo, branch: "b3" } }))).toMatchObject({
      code: "VALIDATION_FAILED",
    });
    expect(errorOf(await create({ command: ["cat"], worktree: { repo, branch: "--force" } }))).toMatchObject({
      code: "VALIDATION_FAILED",
    });
    // A session that cannot start takes its new worktree and branch away with it.
    const failed = errorOf(await create({ command: ["/no/such/program"], worktree: { repo, branch: "doomed" } }));
    expect(failed.code).toBe("SPAWN_FAILED");
    expect(git(repo, "branch", "--list", "doomed").trim()).toBe("");
    expect(existsSync(path.join(`${repo}.worktrees`, "doomed"))).toBe(false);
  });
});
