import { execFileSync } from "node:child_process";
import { closeSync, openSync, writeSync } from "node:fs";
import { onTestFinished } from "vitest";
import { tempDir } from "./tmp.js";

/** A tmpfs of `size` (as `mount -o size=`) mounted for the test and unmounted after it: a disk to fill. Needs root (CI runs as root). */
export function smallDisk(size: string): string {
  if (process.getuid?.() !== 0) {
    throw new Error("this test mounts a tmpfs to fill the disk: run it as root (CI does)");
  }
  const dir = tempDir("switchboard-disk-");
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
  onTestFinished(() => {
    execFileSync("umount", ["-l", dir]);
  });
  return dir;
}

/** Writes zeros into `file`, `chunkBytes` at a time, until the disk is full (less than a chunk is left). */
export function fillDisk(file: string, chunkBytes: number): void {
  const fd = openSync(file, "w");
  const chunk = Buffer.alloc(chunkBytes);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
  } finally {
    closeSync(fd);
  }
}
