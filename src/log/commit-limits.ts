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
 * Output shown before its commit that nobody waits to see committed lingers as long (SessionLog's
 * appendOutputBytes): a held echo's commit then runs after its viewer woke, not beside it.
 */
export const LOG_INPUT_LINGER_MS = 2;
/**
 * How long a cluster node's replica rows wait for company. Redis holds them already and they are
 * published before they commit (SessionLog.markShared), so nobody waits for these commits: one
 * commit per event was a quarter of a copying node's delivery CPU, and a commit each 50 ms still
 * a few percent of it at 200 events/s (docs/benchmarks.md, "Cluster delivery against socket.io").
 * A session's rows go at once past {@link LOG_REPLICA_LINGER_BYTES} queued, and whenever someone
 * waits for them to be durable (EventStore.hurry: a copy's page, a fenced session's handover).
 */
export const LOG_REPLICA_LINGER_MS = 250;
export const LOG_REPLICA_LINGER_BYTES = 128 * 1024;
/**
 * With less than this queued for the writer thread, a batch waits up to {@link LOG_WRITER_LINGER_MS}
 * for more, since every commit rewrites at least a page; a keystroke's echo is committed on the
 * event loop and never waits. Bigger batches slowed viewers (bench/README.md, "Log writes").
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
