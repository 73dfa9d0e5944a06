import type { IncomingMessage } from "node:http";
import { ConfinedFs, FsAccessError } from "../../agents/confined-fs.js";
import { FILE_DOWNLOAD_MAX_BYTES, FILE_UPLOAD_MAX_BYTES, SwitchboardError } from "../../protocol/index.js";
import type { FileUploaded } from "../../protocol/index.js";
import type { Session } from "../../sessions/session.js";
import { sessionFor } from "../identity/access.js";
import { actorOf } from "../identity/auth.js";
import type { GatewayCore, RequestContext } from "../context.js";
import { SECURITY_HEADERS, queryParam, sendError, sendJson } from "../http/http.js";
import type { Router } from "../http/router.js";
import { ownerElsewhere } from "../cluster/session-forwarding.js";

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

/** The session whose files are asked for, run by this node (its working directory is on this machine). */
function localSession(core: GatewayCore, ctx: RequestContext): Session {
  const session = sessionFor(core.sessions, ctx.identity, ctx.params["id"]!, "steer");
  const owner = ownerElsewhere(core, session.id, ctx.identity);
  if (owner !== undefined) {
    throw new SwitchboardError(
      "BAD_REQUEST",
      `session ${session.id} runs on node ${owner}: its files are reached through that node's address`,
    );
  }
  if (session.record.cwd === null) {
    throw new SwitchboardError(
      "WRONG_SESSION_KIND",
      `session ${session.id} has no working directory (a stream session)`,
    );
  }
  return session;
}

/**
 * The `path` parameter: relative to the working directory. Absolute paths, `..`, NUL and empty
 * segments are refused here, before the file system is asked; symlinks and hard links by ConfinedFs.
 */
function requestedPath(ctx: RequestContext): string {
  const raw = queryParam(ctx.url, "path");
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
  let session: Session;
  let requested: string;
  try {
    session = localSession(core, ctx);
    requested = requestedPath(ctx);
    session.assertRunning();
    session.log.assertWritable();
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
  let written: { bytes: number; sha256: string; replaced: boolean };
  try {
    const fs = new ConfinedFs(session.record.cwd!);
    written = await fs.writeStream(requested, req, { maxBytes: FILE_UPLOAD_MAX_BYTES });
  } catch (error) {
    refuseUpload(req, ctx, error);
    return;
  }
  const event = session.log.append({
    type: "file.upload",
    path: requested,
    bytes: written.bytes,
    sha256: written.sha256,
    replaced: written.replaced,
    by: actorOf(ctx.identity),
  });
  const answer: FileUploaded = { path: requested, ...written, seq: event.seq };
  core.logger.info(
    { session: session.id, path: requested, bytes: written.bytes, by: ctx.identity.name },
    "file uploaded",
  );
  sendJson(ctx.res, 201, answer);
}

async function download(core: GatewayCore, ctx: RequestContext): Promise<void> {
  const session = localSession(core, ctx);
  const requested = requestedPath(ctx);
  const fs = new ConfinedFs(session.record.cwd!);
  const { handle, size } = await fs.openRead(requested).catch((error: unknown) => {
    throw fileError(error);
  });
  try {
    if (size > FILE_DOWNLOAD_MAX_BYTES) {
      throw new SwitchboardError(
        "PAYLOAD_TOO_LARGE",
        `${requested} is ${size} bytes; the limit is ${FILE_DOWNLOAD_MAX_BYTES} (FILE_DOWNLOAD_MAX_BYTES)`,
      );
    }
  } catch (error) {
    await handle.close();
    throw error;
  }
  const name = requested.slice(requested.lastIndexOf("/") + 1);
  ctx.res.writeHead(200, {
    ...SECURITY_HEADERS,
    "Content-Type": "application/octet-stream",
    "Content-Length": size,
    "Cache-Control": "no-store",
    "Content-Disposition": `attachment; filename*=UTF-8''${encodeURIComponent(name)}`,
  });
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
