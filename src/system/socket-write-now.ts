import { writeSync } from "node:fs";
import type { Socket } from "node:net";

/**
 * Writes what the kernel takes at once straight to a plain socket's descriptor, when nothing
 * waits in its stream before it (so the order holds); returns how many bytes, 0 when it cannot
 * (connecting, something queued, EAGAIN, a broken connection: the stream's own write then goes
 * on and reports what is wrong). On a key's echo path a write through the stream costs some
 * 40 µs more than the call (docs/benchmarks.md, "Keystroke echo, hop by hop"). Never on an
 * encrypted socket, whose bytes must go through TLS (test/system/socket-write-now.test.ts).
 */
export function writeNow(socket: Socket, bytes: Uint8Array): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  if (fd === undefined || fd < 0 || socket.writableLength > 0 || socket.connecting) return 0;
  if ((socket as { encrypted?: boolean }).encrypted === true || socket.destroyed) return 0;
  try {
    return writeSync(fd, bytes);
  } catch {
    // EAGAIN (the kernel's buffer is full) or a broken connection: the stream's write says which.
    return 0;
  }
}
