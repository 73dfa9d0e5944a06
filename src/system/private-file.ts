import { chmodSync, renameSync, rmSync, writeFileSync } from "node:fs";

/**
 * Writes `text` to `file`, readable by its owner only (0600), whole or not at all: into a
 * temporary file beside it, then renamed over it. A reader never sees half a file, and a write
 * that fails (a full disk) leaves the old file, or none, and no temporary behind.
 */
export function writePrivateFile(file: string, text: string): void {
  writeFileWhole(file, text, 0o600);
}

/** Writes `text` to `file` with permissions `mode`, whole or not at all (see {@link writePrivateFile}). */
export function writeFileWhole(file: string, text: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, text, { mode });
    // `mode` applies only to a file the write creates, and through the umask.
    chmodSync(tmp, mode);
    renameSync(tmp, file);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}
