// Search, files and worktrees of a session another node runs (docs/cluster.md, "Search" and
// "Files and worktrees on any node"): two gateway processes on one real redis-server. Search on A
// finds what a session on B printed, never a session the caller may not see, once however many
// nodes hold a copy, and names B in `partial` while B is stopped; an upload on A into B's session
// lands byte for byte and is logged once, escapes are refused through the forward; a worktree's
// state, diff and removal work from the node that does not run it.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { TEST_TOKEN, api } from "../helpers/gateway.js";
import { gitRepo } from "../helpers/git-repo.js";
import type { ChildGateway } from "../helpers/serve-child.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "../helpers/wait-for.js";
import { afterFile, configuredNodes, listedEverywhere } from "./ws-forward-helpers.js";

const TEST_MS = 60_000;
const OPAL_TOKEN = "opal-token-0123456789abcdef0123456789";

let a: ChildGateway;
let b: ChildGateway;
let root: string;

beforeAll(async () => {
  root = realpathSync(tempDir());
  const opal = { name: "opal", token: OPAL_TOKEN, role: "operator", sessions: [] };
  const { nodes } = await configuredNodes(
    ["gw-a", "gw-b"],
    { auth: { tokens: [opal] }, worktrees: { roots: [root] } },
    { defer: afterFile },
  );
  [a, b] = nodes as [ChildGateway, ChildGateway];
}, TEST_MS);

/** Creates a session on `node` as `token` and waits until both nodes list it (each looks it up: a copy on demand). */
async function createOn(node: ChildGateway, body: Record<string, unknown>, token = TEST_TOKEN): Promise<string> {
  const id = await create(node, body, token);
  await listedEverywhere([a, b], id);
  return id;
}

async function create(node: ChildGateway, body: Record<string, unknown>, token = TEST_TOKEN): Promise<string> {
  const created = await api(node.url, token).post("/v1/sessions", body);
  expect(created.status, created.text).toBe(201);
  return created.json.id as string;
}

/**
 * Waits until `node` lists session `id` in `GET /v1/sessions` without naming it: a lookup of
 * the session would make the node copy its log (and index the copy), which a list does not.
 */
async function listedOn(node: ChildGateway, id: string): Promise<void> {
  await waitFor(async () => {
    const listed = (await api(node.url).get("/v1/sessions")).json.sessions as Array<{ id: string }>;
    return listed.some((s) => s.id === id);
  }, 15_000);
}

function search(node: ChildGateway, query: string, token = TEST_TOKEN) {
  return api(node.url, token).get(`/v1/search?${query}`);
}

describe("search over every node", () => {
  it(
    "finds on A what B's session printed, merges both nodes' hits once each, pages across nodes and hides others' sessions",
    async () => {
      const word = `quokka${randomBytes(3).toString("hex")}`;
      // A only lists B's session: it has no copy of its log, so the hit can only come from B.
      const onB = await create(b, { command: ["printf", `${word} from b\\n`] });
      const opals = await create(a, { command: ["printf", `${word} from a\\n`] }, OPAL_TOKEN);
      await listedOn(a, onB);
      const both = await waitFor(async () => {
        const res = await search(a, `q=${word}`);
        expect(res.status, res.text).toBe(200);
        return res.json.hits.length === 2 ? res.json : undefined;
      }, 15_000);
      expect(new Set(both.hits.map((h: { sessionId: string }) => h.sessionId))).toEqual(new Set([onB, opals]));
      expect(both.partial).toBeUndefined();

      // A copies B's session (a read of it there) and indexes the copy: still one hit of it.
      expect((await api(a.url).get(`/v1/sessions/${onB}/output`)).text).toContain(word);
      await waitFor(async () => (await search(a, `q=${word}&session=${onB}`)).json.hits.length === 1, 10_000);
      const again = await search(a, `q=${word}`);
      expect(again.json.hits.map((h: { sessionId: string; seq: number }) => `${h.sessionId}:${h.seq}`).sort()).toEqual(
        both.hits.map((h: { sessionId: string; seq: number }) => `${h.sessionId}:${h.seq}`).sort(),
      );

      // One hit a page: the two pages hold both sessions once, and the second says it is the last.
      const first = await search(a, `q=${word}&limit=1`);
      expect(first.json.hits).toHaveLength(1);
      expect(first.json.next).toEqual(expect.any(String));
      const second = await search(a, `q=${word}&limit=1&cursor=${encodeURIComponent(first.json.next as string)}`);
      expect(second.status, second.text).toBe(200);
      expect(second.json.hits).toHaveLength(1);
      expect(second.json.next).toBeUndefined();
      expect([first.json.hits[0].sessionId, second.json.hits[0].sessionId].sort()).toEqual([onB, opals].sort());

      // opal sees its own session only, on either node; B's is never shown to it.
      for (const node of [a, b]) {
        const mine = await search(node, `q=${word}`, OPAL_TOKEN);
        expect(mine.json.hits.map((h: { sessionId: string }) => h.sessionId)).toEqual([opals]);
      }
      expect((await search(a, `q=${word}&session=${onB}`, OPAL_TOKEN)).status).toBe(404);
    },
    TEST_MS,
  );

  it(
    "answers with the hits of the nodes that answered and names a stopped node in partial",
    async () => {
      const word = `wombat${randomBytes(3).toString("hex")}`;
      const onA = await create(a, { command: ["printf", `${word}\\n`] });
      const onB = await create(b, { command: ["printf", `${word}\\n`] });
      await listedOn(a, onB);
      await waitFor(async () => (await search(a, `q=${word}`)).json.hits.length === 2, 15_000);
      b.child.kill("SIGSTOP");
      try {
        const res = await search(a, `q=${word}`);
        expect(res.status, res.text).toBe(200);
        expect(res.json.partial).toEqual(["gw-b"]);
        expect(res.json.hits.map((h: { sessionId: string }) => h.sessionId)).toEqual([onA]);
      } finally {
        b.child.kill("SIGCONT");
      }
      await waitFor(async () => (await search(a, `q=${word}`)).json.hits.length === 2, 15_000);
      expect((await search(a, `q=${word}&session=${onB}`)).json.partial).toBeUndefined();
    },
    TEST_MS,
  );
});

describe("files and worktrees of a session another node runs", () => {
  it(
    "uploads on A into B's session byte for byte, logs it once, downloads it back, and refuses escapes through the forward",
    async () => {
      const cwd = realpathSync(tempDir());
      const outside = realpathSync(tempDir());
      writeFileSync(path.join(outside, "secret.txt"), "not yours\n");
      symlinkSync(path.join(outside, "secret.txt"), path.join(cwd, "link.txt"));
      const id = await createOn(b, { command: ["cat"], cwd });
      // Three pieces and a bit: the forward's pieces join up exactly.
      const bytes = randomBytes(3 * 256 * 1024 + 12_345);
      const put = await fetch(`${a.url}/v1/sessions/${id}/files?path=data/blob.bin`, {
        method: "PUT",
        headers: { authorization: `Bearer ${TEST_TOKEN}`, "content-type": "application/octet-stream" },
        body: bytes,
      });
      const uploaded = (await put.json()) as Record<string, unknown>;
      expect(put.status, JSON.stringify(uploaded)).toBe(201);
      expect(uploaded).toMatchObject({
        path: "data/blob.bin",
        bytes: bytes.length,
        sha256: createHash("sha256").update(bytes).digest("hex"),
        replaced: false,
      });
      mkdirSync(path.join(cwd, "data"), { recursive: true });
      expect(readFileSync(path.join(cwd, "data", "blob.bin")).equals(bytes)).toBe(true);
      // Logged once, by B, and A reads its own write.
      const events = (await api(a.url).get(`/v1/sessions/${id}/events?limit=1000`)).json.events as Array<{
        type: string;
        seq: number;
      }>;
      expect(events.filter((e) => e.type === "file.upload").map((e) => e.seq)).toEqual([uploaded["seq"]]);

      const got = await fetch(`${a.url}/v1/sessions/${id}/files?path=data/blob.bin`, {
        headers: { authorization: `Bearer ${TEST_TOKEN}` },
      });
      expect(got.status).toBe(200);
      expect(got.headers.get("content-length")).toBe(String(bytes.length));
      expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);

      const refused = async (method: string, where: string) => {
        const res = await fetch(`${a.url}/v1/sessions/${id}/files?path=${encodeURIComponent(where)}`, {
          method,
          headers: { authorization: `Bearer ${TEST_TOKEN}` },
          ...(method === "PUT" ? { body: "x" } : {}),
        });
        return { status: res.status, body: (await res.json()) as { error: { code: string } } };
      };
      expect(await refused("PUT", "../escape.txt")).toMatchObject({
        status: 403,
        body: { error: { code: "FILE_REFUSED" } },
      });
      expect(existsSync(path.join(path.dirname(cwd), "escape.txt"))).toBe(false);
      // Only B can tell that link.txt leads outside: refused there, and the answer comes back through A.
      expect(await refused("GET", "link.txt")).toMatchObject({
        status: 403,
        body: { error: { code: "FILE_REFUSED" } },
      });
      expect(await refused("PUT", "link.txt")).toMatchObject({
        status: 403,
        body: { error: { code: "FILE_REFUSED" } },
      });
      expect(readFileSync(path.join(outside, "secret.txt"), "utf8")).toBe("not yours\n");
      // opal may not steer the admin's session: refused on A before anything is forwarded.
      const theirs = await fetch(`${a.url}/v1/sessions/${id}/files?path=data/blob.bin`, {
        headers: { authorization: `Bearer ${OPAL_TOKEN}` },
      });
      expect(theirs.status).toBe(404);
    },
    TEST_MS,
  );

  it(
    "reads the worktree state and diff of B's session on A, and removes it from A",
    async () => {
      const repo = path.join(root, "app");
      gitRepo(repo, { "README.md": "hello\n" });
      const id = await createOn(b, { command: ["cat"], worktree: { repo, branch: "feature/x" } });
      const where = path.join(`${repo}.worktrees`, "feature-x");
      writeFileSync(path.join(where, "README.md"), "hello\nworld\n");
      const status = await api(a.url).get(`/v1/sessions/${id}/worktree`);
      expect(status.status, status.text).toBe(200);
      expect(status.json).toEqual({ branch: "feature/x", base: "main", dirty: true, changed: 1, ahead: 0, behind: 0 });
      expect(status.json).toEqual((await api(b.url).get(`/v1/sessions/${id}/worktree`)).json);
      const diff = await api(a.url).get(`/v1/sessions/${id}/worktree/diff`);
      expect(diff.status, diff.text).toBe(200);
      expect(diff.json.files.map((f: { path: string }) => f.path)).toEqual(["README.md"]);
      expect(JSON.stringify(diff.json)).toContain("+world");

      const removed = await api(a.url).del(`/v1/sessions/${id}?removeWorktree=true&discardChanges=true`);
      expect(removed.status, removed.text).toBe(200);
      expect(existsSync(where)).toBe(false);
      await waitFor(async () => (await api(a.url).get(`/v1/sessions/${id}/worktree`)).status === 409, 10_000);
    },
    TEST_MS,
  );
});
