import Database from "better-sqlite3";
import type { Statement } from "better-sqlite3";
import { ownerOnly } from "../log/sqlite-store.js";
import type { ScreenView } from "./screen-emulator.js";

/**
 * The screen at the PTY's size as a checkpoint left it, as text and as ANSI: a request for a
 * session that printed nothing since is answered from these, without parsing (docs/protocol.md,
 * "The screen").
 */
export interface CheckpointViews {
  text: ScreenView;
  ansi: ScreenView;
}

/** A session's screen as it stood after its log's event `seq`, `offset` bytes into its output. */
export interface ScreenCheckpoint {
  seq: number;
  offset: number;
  cols: number;
  rows: number;
  /** ANSI that rebuilds the screen in a fresh terminal of `cols`×`rows` (ScreenEmulator.checkpoint). */
  state: string;
  /** Absent in a checkpoint saved before views were kept: a request then restores `state`. */
  views?: CheckpointViews | undefined;
  savedAt: number;
}

/**
 * The newest screen checkpoint of each PTY session, in its own SQLite file beside the log
 * (`screens.db`). Not an event type: a checkpoint replaces the one before, must outlive the
 * retention that trims events (else a late viewer reparses from the oldest byte kept), is no
 * one's event to fan out, and a write of a few hundred KiB stays off the log's group commit.
 */
export class CheckpointStore {
  private readonly db: Database.Database;
  private readonly stmt: {
    get: Statement<[string]>;
    offset: Statement<[string]>;
    put: Statement<[string, number, number, number, number, string, string | null, number]>;
    remove: Statement<[string]>;
    ids: Statement<[]>;
  };

  constructor(file: string) {
    ownerOnly(file);
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("busy_timeout = 5000");
    // A removed session's screen must not stay readable in free pages (as in the log).
    this.db.pragma("secure_delete = ON");
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS screen_checkpoints (
        session_id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        output_offset INTEGER NOT NULL,
        cols INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        state TEXT NOT NULL,
        saved_at INTEGER NOT NULL
      )`);
    // A file from before views were kept gains the column; its rows have none (NULL).
    const columns = this.db.prepare("SELECT name FROM pragma_table_info('screen_checkpoints')").pluck().all();
    if (!columns.includes("views")) this.db.exec("ALTER TABLE screen_checkpoints ADD COLUMN views TEXT");
    this.stmt = {
      get: this.db.prepare(
        "SELECT seq, output_offset AS offset, cols, rows, state, views, saved_at AS savedAt FROM screen_checkpoints WHERE session_id = ?",
      ),
      offset: this.db.prepare("SELECT output_offset FROM screen_checkpoints WHERE session_id = ?").pluck(),
      put: this.db.prepare(
        "INSERT OR REPLACE INTO screen_checkpoints (session_id, seq, output_offset, cols, rows, state, views, saved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      remove: this.db.prepare("DELETE FROM screen_checkpoints WHERE session_id = ?"),
      ids: this.db.prepare("SELECT session_id FROM screen_checkpoints").pluck(),
    };
  }

  get(sessionId: string): ScreenCheckpoint | undefined {
    const row = this.stmt.get.get(sessionId) as
      (Omit<ScreenCheckpoint, "views"> & { views: string | null }) | undefined;
    if (row === undefined) return undefined;
    const { views, ...rest } = row;
    return views === null ? rest : { ...rest, views: JSON.parse(views) as CheckpointViews };
  }

  /**
   * The output offset a session's checkpoint reflects, without reading its screen: what the feed
   * asks of every session after a restart (a whole checkpoint is a few hundred KiB of JSON).
   */
  offset(sessionId: string): number | undefined {
    return this.stmt.offset.get(sessionId) as number | undefined;
  }

  put(sessionId: string, c: ScreenCheckpoint): void {
    const views = c.views === undefined ? null : JSON.stringify(c.views);
    this.stmt.put.run(sessionId, c.seq, c.offset, c.cols, c.rows, c.state, views, c.savedAt);
  }

  /** Deletes a session's checkpoint, also from the WAL. */
  remove(sessionId: string): void {
    if (this.stmt.remove.run(sessionId).changes > 0) this.db.pragma("wal_checkpoint(TRUNCATE)");
  }

  /** The sessions that have a checkpoint. */
  ids(): string[] {
    return this.stmt.ids.all() as string[];
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
