import type { ServerResponse } from "node:http";
import { SwitchboardError } from "../../protocol/index.js";

/**
 * Bytes of big answers (pages of output, events and sessions) one identity may have on their way
 * at once: written, and not yet taken by its clients. An answer is held in the gateway's memory
 * until its client reads it, and a page may be 8 MiB: 150 connections of one viewer token that
 * asked for pages and read nothing held 1.2 GB (security audit).
 */
export const ANSWER_BYTES_PER_IDENTITY = 32 * 1024 * 1024;
/** Answers smaller than this are neither counted nor refused. */
export const ANSWER_COUNTED_BYTES = 64 * 1024;
/**
 * A counted answer whose client has not taken all of it after this long loses its connection,
 * which frees what it held (an 8 MiB page gets through at ~30 KB/s).
 */
export const ANSWER_STALL_MS = 5 * 60 * 1000;

/**
 * What each identity's big answers hold in memory until their clients read them. Over
 * {@link ANSWER_BYTES_PER_IDENTITY}, further big answers are refused with RATE_LIMITED until
 * some are read.
 */
export class AnswerBudget {
  private readonly sending = new Map<string, number>();

  constructor(
    private readonly bytesPerIdentity = ANSWER_BYTES_PER_IDENTITY,
    private readonly stallMs = ANSWER_STALL_MS,
  ) {}

  /** Bytes of `identity`'s counted answers not yet taken by its clients. */
  held(identity: string): number {
    return this.sending.get(identity) ?? 0;
  }

  /** Throws RATE_LIMITED when `identity`'s answers on their way already fill its budget. Call before building a big answer. */
  check(identity: string): void {
    const held = this.held(identity);
    if (held >= this.bytesPerIdentity) throw this.refusal(identity, held);
  }

  /**
   * Counts `bytes`, the answer about to be written on `res`, until its client has taken it or
   * the connection is gone; throws RATE_LIMITED instead when it would take `identity` past its
   * budget (an answer is always admitted when nothing else of its identity is on the way).
   */
  admit(identity: string, res: ServerResponse, bytes: number): void {
    if (bytes < ANSWER_COUNTED_BYTES) return;
    const held = this.held(identity);
    if (held > 0 && held + bytes > this.bytesPerIdentity) throw this.refusal(identity, held);
    this.sending.set(identity, held + bytes);
    const stalled = setTimeout(() => res.socket?.destroy(), this.stallMs).unref();
    let counted = true;
    const release = () => {
      if (!counted) return;
      counted = false;
      clearTimeout(stalled);
      const left = this.held(identity) - bytes;
      if (left > 0) this.sending.set(identity, left);
      else this.sending.delete(identity);
    };
    // 'finish': all of it handed to the kernel; 'close': or the connection ended first.
    res.once("finish", release);
    res.once("close", release);
  }

  private refusal(identity: string, held: number): SwitchboardError {
    return new SwitchboardError(
      "RATE_LIMITED",
      `${(held / 2 ** 20).toFixed(1)} MiB of answers to "${identity}" are still on their way (its clients have not read them); read those before asking for more`,
      { retryAfterSeconds: 1 },
    );
  }
}
