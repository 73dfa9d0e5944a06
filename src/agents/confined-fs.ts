import { constants } from "node:fs";
import { lstat, mkdir, open, readFile, realpath, stat } from "node:fs/promises";
import path from "node:path";

/** Largest file an agent may read through ACP `fs/read_text_file`. */
export const MAX_FS_READ_BYTES = 16 * 1024 * 1024;

export type FsRefusal = "outside-root" | "not-found" | "not-a-file" | "too-large";

/** Why the confined file system refused; the ACP adapter turns it into an error for the agent. */
export class FsAccessError extends Error {
  override readonly name = "FsAccessError";
  readonly reason: FsRefusal;
  constructor(reason: FsRefusal, message: string) {
    super(message);
    this.reason = reason;
  }
}

function isInside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * File access for an agent, confined to one directory (the session's cwd): a path with a `..`
 * segment is refused outright, and every path is resolved with realpath so a symlink that
 * points outside the root is refused too. Writes open the final file with O_NOFOLLOW, so a
 * symlink swapped in after the check is not followed.
 */
export class ConfinedFs {
  private readonly root: string;
  private realRoot: Promise<string> | undefined;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  /** Reads a UTF-8 file; `line` (1-based) and `limit` select lines as in ACP. */
  async readTextFile(
    requested: string,
    options: { line?: number | null | undefined; limit?: number | null | undefined } = {},
  ): Promise<string> {
    const real = await this.resolveExisting(requested);
    const info = await stat(real);
    if (!info.isFile()) throw new FsAccessError("not-a-file", `${requested} is not a regular file`);
    if (info.size > MAX_FS_READ_BYTES) {
      throw new FsAccessError("too-large", `${requested} is larger than ${MAX_FS_READ_BYTES} bytes`);
    }
    const content = await readFile(real, "utf8");
    const { line, limit } = options;
    if ((line === undefined || line === null) && (limit === undefined || limit === null)) return content;
    const lines = content.split("\n");
    const start = Math.max(0, (line ?? 1) - 1);
    const end = limit === undefined || limit === null ? lines.length : start + Math.max(0, limit);
    return lines.slice(start, end).join("\n");
  }

  /** Writes (creating or replacing) a UTF-8 file, creating missing parent directories inside the root. */
  async writeTextFile(requested: string, content: string): Promise<void> {
    const root = await this.rootReal();
    const target = this.lexical(requested);
    // The deepest ancestor that exists decides where the path really is.
    const missing: string[] = [];
    let dir = path.dirname(target);
    let realDir: string;
    for (;;) {
      try {
        realDir = await realpath(dir);
        break;
      } catch (err) {
        if (errno(err) !== "ENOENT" || dir === path.dirname(dir)) throw err;
        missing.unshift(path.basename(dir));
        dir = path.dirname(dir);
      }
    }
    if (!isInside(root, realDir)) throw this.outside(requested);
    const parent = path.join(realDir, ...missing);
    if (missing.length > 0) await mkdir(parent, { recursive: true });
    let file = path.join(parent, path.basename(target));
    const existing = await lstat(file).catch((err: unknown) => {
      if (errno(err) === "ENOENT") return undefined;
      throw err;
    });
    if (existing?.isSymbolicLink()) {
      // A link inside the root may point to another file inside it; anything else is an escape.
      const linked = await realpath(file).catch((err: unknown) => {
        if (errno(err) === "ENOENT") throw this.outside(requested);
        throw err;
      });
      if (!isInside(root, linked)) throw this.outside(requested);
      file = linked;
    }
    const handle = await open(
      file,
      constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
      0o644,
    );
    try {
      await handle.writeFile(content, "utf8");
    } finally {
      await handle.close();
    }
  }

  private rootReal(): Promise<string> {
    this.realRoot ??= realpath(this.root);
    return this.realRoot;
  }

  /** The absolute path an agent named, refusing `..` segments (traversal is never legitimate here). */
  private lexical(requested: string): string {
    if (requested.split(/[\\/]/).includes("..")) {
      throw new FsAccessError("outside-root", `${requested}: paths with ".." are not allowed`);
    }
    // Whether it is inside is decided on the real path (the root itself may sit behind a symlink).
    return path.resolve(this.root, requested);
  }

  private async resolveExisting(requested: string): Promise<string> {
    const root = await this.rootReal();
    const target = this.lexical(requested);
    let real: string;
    try {
      real = await realpath(target);
    } catch (err) {
      if (errno(err) === "ENOENT" || errno(err) === "ENOTDIR") {
        throw new FsAccessError("not-found", `${requested} does not exist`);
      }
      throw err;
    }
    if (!isInside(root, real)) throw this.outside(requested);
    return real;
  }

  private outside(requested: string): FsAccessError {
    return new FsAccessError("outside-root", `${requested} is outside the session's working directory`);
  }
}
