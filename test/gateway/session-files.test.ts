// Files in and out of a session's working directory (PUT/GET /v1/sessions/:id/files?path=) on a
// real gateway: bytes round-trip exactly and the upload is logged; every escape (`..`, absolute,
// a symlink out in the middle or at the end, a hard link to a file outside, NUL, a 1 GB body by
// Content-Length or by counting) is refused with nothing written outside and no temporary file
// left; and a property run over hostile paths holds the same (fast-check).
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FILE_UPLOAD_MAX_BYTES } from "../../src/protocol/index.js";
import type { FileUploaded, SessionEvent } from "../../src/protocol/index.js";
import type { Gateway } from "../../src/server/gateway.js";
import { cli } from "../cli/helpers.js";
import { createSession } from "../helpers/gateway.js";
import { TOKENS, errorOf, eventsOf, http, secGateway } from "../security/helpers.js";
import type { Who } from "../security/helpers.js";

let gw: Gateway;
let base: string;
let cwd: string;
let outside: string;
let id: string;
const closers: (() => unknown)[] = [];
const SECRET = "outside secret\n";
/** Hostile paths tried: a fixed seed in CI; `npm run fuzz` runs FILES_FUZZ_RUNS random ones. */
const DEFAULT_RUNS = 60;
const FUZZ_RUNS = Number(process.env["FILES_FUZZ_RUNS"] ?? DEFAULT_RUNS);

beforeAll(async () => {
  base = realpathSync(mkdtempSync(path.join(tmpdir(), "sb-files-")));
  cwd = path.join(base, "work");
  outside = path.join(base, "outside");
  mkdirSync(path.join(cwd, "sub"), { recursive: true });
  mkdirSync(outside);
  writeFileSync(path.join(outside, "secret.txt"), SECRET);
  symlinkSync(outside, path.join(cwd, "link-out"));
  symlinkSync(path.join(outside, "secret.txt"), path.join(cwd, "file-out"));
  symlinkSync(path.join(cwd, "sub"), path.join(cwd, "link-in"));
  linkSync(path.join(outside, "secret.txt"), path.join(cwd, "hard"));
  gw = await secGateway({ defer: (fn) => void closers.unshift(fn) });
  id = (await createSession(gw, { command: ["cat"], cwd, name: "shared-files" }, TOKENS.alice)).id;
});

afterAll(async () => {
  for (const close of closers) await close();
  rmSync(base, { recursive: true, force: true });
});

function filesUrl(file: string): string {
  return `${gw.url}/v1/sessions/${id}/files?path=${encodeURIComponent(file)}`;
}

async function put(file: string, body: Buffer, who: Who = "alice"): Promise<{ status: number; json: any }> {
  const res = await fetch(filesUrl(file), {
    method: "PUT",
    headers: { authorization: `Bearer ${TOKENS[who]}`, "content-type": "application/octet-stream" },
    body: new Uint8Array(body),
  });
  return { status: res.status, json: await res.json() };
}

async function get(file: string, who: Who = "alice"): Promise<{ status: number; bytes: Buffer; json?: any }> {
  const res = await fetch(filesUrl(file), { headers: { authorization: `Bearer ${TOKENS[who]}` } });
  const bytes = Buffer.from(await res.arrayBuffer());
  return { status: res.status, bytes, ...(res.ok ? {} : { json: JSON.parse(bytes.toString("utf8")) }) };
}

/** Every file under `dir` (symlinks not followed) with its bytes: what must not change outside. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const full = path.join(entry.parentPath, entry.name);
    out[path.relative(dir, full)] = entry.isFile()
      ? readFileSync(full, "latin1")
      : entry.isDirectory()
        ? "<dir>"
        : "<link>";
  }
  return out;
}

/** Temporary upload files left anywhere in the working directory. */
function leftovers(): string[] {
  return Object.keys(snapshot(cwd)).filter((f) => f.endsWith(".upload"));
}

describe("session files", () => {
  it("round-trips bytes exactly, logs the upload and keeps a replaced file's permission bits", async () => {
    const bytes = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(3 * 1024 * 1024)]);
    const put1 = await put("sub/deeper/blob.bin", bytes);
    expect(put1.status).toBe(201);
    const answer = put1.json as FileUploaded;
    expect(answer).toMatchObject({ path: "sub/deeper/blob.bin", bytes: bytes.length, replaced: false });
    expect(readFileSync(path.join(cwd, "sub/deeper/blob.bin")).equals(bytes)).toBe(true);
    const back = await get("sub/deeper/blob.bin");
    expect(back.status).toBe(200);
    expect(back.bytes.equals(bytes)).toBe(true);
    const logged = (await eventsOf(gw, id)).find((e: SessionEvent) => e.type === "file.upload");
    expect(logged).toMatchObject({
      seq: answer.seq,
      path: "sub/deeper/blob.bin",
      bytes: bytes.length,
      sha256: answer.sha256,
    });
    expect(logged).toMatchObject({ by: { name: "alice" } });

    writeFileSync(path.join(cwd, "run.sh"), "old\n");
    chmodSync(path.join(cwd, "run.sh"), 0o4750);
    const replaced = await put("run.sh", Buffer.from("#!/bin/sh\necho new\n"));
    expect(replaced.json).toMatchObject({ replaced: true, bytes: 19 });
    // The permission bits, not the setuid bit.
    expect(statSync(path.join(cwd, "run.sh")).mode & 0o7777).toBe(0o750);
    // Through a symlink that stays inside: written where it points.
    expect((await put("link-in/via-link.txt", Buffer.from("in"))).status).toBe(201);
    expect(readFileSync(path.join(cwd, "sub", "via-link.txt"), "utf8")).toBe("in");
    expect((await get("empty-dir-missing.txt")).json.error.code).toBe("FILE_NOT_FOUND");
    expect(leftovers()).toEqual([]);
  });

  it("refuses every escape with nothing written outside and nothing left behind", async () => {
    const before = snapshot(outside);
    const refusals: Array<[string, string, string?]> = [
      ["../outside/new.txt", "FILE_REFUSED", "outside-root"],
      [path.join(outside, "abs.txt"), "FILE_REFUSED", "outside-root"],
      ["link-out/new.txt", "FILE_REFUSED", "outside-root"],
      ["link-out/secret.txt", "FILE_REFUSED", "outside-root"],
      ["file-out", "FILE_REFUSED", "outside-root"],
      ["hard", "FILE_REFUSED", "hard-linked"],
      ["sub", "FILE_REFUSED", "not-a-file"],
      ["a\0b", "FILE_REFUSED", "outside-root"],
      ["sub/../../outside/x", "FILE_REFUSED", "outside-root"],
    ];
    for (const [file, code, reason] of refusals) {
      const r = await put(file, Buffer.from("pwned\n"));
      expect([file, r.json.error?.code, r.json.error?.reason]).toEqual([file, code, reason]);
      const d = await get(file);
      expect(d.status, file).toBeGreaterThanOrEqual(400);
      expect(d.bytes.toString("utf8")).not.toContain("outside secret");
    }
    expect(snapshot(outside)).toEqual(before);
    expect(readFileSync(path.join(cwd, "hard"), "utf8")).toBe(SECRET);
    expect(leftovers()).toEqual([]);
  });

  it("refuses a 1 GB upload by its Content-Length before reading it, and one without a length by counting", async () => {
    // Declared 1 GB, 64 KiB sent: the answer comes at once and the connection closes.
    const declared = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(filesUrl("huge.bin"), {
        method: "PUT",
        headers: { authorization: `Bearer ${TOKENS.alice}`, "content-length": String(1024 ** 3) },
      });
      req.on("response", (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode!, body }));
      });
      req.on("error", reject);
      req.write(Buffer.alloc(64 * 1024));
    });
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body).error.code).toBe("PAYLOAD_TOO_LARGE");

    // Chunked: refused once past FILE_UPLOAD_MAX_BYTES, the partial file removed.
    const chunk = Buffer.alloc(1024 * 1024, 7);
    const chunks = FILE_UPLOAD_MAX_BYTES / chunk.length + 2;
    const counted = await new Promise<number>((resolve, reject) => {
      const req = request(filesUrl("sub/new-dir/huge.bin"), {
        method: "PUT",
        headers: { authorization: `Bearer ${TOKENS.alice}`, "transfer-encoding": "chunked" },
      });
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      // The gateway closes the connection once it refused: what was still being sent fails.
      req.on("error", (error) =>
        String(error).includes("EPIPE") || String(error).includes("ECONNRESET") ? undefined : reject(error),
      );
      let sent = 0;
      const more = () => {
        while (sent < chunks) {
          sent++;
          if (!req.write(chunk)) return void req.once("drain", more);
        }
        req.end();
      };
      more();
    });
    expect(counted).toBe(413);
    expect(() => statSync(path.join(cwd, "sub", "new-dir"))).toThrow(/ENOENT/);
    expect(() => statSync(path.join(cwd, "huge.bin"))).toThrow(/ENOENT/);
    expect(leftovers()).toEqual([]);
  });

  it("takes uploads and downloads from those who may steer the session only", async () => {
    expect(
      errorOf({ ...(await put("v.txt", Buffer.from("x"), "vera")), headers: new Headers(), text: "" }),
    ).toMatchObject({
      status: 403,
      code: "FORBIDDEN",
    });
    expect((await get("run.sh", "vera")).status).toBe(403);
    expect((await get("run.sh", "bob")).status).toBe(404);
    expect((await put("b.txt", Buffer.from("x"), "bob")).status).toBe(404);
    expect(statSync(path.join(cwd, "b.txt"), { throwIfNoEntry: false })).toBeUndefined();
    // Absent path: a usage mistake, not a file.
    expect((await http(gw, "alice").call("PUT", `/v1/sessions/${id}/files`, "x")).status).toBe(400);
  });

  it("puts and gets files from the CLI, byte for byte", async () => {
    const env = { SWITCHBOARD_URL: gw.url, SWITCHBOARD_TOKEN: TOKENS.alice };
    const local = path.join(base, "local.bin");
    const bytes = randomBytes(200_000);
    writeFileSync(local, bytes);
    const put1 = await cli(["put", id, local, "sub/from-cli.bin"], env);
    expect(put1).toMatchObject({ code: 0, stderr: "" });
    expect(put1.stdout).toMatch(/^sub\/from-cli\.bin 200000 bytes sha256 [0-9a-f]{64}\n$/);
    const copy = path.join(base, "copy.bin");
    expect(await cli(["get", id, "sub/from-cli.bin", "-o", copy], env)).toMatchObject({ code: 0 });
    expect(readFileSync(copy).equals(bytes)).toBe(true);
  });

  it("never writes outside for any hostile path (property)", async () => {
    const before = snapshot(outside);
    const segment = fc.oneof(
      fc.constantFrom("..", ".", "", "link-out", "file-out", "hard", "link-in", "sub", "secret.txt", "a\0b"),
      fc.constantFrom("ü.txt", "日本語", "e\u0301", "x".repeat(300), "new.txt", "%2e%2e", "..\\..", " "),
    );
    const hostile = fc
      .tuple(fc.boolean(), fc.array(segment, { minLength: 1, maxLength: 5 }))
      .map(([absolute, parts]) => (absolute ? "/" : "") + parts.join("/"));
    await fc.assert(
      fc.asyncProperty(hostile, async (file) => {
        const r = await put(file, Buffer.from("hostile"));
        if (r.status === 201) {
          // Written: somewhere inside the working directory, exactly these bytes.
          const real = realpathSync(path.join(cwd, file));
          expect(real.startsWith(`${cwd}/`)).toBe(true);
          expect(readFileSync(real, "utf8")).toBe("hostile");
        } else {
          expect([400, 403, 404, 409]).toContain(r.status);
        }
        const d = await get(file);
        expect(d.bytes.toString("latin1")).not.toContain("outside secret");
      }),
      { numRuns: FUZZ_RUNS, ...(FUZZ_RUNS === DEFAULT_RUNS ? { seed: 20261127 } : {}) },
    );
    expect(snapshot(outside)).toEqual(before);
    expect(readFileSync(path.join(cwd, "hard"), "utf8")).toBe(SECRET);
    expect(leftovers()).toEqual([]);
  });
});
