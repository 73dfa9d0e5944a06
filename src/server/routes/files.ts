import { once } from "node:events";
import type { FileHandle } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { PassThrough } from "node:stream";
import { ConfinedFs, FsAccessError } from "../../agents/confined-fs.js";
import { FILE_DOWNLOAD_MAX_BYTES, FILE_UPLOAD_MAX_BYTES, SwitchboardError } from "../../protocol/index.js";
import type { FileUploaded } from "../../protocol/index.js";
import type { Session } from "../../sessions/session.js";
import { sessionFor } from "../identity/access.js";
import { actorOf } from "../identity/auth.js";
import type { GatewayCore, RequestContext } from "../context.js";
import { SECURITY_HEADERS, queryParam, sendError, sendJson, validate } from "../http/http.js";
import type { Router } from "../http/router.js";
import { forwardToOwner, ownerElsewhere } from "../cluster/session-forwarding.js";
import type { SessionAction, SessionAnswer, SessionCall } from "../cluster/session-forwarding.js";
import type { Identity } from "../identity/identity.js";
import { FILE_FORWARD_CHUNK_BYTES, FileChunkBody, FileOpenBody } from "./file-transfers.js";

/** Characters of a `path` parameter (PATH_MAX). */
const FILE_PATH_MAX_CHARS = 4096;

/**
 * Files in and out of a session's working directory (docs/protocol.md, "Files"):
 * `PUT /v1/sessions/:id/files?path=` uploads the body (raw bytes), `GET` downloads. Both need
 * steer access (operators who may steer the session, admins): a file in the working directory is
 * more than its log shows. Confined as an agent's `fs/*` is (src/agents/confined-fs.ts); an
 * upload is logged as a `file.upload` event. test/gateway/session-files.test.ts holds the escapes.
 */
export function fileRoutes(router: Router, core: GatewayCore): void {
  router.add("PUT", "/v1/sessions/:id/files", (ctx) => upload(core, ctx));
  router.add("GET", "/v1/sessions/:id/files", (ctx) => download(core, ctx));
}

/** The session whose files are asked for, and the node that runs it when another does (cluster mode). */
function sessionOf(core: GatewayCore, identity: Identity, sessionId: string): { session: Session; owner?: string } {
  const session = sessionFor(core.sessions, identity, sessionId, "steer");
  const owner = ownerElsewhere(core, session.id, identity);
  if (owner !== undefined) return { session, owner };
  if (session.record.cwd === null) {
    throw new SwitchboardError(
      "WRONG_SESSION_KIND",
      `session ${session.id} has no working directory (a stream session)`,
    );
  }
  return { session };
}

/**
 * The `path` parameter: relative to the working directory. Absolute paths, `..`, NUL and empty
 * segments are refused here, before the file system is asked; symlinks and hard links by ConfinedFs.
 */
function requestedPath(raw: string | null): string {
  if (raw === null || raw === "")
    throw new SwitchboardError("BAD_REQUEST", "path is required: a file relative to the session's working directory");
  const refuse = (why: string) =>
    new SwitchboardError("FILE_REFUSED", `path ${JSON.stringify(raw.slice(0, 200))} ${why}`, {
      reason: "outside-root",
    });
  if (raw.length > FILE_PATH_MAX_CHARS) throw refuse(`is longer than ${FILE_PATH_MAX_CHARS} characters`);
  if (raw.includes("\0")) throw refuse("contains a NUL byte");
  if (raw.startsWith("/")) throw refuse("is absolute: give it relative to the session's working directory");
  const segments = raw.split("/");
  if (segments.some((s) => s === ".." || s === "." || s === "")) throw refuse("has a . or .. segment or an empty one");
  return raw;
}

/** A ConfinedFs refusal as the error a client gets. */
function fileError(error: unknown): unknown {
  if (!(error instanceof FsAccessError)) {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === "ENAMETOOLONG")
      return new SwitchboardError("BAD_REQUEST", "a name in path is too long for the file system");
    if (code === "EACCES" || code === "EPERM" || code === "EROFS")
      return new SwitchboardError("FILE_REFUSED", `the file system refused it (${code})`, { reason: "not-permitted" });
    return error;
  }
  return error;
}

/** Refuses the upload and closes the connection: the rest of a large body is never read. */
function refuseUpload(req: IncomingMessage, ctx: RequestContext, error: unknown): void {
  ctx.res.once("finish", () => req.destroy());
  sendError(ctx.res, fileError(error), { Connection: "close" });
}

async function upload(core: GatewayCore, ctx: RequestContext): Promise<void> {
  const { req } = ctx;
  let place: { session: Session; owner?: string };
  let requested: string;
  try {
    place = sessionOf(core, ctx.identity, ctx.params["id"]!);
    requested = requestedPath(queryParam(ctx.url, "path"));
    if (place.owner === undefined) {
      place.session.assertRunning();
      place.session.log.assertWritable();
    }
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > FILE_UPLOAD_MAX_BYTES) {
      throw new SwitchboardError(
        "PAYLOAD_TOO_LARGE",
        `the file is ${declared} bytes; the limit is ${FILE_UPLOAD_MAX_BYTES} (FILE_UPLOAD_MAX_BYTES)`,
      );
    }
  } catch (error) {
    refuseUpload(req, ctx, error);
    return;
  }
  if (place.owner !== undefined) {
    await forwardUpload(core, ctx, place.owner, requested);
    return;
  }
  const { session } = place;
  let written: { bytes: number; sha256: string; replaced: boolean };
  try {
    const fs = new ConfinedFs(session.record.cwd!);
    written = await fs.writeStream(requested, req, { maxBytes: FILE_UPLOAD_MAX_BYTES });
  } catch (error) {
    refuseUpload(req, ctx, error);
    return;
  }
  sendJson(ctx.res, 201, logUpload(core, session, requested, written, ctx.identity));
}

/** The `file.upload` event of a written file (logged once, by the node that runs the session) and the answer. */
function logUpload(
  core: GatewayCore,
  session: Session,
  requested: string,
  written: { bytes: number; sha256: string; replaced: boolean },
  identity: Identity,
): FileUploaded {
  const event = session.log.append({
    type: "file.upload",
    path: requested,
    bytes: written.bytes,
    sha256: written.sha256,
    replaced: written.replaced,
    by: actorOf(identity),
  });
  core.logger.info({ session: session.id, path: requested, bytes: written.bytes, by: identity.name }, "file uploaded");
  return { path: requested, ...written, seq: event.seq };
}

async function download(core: GatewayCore, ctx: RequestContext): Promise<void> {
  const place = sessionOf(core, ctx.identity, ctx.params["id"]!);
  const requested = requestedPath(queryParam(ctx.url, "path"));
  if (place.owner !== undefined) {
    await forwardDownload(core, ctx, place.owner, requested);
    return;
  }
  const { session } = place;
  const { handle, size } = await openDownload(session, requested);
  sendDownloadHead(ctx, requested, size);
  if (ctx.req.method === "HEAD" || size === 0) {
    await handle.close();
    ctx.res.end();
    return;
  }
  // Exactly the size fstat gave: a file that grows meanwhile is cut there, one that shrinks ends the response short.
  const stream = handle.createReadStream({ start: 0, end: size - 1 });
  await new Promise<void>((resolve) => {
    stream.on("error", (error) => {
      core.logger.warn({ err: error, session: session.id, path: requested }, "a download failed; the response was cut");
      ctx.res.destroy();
      resolve();
    });
    stream.on("close", resolve);
    ctx.res.on("close", () => stream.destroy());
    stream.pipe(ctx.res);
  });
}

/** The file to download, open, within FILE_DOWNLOAD_MAX_BYTES. */
async function openDownload(session: Session, requested: string): Promise<{ handle: FileHandle; size: number }> {
  const fs = new ConfinedFs(session.record.cwd!);
  const { handle, size } = await fs.openRead(requested).catch((error: unknown) => {
    throw fileError(error);
  });
  if (size > FILE_DOWNLOAD_MAX_BYTES) {
    await handle.close();
    throw new SwitchboardError(
      "PAYLOAD_TOO_LARGE",
      `${requested} is ${size} bytes; the limit is ${FILE_DOWNLOAD_MAX_BYTES} (FILE_DOWNLOAD_MAX_BYTES)`,
    );
  }
  return { handle, size };
}

function sendDownloadHead(ctx: RequestContext, requested: string, size: number): void {
  const name = requested.slice(requested.lastIndexOf("/") + 1);
  ctx.res.writeHead(200, {
    ...SECURITY_HEADERS,
    "Content-Type": "application/octet-stream",
    "Content-Length": size,
    "Cache-Control": "no-store",
    "Content-Disposition": `attachment; filename*=UTF-8''${encodeURIComponent(name)}`,
  });
}

/** A forwarded file call to `owner` for the request's session: the same caller, no lease key, no query. */
function fileCall(ctx: RequestContext, action: SessionAction, body: unknown): SessionCall {
  return { action, sessionId: ctx.params["id"]!, identity: ctx.identity, holderKey: ctx.holderKey, body, query: "" };
}

/**
 * An upload to a session another node runs: its body goes to the owner in pieces of
 * FILE_FORWARD_CHUNK_BYTES, one at a time (the request is read only as fast as the owner
 * writes), and the owner writes, checks and logs it as its own route does.
 */
async function forwardUpload(core: GatewayCore, ctx: RequestContext, owner: string, requested: string): Promise<void> {
  let transfer: string | undefined;
  try {
    const opened = await forwardToOwner(core, owner, fileCall(ctx, "file-open", { way: "put", path: requested }));
    transfer = (opened.body as { transfer: string }).transfer;
    const send = (data: Buffer) =>
      forwardToOwner(core, owner, fileCall(ctx, "file-chunk", { transfer, data: data.toString("base64") }));
    let held: Buffer[] = [];
    let heldBytes = 0;
    let total = 0;
    for await (const piece of ctx.req as AsyncIterable<Buffer>) {
      total += piece.length;
      if (total > FILE_UPLOAD_MAX_BYTES)
        throw new SwitchboardError(
          "PAYLOAD_TOO_LARGE",
          `the file is larger than ${FILE_UPLOAD_MAX_BYTES} bytes (FILE_UPLOAD_MAX_BYTES)`,
        );
      held.push(piece);
      heldBytes += piece.length;
      while (heldBytes >= FILE_FORWARD_CHUNK_BYTES) {
        const all = Buffer.concat(held);
        await send(all.subarray(0, FILE_FORWARD_CHUNK_BYTES));
        held = [all.subarray(FILE_FORWARD_CHUNK_BYTES)];
        heldBytes = held[0]!.length;
      }
    }
    if (heldBytes > 0) await send(Buffer.concat(held));
    const answer = await forwardToOwner(core, owner, fileCall(ctx, "file-end", { transfer }));
    transfer = undefined;
    sendJson(ctx.res, answer.status, answer.body);
  } catch (error) {
    if (transfer !== undefined) abortTransfer(core, ctx, owner, transfer);
    refuseUpload(ctx.req, ctx, error);
  }
}

/** Tells the owner to end a transfer this node gave up on (else it ends after FILE_TRANSFER_IDLE_MS). */
function abortTransfer(core: GatewayCore, ctx: RequestContext, owner: string, transfer: string): void {
  forwardToOwner(core, owner, fileCall(ctx, "file-abort", { transfer })).catch((error: unknown) =>
    core.logger.warn({ err: error, node: owner }, "a file transfer could not be ended on its node; it ends when idle"),
  );
}

/** A download from a session another node runs: read from the owner a piece at a time, as the client reads. */
async function forwardDownload(
  core: GatewayCore,
  ctx: RequestContext,
  owner: string,
  requested: string,
): Promise<void> {
  const opened = await forwardToOwner(core, owner, fileCall(ctx, "file-open", { way: "get", path: requested }));
  const { transfer, size } = opened.body as { transfer: string; size: number };
  sendDownloadHead(ctx, requested, size);
  if (ctx.req.method === "HEAD" || size === 0) {
    abortTransfer(core, ctx, owner, transfer);
    ctx.res.end();
    return;
  }
  let sent = 0;
  try {
    while (sent < size && !ctx.res.destroyed) {
      const piece = await forwardToOwner(core, owner, fileCall(ctx, "file-chunk", { transfer }));
      const bytes = Buffer.from((piece.body as { data: string }).data, "base64");
      // The file shrank on the owner: the response ends short, as on the owner.
      if (bytes.length === 0) break;
      sent += bytes.length;
      if (!ctx.res.write(bytes)) await drained(ctx.res);
    }
  } catch (error) {
    core.logger.warn(
      { err: error, session: ctx.params["id"], path: requested },
      "a download failed; the response was cut",
    );
  }
  if (sent < size) {
    abortTransfer(core, ctx, owner, transfer);
    ctx.res.destroy();
    return;
  }
  ctx.res.end();
}

/** Resolves once `res` takes more, or is closed (its client gone: the loop then stops). */
function drained(res: ServerResponse): Promise<void> {
  if (res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/**
 * The owner's side of a forwarded upload or download (`file-open`, `file-chunk`, `file-end`,
 * `file-abort`): access, path and limits are checked as for its own clients, with the caller the
 * forwarding node names. test/cluster/any-node-reads.test.ts.
 */
export async function runFileAction(core: GatewayCore, call: SessionCall): Promise<SessionAnswer> {
  const transfers = core.fileTransfers;
  const { session } = sessionOf(core, call.identity, call.sessionId);
  const principal = call.identity.principal;
  if (call.action === "file-open") {
    const { way, path } = validate(FileOpenBody, call.body);
    const requested = requestedPath(path);
    if (way === "get") {
      const { handle, size } = await openDownload(session, requested);
      const transfer = transfers.add({ way, handle, size, at: 0, sessionId: session.id, principal });
      return { status: 200, body: { transfer, size } };
    }
    session.assertRunning();
    session.log.assertWritable();
    const pipe = new PassThrough({ highWaterMark: FILE_FORWARD_CHUNK_BYTES });
    const written = new ConfinedFs(session.record.cwd!).writeStream(requested, pipe, {
      maxBytes: FILE_UPLOAD_MAX_BYTES,
    });
    // A refusal is answered to the call that waits for it (a piece or the end).
    written.catch(() => undefined);
    const transfer = transfers.add({ way, pipe, written, path: requested, sessionId: session.id, principal });
    return { status: 200, body: { transfer } };
  }
  const { transfer: id, data } = validate(FileChunkBody, call.body);
  if (call.action === "file-abort") {
    transfers.end(id, true);
    return { status: 200, body: { ok: true } };
  }
  const t = transfers.take(id, session.id, principal);
  try {
    if (t.way === "get") {
      const want = Math.min(FILE_FORWARD_CHUNK_BYTES, t.size - t.at);
      const buffer = Buffer.alloc(want);
      const { bytesRead } = want > 0 ? await t.handle.read(buffer, 0, want, t.at) : { bytesRead: 0 };
      t.at += bytesRead;
      if (bytesRead === 0 || t.at >= t.size) transfers.end(id);
      return { status: 200, body: { data: buffer.subarray(0, bytesRead).toString("base64") } };
    }
    if (call.action === "file-chunk") {
      const bytes = Buffer.from(data ?? "", "base64");
      if (!t.pipe.write(bytes)) await Promise.race([once(t.pipe, "drain"), t.written]);
      return { status: 200, body: { ok: true } };
    }
    t.pipe.end();
    const written = await t.written;
    transfers.end(id);
    return { status: 201, body: logUpload(core, session, t.path, written, call.identity) };
  } catch (error) {
    transfers.end(id, true);
    throw fileError(error);
  }
}
