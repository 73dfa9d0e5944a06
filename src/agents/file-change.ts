import { createHash } from "node:crypto";
import path from "node:path";
import { diffHunks } from "../core/unified-diff.js";
import type { NewEvent } from "../protocol/index.js";
import type { FileDigest } from "./confined-fs.js";

/**
 * Largest side (UTF-8 bytes) of a change the log keeps as text with its diff; a larger one keeps
 * sizes and hashes only (`content: "too-large"`). A change is logged with both texts, so several
 * edits of one file in a run combine into one diff from the first old text to the last new one.
 */
export const MAX_CHANGE_TEXT_BYTES = 512 * 1024;

/** Bytes git reads to call a file binary (a NUL among them), as `git diff` does. */
const BINARY_SNIFF_BYTES = 8000;

type FileChangeEvent = Extract<NewEvent, { type: "file.change" }>;
/** A `file.change` as the run appends it, less the run's id. */
export type FileChange = Omit<FileChangeEvent, "type" | "runId">;

export interface FileChangeInput {
  /** Relative to the session's cwd (see {@link relativePath}). */
  path: string;
  source: FileChange["source"];
  /** What the file held before (a digest: too large to read); null: it did not exist. */
  before: Buffer | string | FileDigest | null;
  /** What it holds now; null: it is gone. */
  after: Buffer | string | null;
  toolCallId?: string | undefined;
  region?: boolean;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The text of `bytes` when git would diff it as text: valid UTF-8, no NUL in its first bytes. */
function textOf(bytes: Buffer): string | undefined {
  if (bytes.subarray(0, BINARY_SNIFF_BYTES).includes(0)) return undefined;
  try {
    return utf8.decode(bytes);
  } catch (err) {
    // Not UTF-8: kept as a binary change (sizes and hashes).
    if (err instanceof TypeError) return undefined;
    throw err;
  }
}

const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");
const asBytes = (side: Buffer | string | null): Buffer | null =>
  side === null ? null : typeof side === "string" ? Buffer.from(side, "utf8") : side;
const isDigest = (side: Buffer | string | FileDigest | null): side is FileDigest =>
  side !== null && typeof side === "object" && !Buffer.isBuffer(side);

/** The `file.change` of `input`: texts and their diff, or sizes and hashes only. */
export function fileChange(input: FileChangeInput): FileChange {
  const digest = isDigest(input.before) ? input.before : undefined;
  const before = isDigest(input.before) ? null : asBytes(input.before);
  const after = asBytes(input.after);
  const common = {
    path: input.path,
    source: input.source,
    ...(input.toolCallId !== undefined ? { toolCallId: input.toolCallId } : {}),
    ...(input.region === true ? { region: true as const } : {}),
    oldBytes: digest?.size ?? before?.length ?? null,
    newBytes: after?.length ?? null,
    oldSha256: digest?.sha256 ?? (before === null ? null : sha256(before)),
    newSha256: after === null ? null : sha256(after),
  };
  if (
    digest !== undefined ||
    (before?.length ?? 0) > MAX_CHANGE_TEXT_BYTES ||
    (after?.length ?? 0) > MAX_CHANGE_TEXT_BYTES
  ) {
    return { ...common, content: "too-large" };
  }
  const oldText = before === null ? null : textOf(before);
  const newText = after === null ? null : textOf(after);
  if (oldText === undefined || newText === undefined) return { ...common, content: "binary" };
  const hunks = diffHunks({ path: input.path, oldText, newText });
  return { ...common, content: "text", oldText, newText, ...hunks };
}

/**
 * `requested` (as an agent names a file: absolute, or relative to the cwd) relative to the
 * session's cwd with `/` separators; a path outside it is kept absolute.
 */
export function relativePath(cwd: string, requested: string): string {
  const relative = path.relative(path.resolve(cwd), path.resolve(cwd, requested));
  if (relative === "" || relative.startsWith("..") || path.isAbsolute(relative)) return path.resolve(cwd, requested);
  return relative.split(path.sep).join("/");
}
