// The process's PTY reader thread (native/pty_reader.c, epoll), which reads the masters that
// flood: the addon's functions and the one thread, started on first use. Apart from pty-master.ts.
import { loadAddon } from "../system/native-addon.js";

/**
 * Most bytes the reader thread queues for one master before it stops reading it (the producer
 * then blocks): enough to ride out the event loop's GC pauses; 256 KiB lost up to a fifth of the
 * throughput, 4 MiB gained little more (bench/README.md "PTY read path").
 */
export const THREAD_QUEUE_BYTES = 1024 * 1024;

/** The addon's functions; see native/pty_reader.c. */
interface NativeReader {
  init(onReady: (ids: number[]) => void): void;
  open(fd: number, queueBytes: number): number;
  /** Bytes copied into `buffer` (> 0), 0 if nothing is queued now, -1 at the end. */
  take(id: number, buffer: Buffer): number;
  pause(id: number): void;
  resume(id: number): void;
  /** The thread will not read the fd again once this returns; what it queued can still be taken. */
  stop(id: number): void;
  release(id: number): void;
  /** Every call of `init`'s callback is answered with this, from a later phase of the event loop. */
  rearm(): void;
}

export interface ReaderThread {
  readonly native: NativeReader;
  /** What each master on the thread does when the thread has news for it. */
  readonly ready: Map<number, () => void>;
}

let thread: ReaderThread | null | undefined;

/** The reader thread of this process (or worker), started on first use; null where the addon is not built. */
export function readerThread(): ReaderThread | null {
  if (thread !== undefined) return thread;
  thread = null;
  const native = loadAddon<NativeReader>("pty_reader");
  if (native === null) return thread;
  const ready = new Map<number, () => void>();
  // Re-armed from setImmediate, after Node's loop over the thread's queued calls: one wake-up
  // per turn of the event loop, so a flood cannot keep the loop from polling its sockets.
  const rearm = (): void => native.rearm();
  native.init((ids) => {
    setImmediate(rearm);
    for (const id of ids) ready.get(id)?.();
  });
  thread = { native, ready };
  return thread;
}
