/**
 * The group commit's thresholds: how long a write may wait for company, how big a batch gets,
 * when the WAL is checkpointed and how failed commits are retried (used by group-commit.ts).
 */

/** A group is posted to the writer at once when it reaches this many queued writes (even with one in flight). */
export const LOG_FLUSH_MAX_BATCH = 8192;
/**
 * About the most bytes one batch carries, shared fairly among the sessions with queued writes
 * (each gets at least its oldest write): a session flooding output cannot make another wait
 * behind its whole backlog — a keystroke's echo waits for about one batch of the flood, not 16 MiB.
 */
export const LOG_BATCH_MAX_BYTES = 256 * 1024;
/**
 * How long an `input` event may wait for company before it is committed alone. Input given to a
 * process is usually answered within a millisecond (a shell echoes the keystroke), and nobody
 * waits for the input event itself: committed with the echo, one commit serves both, and the
 * echo does not queue behind a commit of its own input (measured: ~0.15 ms of a 1.1 ms echo).
 */
export const LOG_INPUT_LINGER_MS = 2;
/**
 * With less than this queued for the writer thread, a batch waits up to {@link LOG_WRITER_LINGER_MS}
 * for more. Every commit rewrites at least one page of the database whatever it carries (big
 * output's bytes go to output files), so a flood committed piece by piece paid that per 64 KiB
 * piece: measured on a PTY flood of 50 MiB, ~700 commits and ~140 ms of the writer thread's CPU;
 * with this, ~400 commits and ~110 ms (`.bench-tmp/commits.ts`). Small writes of quiet sessions
 * (a keystroke's echo) are committed on the event loop and never wait for it. Bigger batches
 * were tried (512 KiB or 6 ms, up to 1 MiB each, for fewer wake-ups of the writer and the event
 * loop): a flood to the log alone got faster (PTY → log 0.79 → 0.86 of raw, medians of 7
 * alternating runs), but to viewers slower (1 binary viewer 0.93–1.16 → 0.71–0.92 of raw in 3
 * alternating pairs of processes), with a full GC or two per 50 MiB again (6 with 4 JSON
 * viewers): each batch published up to 16 pieces at once, which the log and viewers then held.
 */
export const LOG_WRITER_MIN_BYTES = 128 * 1024;
export const LOG_WRITER_LINGER_MS = 2;
/**
 * About how many bytes of WAL the writers add before the writer thread is asked to copy them into
 * the database. Counted as the rows' bytes and a page per commit, which is low: a commit also
 * rewrites the b-tree pages above its leaf, the header and pointer-map pages, and rows of 4-8 KiB
 * take a 16 KiB overflow page. Measured under mixed load (short sessions, streams and PTY floods
 * at once), ~800 frames of 16 KiB, about 12.5 MiB, came between checkpoints.
 */
export const LOG_CHECKPOINT_BYTES = 4 * 1024 * 1024;
/** With less than that written, a checkpoint follows once no commit came for this long. */
export const LOG_CHECKPOINT_IDLE_MS = 1000;

/** How long `flush()` waits for the writer thread before giving up (a stuck disk). */
export const LOG_FLUSH_WAIT_MS = 30_000;

/** How often the writer thread retries a batch it could not commit (disk full, read-only, I/O error). */
export const LOG_WRITE_RETRY_MS = 1000;
