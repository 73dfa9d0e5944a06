/**
 * Files in and out of a session's working directory (docs/protocol.md, "Files"):
 * `PUT /v1/sessions/:id/files?path=` uploads, `GET` on the same route downloads, confined as an
 * agent's `fs/*` is (src/agents/confined-fs.ts). Shared by the server, the SDK and the UI.
 */

/** Largest file `PUT /v1/sessions/:id/files` takes: refused on Content-Length, and by counting while it streams. */
export const FILE_UPLOAD_MAX_BYTES = 100 * 1024 * 1024;

/** Largest file `GET /v1/sessions/:id/files` sends (it streams from disk; the bound keeps one request finite). */
export const FILE_DOWNLOAD_MAX_BYTES = 512 * 1024 * 1024;

/** `PUT /v1/sessions/:id/files`'s answer. */
export interface FileUploaded {
  /** Relative to the session's cwd, as given. */
  path: string;
  bytes: number;
  sha256: string;
  /** Whether a file was there before (it was replaced). */
  replaced: boolean;
  /** The `file.upload` event's seq. */
  seq: number;
}
