import { randomUUID } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import type { PassThrough } from "node:stream";
import { z } from "zod";
import { SwitchboardError } from "../../protocol/index.js";
import type { Clock, Timer } from "../../core/clock.js";

/**
 * Bytes one forwarded file call carries (docs/cluster.md, "Files and worktrees on any node"): an
 * upload's or a download's piece, base64 in the call's JSON, well under a node's request size and
 * NODE_REPLY_MAX_BYTES (1 MiB). The node that received the client's request holds one piece at a time.
 */
export const FILE_FORWARD_CHUNK_BYTES = 256 * 1024;
/** File transfers one node keeps open for other nodes at once; another is RESOURCE_EXHAUSTED. */
export const FILE_TRANSFERS_MAX = 32;
/**
 * A transfer no call touched for this long is ended (its upload's temporary file removed, its
 * download's file closed): the node that forwarded it stopped. Longer than a call's timeout.
 */
export const FILE_TRANSFER_IDLE_MS = 60_000;

/** The body of a forwarded `file-open`: which way, and the path, checked again by the owner's route. */
export const FileOpenBody = z.strictObject({ way: z.enum(["put", "get"]), path: z.string().max(4096) });
/** The body of `file-chunk` (`data`: an upload's next piece, base64; none for a download's next piece), `file-end` and `file-abort`. */
export const FileChunkBody = z.strictObject({
  transfer: z.string().uuid(),
  data: z
    .string()
    .max(Math.ceil((FILE_FORWARD_CHUNK_BYTES * 4) / 3) + 4)
    .optional(),
});

/** An upload forwarded from another node: its pieces feed `pipe`, which ConfinedFs writes from. */
export interface UploadTransfer {
  way: "put";
  pipe: PassThrough;
  /** ConfinedFs's write of the pipe; rejects with its refusal. */
  written: Promise<{ bytes: number; sha256: string; replaced: boolean }>;
  path: string;
}

/** A download forwarded to another node: read piece by piece from the open file. */
export interface DownloadTransfer {
  way: "get";
  handle: FileHandle;
  size: number;
  at: number;
}

type Transfer = (UploadTransfer | DownloadTransfer) & { sessionId: string; principal: string; idle: Timer };

/**
 * The file transfers this node runs for other nodes' clients (owner side), each bound to the
 * session and caller that opened it, ended after {@link FILE_TRANSFER_IDLE_MS} without a call.
 */
export class FileTransfers {
  private readonly open = new Map<string, Transfer>();

  constructor(private readonly clock: Clock) {}

  add(t: (UploadTransfer | DownloadTransfer) & { sessionId: string; principal: string }): string {
    if (this.open.size >= FILE_TRANSFERS_MAX)
      throw new SwitchboardError(
        "RESOURCE_EXHAUSTED",
        `this node runs ${FILE_TRANSFERS_MAX} file transfers for other nodes (FILE_TRANSFERS_MAX); retry later`,
      );
    const id = randomUUID();
    this.open.set(id, { ...t, idle: this.idleTimer(id) });
    return id;
  }

  /** The transfer `id` of this session and caller, its idle timer restarted; BAD_REQUEST once ended or another's. */
  take(id: string, sessionId: string, principal: string): UploadTransfer | DownloadTransfer {
    const t = this.open.get(id);
    if (t === undefined || t.sessionId !== sessionId || t.principal !== principal)
      throw new SwitchboardError("BAD_REQUEST", `no file transfer ${id} of this session is open on this node`);
    t.idle.cancel();
    t.idle = this.idleTimer(id);
    return t;
  }

  /** Ends transfer `id`: an upload `givenUp` has its temporary file removed; a download's file is closed. */
  end(id: string, givenUp = false): void {
    const t = this.open.get(id);
    if (t === undefined) return;
    this.open.delete(id);
    t.idle.cancel();
    if (t.way === "put") {
      // Without an error: nothing listens for one once ConfinedFs stopped reading. A write still
      // reading fails with a premature close and removes its temporary file.
      if (givenUp) t.pipe.destroy();
    } else {
      // Closing a file read to its end cannot fail in a way anyone could act on.
      t.handle.close().catch(() => undefined);
    }
  }

  /** Ends every transfer (the gateway closes). */
  close(): void {
    for (const id of [...this.open.keys()]) this.end(id, true);
  }

  private idleTimer(id: string): Timer {
    return this.clock.setTimeout(() => this.end(id, true), FILE_TRANSFER_IDLE_MS);
  }
}
