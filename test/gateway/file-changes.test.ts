// What an agent changed, per run: the scripted agent (test/agents/fixtures/scripted-agent.mjs,
// ops "edit" and "report") writes files through the gateway (fs/write_text_file) and reports
// edits it made itself (tool call diff content). The run's change list and patch show the exact
// diff, and `git apply` of the patch (real git, a copy of the old tree) gives the new files.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChangesAnswer, SessionEvent } from "../../src/protocol/index.js";
import type { Gateway } from "../../src/server/gateway.js";
import { cli } from "../cli/helpers.js";
import { createSession } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";
import { TOKENS, eventsOf, http, secGateway } from "../security/helpers.js";

const SCRIPTED_AGENT = fileURLToPath(new URL("../agents/fixtures/scripted-agent.mjs", import.meta.url));

let gw: Gateway;
let base: string;
let cwd: string;
let id: string;
/** What the gateway's start registered to undo, last first (its data dir goes after it closed). */
const closers: (() => unknown)[] = [];

const OLD_MAIN = "line 1\nline 2\nline 3\nline 4\nline 5\nline 6\nline 7\nline 8\n";

beforeAll(async () => {
  base = mkdtempSync(path.join(tmpdir(), "sb-changes-"));
  cwd = path.join(base, "work");
  mkdirSync(path.join(cwd, "src"), { recursive: true });
  writeFileSync(path.join(cwd, "src", "main.txt"), OLD_MAIN);
  writeFileSync(path.join(cwd, "notes.md"), "# Notes\n\nkeep\nold line\nkeep too\n");
  writeFileSync(path.join(cwd, "blob.bin"), Buffer.from([0xff, 0x00, 0xfe, 0x01]));
  gw = await secGateway({
    defer: (fn) => void closers.unshift(fn),
    config: { agents: { scripted: { adapter: "acp", command: [process.execPath, SCRIPTED_AGENT], cwd } } },
  });
  const session = await createSession(gw, { kind: "agent", agent: "scripted", name: "changes" }, TOKENS.alice);
  id = session.id as string;
});

afterAll(async () => {
  for (const close of closers) await close();
  rmSync(base, { recursive: true, force: true });
});

/** Prompts `script` as alice and waits for its run's end. */
async function run(script: Record<string, unknown>): Promise<{ runId: string; events: SessionEvent[] }> {
  const { json } = await http(gw, "alice").post(`/v1/sessions/${id}/prompt`, { text: JSON.stringify(script) });
  const runId = json.runId as string;
  const events = await waitFor(
    async () => {
      const all = await eventsOf(gw, id);
      return all.some((e) => "runId" in e && e.runId === runId && e.type === "chat.final") ? all : undefined;
    },
    20_000,
    "run end",
  );
  return { runId, events: events.filter((e) => "runId" in e && e.runId === runId) };
}

/** `patch` applied with real git to a copy of `tree` (a map of path to content): the files after. */
function gitApply(tree: Record<string, string>, patch: string): (file: string) => string | null {
  const dir = mkdtempSync(path.join(base, "apply-"));
  for (const [file, text] of Object.entries(tree)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  }
  execFileSync("git", ["init", "-q"], { cwd: dir });
  writeFileSync(path.join(dir, "change.patch"), patch);
  execFileSync("git", ["apply", "--whitespace=nowarn", "change.patch"], { cwd: dir });
  return (file) => {
    try {
      return readFileSync(path.join(dir, file), "utf8");
    } catch {
      // Not there: the patch did not make it.
      return null;
    }
  };
}

describe("changes per run", () => {
  it("a write through the gateway is logged with its diff, listed, and its patch applies", async () => {
    const newMain = OLD_MAIN.replace("line 2\n", "line two\n").replace("line 7\n", "line 7\nline 7½\n");
    const main = path.join(cwd, "src", "main.txt");
    const { runId, events } = await run({ op: "edit", path: main, content: newMain, oldText: OLD_MAIN, id: "e-1" });
    const change = events.find((e) => e.type === "file.change");
    expect(change).toMatchObject({
      path: "src/main.txt",
      source: "write",
      content: "text",
      toolCallId: "e-1",
      oldText: OLD_MAIN,
      newText: newMain,
      added: 2,
      removed: 1,
    });
    expect((change as { diff: string }).diff).toBe(
      "@@ -1,8 +1,9 @@\n line 1\n-line 2\n+line two\n line 3\n line 4\n line 5\n line 6\n line 7\n+line 7½\n line 8\n",
    );
    // The tool call keeps its locations and diff content.
    const tool = events.find((e) => e.type === "tool" && e.status === "pending");
    expect(tool).toMatchObject({
      locations: [{ path: main }],
      content: [{ type: "diff", path: main, newText: newMain }],
    });

    const list = (await http(gw, "alice").get(`/v1/sessions/${id}/runs/${runId}/changes`)).json as ChangesAnswer;
    expect(list).toMatchObject({ sessionId: id, runId });
    expect(list.files).toEqual([
      expect.objectContaining({ path: "src/main.txt", status: "modified", added: 2, removed: 1, toolCallId: "e-1" }),
    ]);
    const patch = await http(gw, "alice").get(`/v1/sessions/${id}/runs/${runId}/patch`);
    expect(patch.status).toBe(200);
    expect(patch.headers.get("content-type")).toMatch(/^text\/x-diff/);
    expect(patch.text).toMatch(
      /^diff --git a\/src\/main.txt b\/src\/main.txt\n--- a\/src\/main.txt\n\+\+\+ b\/src\/main.txt\n@@/,
    );
    expect(gitApply({ "src/main.txt": OLD_MAIN }, patch.text)("src/main.txt")).toBe(newMain);
  });

  it("a new file and an edit reported only as tool call diff content apply; runs combine per session", async () => {
    const readme = path.join(cwd, "docs", "README.md");
    const notes = path.join(cwd, "notes.md");
    const notesOld = readFileSync(notes, "utf8");
    const notesNew = notesOld.replace("old line\n", "new line\nand one more\n");
    // One run: a new file written twice through the gateway, and an edit the agent made itself and
    // reported as Claude Code does (the region only: old_string and new_string).
    const first = await run({ op: "edit", path: readme, content: "draft\n", id: "w-1" });
    const firstRun = first.runId;
    expect(first.events.find((e) => e.type === "file.change")).toMatchObject({ path: "docs/README.md", oldText: null });
    const { runId } = await run({
      op: "report",
      path: notes,
      write: notesNew,
      diffs: [{ oldText: "old line\n", newText: "new line\nand one more\n" }],
      id: "r-1",
    });
    const reported = (await eventsOf(gw, id)).find((e) => e.type === "file.change" && e.runId === runId);
    expect(reported).toMatchObject({
      path: "notes.md",
      source: "reported",
      toolCallId: "r-1",
      oldText: notesOld,
      newText: notesNew,
    });
    expect(reported).not.toHaveProperty("region");
    const patch = (await http(gw, "alice").get(`/v1/sessions/${id}/runs/${runId}/patch`)).text;
    expect(gitApply({ "notes.md": notesOld }, patch)("notes.md")).toBe(notesNew);

    // A second write of the new file in its own run, then the session's list combines both runs.
    const second = await run({ op: "edit", path: readme, content: "# Read me\n\nfinal\n", id: "w-2" });
    const newPatch = (await http(gw, "alice").get(`/v1/sessions/${id}/runs/${second.runId}/patch`)).text;
    expect(newPatch).not.toContain("new file mode");
    const all = (await http(gw, "alice").get(`/v1/sessions/${id}/changes`)).json as ChangesAnswer;
    const readmeChange = all.files.find((f) => f.path === "docs/README.md");
    expect(readmeChange).toMatchObject({ status: "added", changes: 2, runIds: [firstRun, second.runId] });
    expect(readmeChange?.diff).toBe("@@ -0,0 +1,3 @@\n+# Read me\n+\n+final\n");
  });

  it("a run that writes one file twice lists one change from the first old text to the last new text", async () => {
    const file = path.join(cwd, "twice.txt");
    writeFileSync(file, "a\nb\nc\n");
    const { runId, events } = await run({
      op: "edits",
      edits: [
        { path: file, content: "a\nB\nc\n", id: "t-1" },
        { path: file, content: "a\nB\nc\nd\n", id: "t-2" },
      ],
    });
    expect(events.filter((e) => e.type === "file.change")).toHaveLength(2);
    const list = (await http(gw, "alice").get(`/v1/sessions/${id}/runs/${runId}/changes`)).json as ChangesAnswer;
    expect(list.files).toEqual([
      expect.objectContaining({ path: "twice.txt", added: 2, removed: 1, changes: 2, toolCallId: "t-2" }),
    ]);
    expect(list.files[0]!.diff).toBe("@@ -1,3 +1,4 @@\n a\n-b\n+B\n c\n+d\n");
    const patch = (await http(gw, "alice").get(`/v1/sessions/${id}/runs/latest/patch`)).text;
    expect(gitApply({ "twice.txt": "a\nb\nc\n" }, patch)("twice.txt")).toBe("a\nB\nc\nd\n");
    // The CLI prints the same patch (the latest run when none is named), without colors off a terminal.
    const env = { SWITCHBOARD_URL: gw.url, SWITCHBOARD_TOKEN: TOKENS.alice };
    expect(await cli(["diff", id], env)).toEqual({ code: 0, stdout: patch, stderr: "" });
    const listed = await cli(["diff", id, runId, "--json"], env);
    expect(JSON.parse(listed.stdout)).toMatchObject({ runId, files: [{ path: "twice.txt", added: 2 }] });
    const unknown = await cli(["diff", id, "no-such-run"], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("RUN_NOT_FOUND");
    expect(unknown.stderr).toContain(runId);
  });

  it("a binary file keeps sizes and hashes, no diff", async () => {
    const { runId, events } = await run({ op: "edit", path: path.join(cwd, "blob.bin"), content: "text now\n" });
    const change = events.find((e) => e.type === "file.change");
    expect(change).toMatchObject({ content: "binary", oldBytes: 4, newBytes: 9, path: "blob.bin" });
    expect(change).not.toHaveProperty("diff");
    expect((change as { oldSha256: string }).oldSha256).toMatch(/^[0-9a-f]{64}$/);
    const list = (await http(gw, "alice").get(`/v1/sessions/${id}/runs/${runId}/changes`)).json as ChangesAnswer;
    expect(list.files).toEqual([expect.objectContaining({ path: "blob.bin", content: "binary", added: 0 })]);
    const patch = (await http(gw, "alice").get(`/v1/sessions/${id}/runs/${runId}/patch`)).text;
    expect(patch).toBe("# blob.bin: binary change, not in this patch\n");
  });

  it("a reported diff that cannot be placed in the file is listed as a region, left out of the patch", async () => {
    const file = path.join(cwd, "region.txt");
    writeFileSync(file, "one\ntwo\nthree\n");
    const { runId } = await run({ op: "report", path: file, diffs: [{ oldText: "alpha\n", newText: "beta\n" }] });
    const list = (await http(gw, "alice").get(`/v1/sessions/${id}/runs/${runId}/changes`)).json as ChangesAnswer;
    expect(list.files).toEqual([
      expect.objectContaining({ path: "region.txt", region: true, diff: "@@ -1,1 +1,1 @@\n-alpha\n+beta\n" }),
    ]);
    const patch = (await http(gw, "alice").get(`/v1/sessions/${id}/runs/${runId}/patch`)).text;
    expect(patch).toBe("# region.txt: only a region was reported, not in this patch\n");
  });

  it("reading needs the session's log access; an unknown run is RUN_NOT_FOUND naming the latest", async () => {
    const bob = await http(gw, "bob").get(`/v1/sessions/${id}/changes`);
    expect(bob.status).toBe(404);
    expect(bob.json.error.code).toBe("SESSION_NOT_FOUND");
    const missing = await http(gw, "alice").get(`/v1/sessions/${id}/runs/nope/patch`);
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe("RUN_NOT_FOUND");
    const all = (await http(gw, "alice").get(`/v1/sessions/${id}/changes`)).json as ChangesAnswer;
    expect(missing.json.error.message).toContain(all.runs.at(-1));
  });
});
