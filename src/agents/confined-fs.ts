import { createHash, randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, lstat, mkdir, open, readlink, realpath, rename, rmdir, unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import { SwitchboardError } from "../protocol/errors.js";
import { isInside } from "../system/path-inside.js";

/** Largest file an agent may read through ACP `fs/read_text_file`. */
export const MAX_FS_READ_BYTES = 16 * 1024 * 1024;

/** Where Linux shows every open file descriptor as a link to the real path of what it opened. */
const PROC_FD_DIR = "/proc/self/fd";

/** Bytes asked for by each read after the first (which asks for the size fstat gave, plus one). */
const READ_CHUNK_BYTES = 64 * 1024;

// O_NONBLOCK: opening a FIFO must not wait for its other end (a read open returns at once, a write
// open fails with ENXIO); fstat then refuses it. O_NOCTTY: a terminal device never becomes ours.
const OPEN_FILE = constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;
const OPEN_DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/**
 * Why the confined file system refused; the agent gets it as the `reason` of its JSON-RPC error
 * (documented in docs/agents.md): `outside-root` (a `..` segment, a symlink out, or what was
 * actually opened is outside), `not-found`, `not-a-file` (a directory, FIFO, socket or device),
 * `too-large` (over MAX_FS_READ_BYTES), `hard-linked` (a write to a file with more than one
 * link: its other names may be outside the root).
 */
export type FsRefusal = "outside-root" | "not-found" | "not-a-file" | "too-large" | "hard-linked";

/**
 * Why the confined file system refused: FILE_NOT_FOUND, PAYLOAD_TOO_LARGE, else FILE_REFUSED with
 * the `reason` (as the files routes answer it); the ACP adapter turns it into an error for the agent.
 */
export class FsAccessError extends SwitchboardError {
  override readonly name: string = "FsAccessError";
  readonly reason: FsRefusal;
  constructor(reason: FsRefusal, message: string) {
    if (reason === "not-found") super("FILE_NOT_FOUND", message);
    else if (reason === "too-large") super("PAYLOAD_TOO_LARGE", message);
    else super("FILE_REFUSED", message, { reason });
    this.reason = reason;
  }
}

export interface ConfinedFsOptions {
  /**
   * Whether to open relative to, and verify, file descriptors through /proc/self/fd (default:
   * when it exists). `false` selects the fallback of systems without it; tests use it on Linux.
   */
  procFd?: boolean | undefined;
}

/** A directory opened for confined access: names in it are reached through `at`. */
interface OpenDir {
  at(name: string): string;
  close(): Promise<void>;
}

/** The directory a write goes in, and those made on the way to it (see `openParent`). */
interface OpenParent {
  dir: OpenDir;
  undoMade(): Promise<void>;
  close(): Promise<void>;
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

let procFdPresent: Promise<boolean> | undefined;

function hasProcFd(): Promise<boolean> {
  // Missing or unreadable means no usable /proc here (macOS, a container without it): the fallback.
  procFdPresent ??= access(PROC_FD_DIR).then(
    () => true,
    () => false,
  );
  return procFdPresent;
}

/** Reads from the handle's position to the end, or gives undefined as soon as more than `limit` bytes came. */
async function readAtMost(handle: FileHandle, limit: number, expected: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  // One byte more than fstat said, so the end (or growth since) shows at once.
  let want = Math.min(expected, limit) + 1;
  for (;;) {
    const chunk = Buffer.allocUnsafe(want);
    const { bytesRead } = await handle.read(chunk, 0, want, null);
    if (bytesRead === 0) return Buffer.concat(chunks, total);
    chunks.push(chunk.subarray(0, bytesRead));
    total += bytesRead;
    if (total > limit) return undefined;
    want = Math.min(READ_CHUNK_BYTES, limit + 1 - total);
  }
}

/** What a write replaced: the file's bytes, a digest of a file over MAX_FS_READ_BYTES, or null: it was made. */
export interface Replaced {
  before: Buffer | FileDigest | null;
}

/** A file too large to keep in memory: its size and SHA-256 (hex). */
export interface FileDigest {
  size: number;
  sha256: string;
}

/** The whole file from its start: its bytes, or past MAX_FS_READ_BYTES only its size and hash. */
async function readWhole(handle: FileHandle, size: number): Promise<Buffer | FileDigest> {
  const bytes = size > MAX_FS_READ_BYTES ? undefined : await readAtMost(handle, MAX_FS_READ_BYTES, size);
  if (bytes !== undefined) return bytes;
  const hash = createHash("sha256");
  const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  let total = 0;
  for (let at = 0; ;) {
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, at);
    if (bytesRead === 0) return { size: total, sha256: hash.digest("hex") };
    hash.update(chunk.subarray(0, bytesRead));
    total += bytesRead;
    at += bytesRead;
  }
}

/**
 * File access for an agent, confined to the session's cwd: `..` is refused and paths go through
 * realpath. That alone races a symlink swap, so on Linux the parent is opened O_NOFOLLOW, its
 * real path (/proc/self/fd) must be inside the root, the file is opened relative to it
 * (`/proc/self/fd/N/name`) O_NOFOLLOW and checked again, and all I/O uses the descriptor;
 * missing parents are made the same way. Without /proc/self/fd (macOS, BSDs) Node has no openat
 * or F_GETPATH, so only the realpath check runs and a swap in between wins.
 */
export class ConfinedFs {
  private readonly root: string;
  private readonly procFdOption: boolean | undefined;
  private realRoot: Promise<string> | undefined;

  constructor(root: string, options: ConfinedFsOptions = {}) {
    this.root = path.resolve(root);
    this.procFdOption = options.procFd;
  }

  /** Reads a UTF-8 file; `line` (1-based) and `limit` select lines as in ACP. */
  readTextFile(
    requested: string,
    options: { line?: number | null | undefined; limit?: number | null | undefined } = {},
  ): Promise<string> {
    return this.read(requested, options).catch((err: unknown) => {
      throw this.refusal(err, requested);
    });
  }

  /** Reads a file's bytes (at most MAX_FS_READ_BYTES). */
  readFile(requested: string): Promise<Buffer> {
    return this.readBytes(requested).catch((err: unknown) => {
      throw this.refusal(err, requested);
    });
  }

  private async read(
    requested: string,
    options: { line?: number | null | undefined; limit?: number | null | undefined },
  ): Promise<string> {
    const content = (await this.readBytes(requested)).toString("utf8");
    const { line, limit } = options;
    if ((line === undefined || line === null) && (limit === undefined || limit === null)) return content;
    const lines = content.split("\n");
    const start = Math.max(0, (line ?? 1) - 1);
    const end = limit === undefined || limit === null ? lines.length : start + Math.max(0, limit);
    return lines.slice(start, end).join("\n");
  }

  private async readBytes(requested: string): Promise<Buffer> {
    const handle = await this.openExisting(requested);
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw this.notAFile(requested);
      const bytes = info.size > MAX_FS_READ_BYTES ? undefined : await readAtMost(handle, MAX_FS_READ_BYTES, info.size);
      if (bytes === undefined) {
        throw new FsAccessError("too-large", `${requested} is larger than ${MAX_FS_READ_BYTES} bytes`);
      }
      return bytes;
    } finally {
      await handle.close();
    }
  }

  /**
   * Writes (creating or replacing) a UTF-8 file, creating missing parent directories inside the
   * root, and says what it held before (read through the same descriptor, so it is what was
   * replaced). A file with more than one hard link is refused: another of its names may be outside
   * the root, and no path check can see it.
   */
  writeTextFile(requested: string, content: string): Promise<Replaced> {
    return this.write(requested, content).catch((err: unknown) => {
      throw this.refusal(err, requested);
    });
  }

  private async write(requested: string, content: string): Promise<Replaced> {
    const root = await this.rootReal();
    const { handle, created } = await this.openForWrite(root, this.lexical(requested), requested, false);
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw this.notAFile(requested);
      if (info.nlink > 1) throw this.hardLinked(requested, info.nlink);
      const before = created ? null : await readWhole(handle, info.size);
      // Opened without O_TRUNC: a file refused above is left as it was.
      await handle.truncate(0);
      const bytes = Buffer.from(content, "utf8");
      for (let at = 0; at < bytes.length;) {
        const { bytesWritten } = await handle.write(bytes, at, bytes.length - at, at);
        at += bytesWritten;
      }
      return { before };
    } finally {
      await handle.close();
    }
  }

  /** Opens `target` for writing, creating it and its missing parents; follows one symlink that stays inside. */
  private async openForWrite(
    root: string,
    target: string,
    requested: string,
    followedLink: boolean,
  ): Promise<{ handle: FileHandle; created: boolean }> {
    const parent = await this.openParent(root, target, requested);
    const dir = parent.dir;
    let opened: { handle: FileHandle; created: boolean } | undefined;
    try {
      const name = path.basename(target);
      // O_EXCL first, to tell a file made now (a new file in the change log) from one replaced.
      const create = constants.O_RDWR | constants.O_CREAT | constants.O_EXCL;
      opened = await this.openFile(root, dir, name, create, requested)
        .then(
          (handle) => ({ handle, created: true }),
          async (err: unknown) => {
            if (errno(err) !== "EEXIST") throw err;
            return { handle: await this.openFile(root, dir, name, constants.O_RDWR, requested), created: false };
          },
        )
        .catch((err: unknown) => {
          if (errno(err) === "ELOOP" && !followedLink) return undefined;
          throw err;
        });
    } finally {
      await parent.close();
    }
    if (opened !== undefined) return opened;
    // The file is a symlink: one that points to another file inside the root is written through,
    // by its real path, where a symlink swapped in now is refused.
    return this.openForWrite(root, await this.linkedInside(root, target, requested), requested, true);
  }

  /** Where the symlink `target` points, refused unless it is inside the root. */
  private async linkedInside(root: string, target: string, requested: string): Promise<string> {
    const linked = await realpath(target).catch((err: unknown) => {
      if (errno(err) === "ENOENT") throw this.outside(requested);
      throw err;
    });
    if (!isInside(root, linked)) throw this.outside(requested);
    return linked;
  }

  /**
   * Opens the directory `target` goes in, making its missing parents (each opened and checked as
   * it is made). `dir` is the innermost; `undoMade` removes the directories made (when empty),
   * for a write that failed; `close` closes them all.
   */
  private async openParent(root: string, target: string, requested: string): Promise<OpenParent> {
    // The deepest ancestor that exists decides where the path really is.
    const missing: string[] = [];
    let existing = path.dirname(target);
    let realDir: string;
    for (;;) {
      try {
        realDir = await realpath(existing);
        break;
      } catch (err) {
        if (errno(err) !== "ENOENT" || existing === path.dirname(existing)) throw err;
        missing.unshift(path.basename(existing));
        existing = path.dirname(existing);
      }
    }
    if (!isInside(root, realDir)) throw this.outside(requested);
    const chain: OpenDir[] = [await this.openDir(root, realDir, requested)];
    const made: string[] = [];
    const close = async () => {
      for (const dir of chain.splice(0).reverse()) await dir.close();
    };
    const undoMade = async () => {
      for (let i = made.length; i > 0; i--) {
        await rmdir(chain[i - 1]!.at(made[i - 1]!)).catch((err: unknown) => {
          // Not empty (someone put a file there meanwhile) or gone already: it stays, or is gone.
          if (errno(err) !== "ENOTEMPTY" && errno(err) !== "EEXIST" && errno(err) !== "ENOENT") throw err;
        });
      }
    };
    try {
      for (const name of missing) {
        const parent = chain.at(-1)!;
        const fresh = await mkdir(parent.at(name)).then(
          () => true,
          (err: unknown) => {
            // Made by someone else meanwhile: opening it below (O_NOFOLLOW) decides whether it will do.
            if (errno(err) !== "EEXIST") throw err;
            return false;
          },
        );
        if (fresh) made.push(name);
        chain.push(await this.openDir(root, parent.at(name), requested));
      }
    } catch (err) {
      await undoMade().finally(close);
      throw err;
    }
    return { dir: chain.at(-1)!, undoMade, close };
  }

  /**
   * Opens a regular file for reading, as {@link readFile} finds it, but refusing one with more than
   * one hard link (another of its names may be outside the root, and its bytes someone else's).
   * The caller reads from `handle` and closes it; `size` is what fstat said at the open.
   */
  openRead(requested: string): Promise<{ handle: FileHandle; size: number }> {
    return this.openReadNow(requested).catch((err: unknown) => {
      throw this.refusal(err, requested);
    });
  }

  private async openReadNow(requested: string): Promise<{ handle: FileHandle; size: number }> {
    const handle = await this.openExisting(requested);
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw this.notAFile(requested);
      if (info.nlink > 1) throw this.hardLinked(requested, info.nlink);
      return { handle, size: info.size };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /**
   * Writes a file from `chunks` (creating missing parent directories inside the root): into a
   * new temporary file next to it, renamed over the target once all of it came. Past `maxBytes`
   * (counted as the chunks come), or when `chunks` fails (the sender went away), the temporary
   * file and the directories made for it are removed: nothing partial is left. The target is
   * checked before any chunk is read: a directory, a symlink out of the root or a file with more
   * than one hard link is refused as {@link writeTextFile} refuses it.
   */
  writeStream(
    requested: string,
    chunks: AsyncIterable<Uint8Array>,
    options: { maxBytes: number },
  ): Promise<{ bytes: number; sha256: string; replaced: boolean }> {
    return this.writeStreamNow(requested, chunks, options, false).catch((err: unknown) => {
      throw this.refusal(err, requested);
    });
  }

  private async writeStreamNow(
    requested: string,
    chunks: AsyncIterable<Uint8Array>,
    options: { maxBytes: number },
    followedLink: boolean,
    target?: string,
  ): Promise<{ bytes: number; sha256: string; replaced: boolean }> {
    const root = await this.rootReal();
    const at = target ?? this.lexical(requested);
    const parent = await this.openParent(root, at, requested);
    const name = path.basename(at);
    let temp: string | undefined;
    try {
      const existing = await lstat(parent.dir.at(name)).catch((err: unknown) => {
        if (errno(err) === "ENOENT") return undefined;
        throw err;
      });
      if (existing?.isSymbolicLink() === true) {
        if (followedLink) throw this.outside(requested);
        const linked = await this.linkedInside(root, at, requested);
        await parent.close();
        return await this.writeStreamNow(requested, chunks, options, true, linked);
      }
      if (existing !== undefined && !existing.isFile()) throw this.notAFile(requested);
      if (existing !== undefined && existing.nlink > 1) throw this.hardLinked(requested, existing.nlink);
      // Its own short name: the target's may already be near NAME_MAX (255 bytes).
      temp = `.switchboard-${randomBytes(8).toString("hex")}.upload`;
      const create = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;
      const handle = await this.openFile(root, parent.dir, temp, create, requested);
      const hash = createHash("sha256");
      let bytes = 0;
      try {
        // The permission bits only: a setuid or setgid bit is not carried onto uploaded bytes.
        if (existing !== undefined) await handle.chmod(existing.mode & 0o777);
        for await (const chunk of chunks) {
          bytes += chunk.byteLength;
          if (bytes > options.maxBytes) {
            throw new FsAccessError("too-large", `${requested} is larger than ${options.maxBytes} bytes`);
          }
          hash.update(chunk);
          for (let done = 0; done < chunk.byteLength;) {
            const { bytesWritten } = await handle.write(chunk, done, chunk.byteLength - done);
            done += bytesWritten;
          }
        }
      } finally {
        await handle.close();
      }
      await rename(parent.dir.at(temp), parent.dir.at(name));
      temp = undefined;
      return { bytes, sha256: hash.digest("hex"), replaced: existing !== undefined };
    } catch (err) {
      if (temp !== undefined) {
        await unlink(parent.dir.at(temp)).catch((unlinkErr: unknown) => {
          // Never made (the open failed): nothing to remove.
          if (errno(unlinkErr) !== "ENOENT") throw unlinkErr;
        });
      }
      await parent.undoMade();
      throw err;
    } finally {
      await parent.close();
    }
  }

  /** Opens the existing file `requested` read-only, through its parent opened and checked. */
  private async openExisting(requested: string): Promise<FileHandle> {
    const root = await this.rootReal();
    const real = await this.resolveExisting(requested);
    if (real === root) throw this.notAFile(requested);
    const dir = await this.openDir(root, path.dirname(real), requested);
    try {
      return await this.openFile(root, dir, path.basename(real), constants.O_RDONLY, requested);
    } finally {
      await dir.close();
    }
  }

  /** Opens the directory `dirPath`, whose realpath the caller found inside the root, and checks what was opened. */
  private async openDir(root: string, dirPath: string, requested: string): Promise<OpenDir> {
    if (!(await this.procFd())) {
      return { at: (name) => path.join(dirPath, name), close: () => Promise.resolve() };
    }
    let handle: FileHandle;
    try {
      handle = await open(dirPath, OPEN_DIR);
    } catch (err) {
      // With O_DIRECTORY, Linux reports a symlink as ENOTDIR rather than ELOOP.
      const link =
        errno(err) === "ELOOP" ||
        (errno(err) === "ENOTDIR" &&
          (await lstat(dirPath).then(
            (info) => info.isSymbolicLink(),
            // Gone again: report the error of the open.
            () => false,
          )));
      if (link) throw this.outside(requested);
      throw err;
    }
    await this.verifyOpened(root, handle, requested);
    const fdPath = path.join(PROC_FD_DIR, String(handle.fd));
    return { at: (name) => path.join(fdPath, name), close: () => handle.close() };
  }

  /**
   * Opens `name` in `dir` without following a symlink there, and checks what was opened. Errors of
   * the open itself come as they are (see `refusal`); the caller may want to handle ELOOP.
   */
  private async openFile(
    root: string,
    dir: OpenDir,
    name: string,
    flags: number,
    requested: string,
  ): Promise<FileHandle> {
    const handle = await open(dir.at(name), flags | OPEN_FILE, 0o644);
    await this.verifyOpened(root, handle, requested);
    return handle;
  }

  /**
   * What an error of the file system means to the agent: a documented refusal naming only the path
   * it sent. A Node error's message names the real path or `/proc/self/fd/N/…`, internal to the
   * gateway; one with no documented reason (EACCES, ENOSPC…) keeps only its code.
   */
  private refusal(err: unknown, requested: string): unknown {
    if (err instanceof FsAccessError) return err;
    const code = errno(err);
    switch (code) {
      case "ELOOP": // a symlink where the path check saw none
        return this.outside(requested);
      case "ENOENT": // the file, or the session's directory itself, is gone
        return new FsAccessError("not-found", `${requested} does not exist`);
      case "ENOTDIR":
        return new FsAccessError("not-found", `${requested} does not exist (a part of its path is a file)`);
      case "EISDIR": // a directory opened for writing
      case "ENXIO": // a FIFO without a reader, or a socket
        return this.notAFile(requested);
      case undefined:
        return err;
      default:
        return Object.assign(new Error(`${requested}: ${code}`), { code });
    }
  }

  /** Closes and refuses a descriptor whose real path is outside the root (nothing to check without /proc). */
  private async verifyOpened(root: string, handle: FileHandle, requested: string): Promise<void> {
    if (!(await this.procFd())) return;
    let real: string;
    try {
      real = await readlink(path.join(PROC_FD_DIR, String(handle.fd)));
    } catch (err) {
      await handle.close();
      throw err;
    }
    if (!isInside(root, real)) {
      await handle.close();
      throw this.outside(requested);
    }
  }

  private procFd(): Promise<boolean> {
    return this.procFdOption === undefined ? hasProcFd() : Promise.resolve(this.procFdOption);
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
    // ENOENT and ENOTDIR are answered not-found by `refusal`.
    const real = await realpath(target);
    if (!isInside(root, real)) throw this.outside(requested);
    return real;
  }

  private outside(requested: string): FsAccessError {
    return new FsAccessError("outside-root", `${requested} is outside the session's working directory`);
  }

  private hardLinked(requested: string, links: number): FsAccessError {
    return new FsAccessError(
      "hard-linked",
      `${requested} has ${links} hard links; one may be outside the session's working directory, so it is refused`,
    );
  }

  private notAFile(requested: string): FsAccessError {
    return new FsAccessError("not-a-file", `${requested} is not a regular file`);
  }
}
