import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream";
import type { Writable } from "node:stream";
import { brotliCompressSync, constants, createBrotliCompress, createGzip, gzipSync } from "node:zlib";

/**
 * Catch-up pages (`GET /v1/sessions/:id/events` and `/output`) compressed when the client
 * accepts it and `compression.http` is not false: br, else gzip, above a size threshold.
 * test/server/ws-deflate.test.ts checks that a compressed page decodes to exactly the bytes of
 * the plain one.
 */

/** Answers smaller than this go uncompressed (the headers alone are a few hundred bytes). */
export const HTTP_COMPRESS_MIN_BYTES = 1024;
/** Brotli quality: 4 compresses about as fast as gzip's default and smaller (11, its default, is for static files). */
export const HTTP_BROTLI_QUALITY = 4;
/** gzip level: 6, zlib's default. */
export const HTTP_GZIP_LEVEL = 6;

export type AnswerEncoding = "br" | "gzip";

/** The encodings an Accept-Encoding header accepts (q=0 refuses one), br first. */
function accepted(header: string | undefined): AnswerEncoding | undefined {
  if (!header) return undefined;
  const ok = new Set<string>();
  for (const part of header.split(",")) {
    const [name, ...params] = part.trim().toLowerCase().split(";");
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    if (q !== undefined && !(Number(q.slice(2)) > 0)) continue;
    if (name) ok.add(name);
  }
  return ok.has("br") ? "br" : ok.has("gzip") ? "gzip" : undefined;
}

/**
 * The encoding to answer `req` with, for a body of about `bytes` (undefined: as it is). A HEAD
 * answer keeps the plain one's Content-Length.
 */
export function answerEncoding(req: IncomingMessage, bytes: number, enabled: boolean): AnswerEncoding | undefined {
  if (!enabled || req.method === "HEAD" || bytes < HTTP_COMPRESS_MIN_BYTES) return undefined;
  return accepted(req.headers["accept-encoding"]);
}

/** `body` compressed whole, for an answer sent at once. */
export function compressWhole(body: string | Buffer, encoding: AnswerEncoding): Buffer {
  return encoding === "br"
    ? brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: HTTP_BROTLI_QUALITY } })
    : gzipSync(body, { level: HTTP_GZIP_LEVEL });
}

/**
 * A stream whose writes reach `res` compressed (headers already written). `res` closing early
 * destroys it, so a paced export writing to it stops as it does on `res`.
 */
export function compressingStream(res: ServerResponse, encoding: AnswerEncoding): Writable {
  const stream =
    encoding === "br"
      ? createBrotliCompress({ params: { [constants.BROTLI_PARAM_QUALITY]: HTTP_BROTLI_QUALITY } })
      : createGzip({ level: HTTP_GZIP_LEVEL });
  pipeline(stream, res, () => {
    // An error here is the client going away (or res destroyed after a failed read, logged by
    // the route): both ends are destroyed by pipeline, nothing more to do.
  });
  return stream;
}
