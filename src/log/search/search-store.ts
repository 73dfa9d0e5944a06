import Database from "better-sqlite3";
import type { Statement } from "better-sqlite3";
import { ownerOnly } from "../sqlite-store.js";
import type { SearchDoc, SearchDocKind, SessionTextState } from "./search-documents.js";
import { MATCH_CLOSE, MATCH_OPEN, SNIPPET_ELLIPSIS, marksOf } from "./search-query.js";

/** The index's file in the data directory: apart from the log's, so indexing never holds the log's write lock. */
export const SEARCH_DB_FILE = "search.db";
/** The index connection's page cache (MiB). */
const SEARCH_CACHE_MIB = 32;
/** Words of context `snippet()` shows around a match. */
const SNIPPET_WORDS = 12;
/** Most documents one {@link SearchStore.forget} or {@link SearchStore.trim} step deletes (each is tokenized again to leave the index). */
export const SEARCH_DELETE_BATCH = 500;

/** One hit: the session, the seq its document starts at, and a snippet with its matches' offsets. */
export interface SearchStoreHit {
  /** Orders hits newest first; the paging cursor. */
  id: number;
  sessionId: string;
  seq: number;
  kind: SearchDocKind;
  snippet: string;
  marks: Array<[number, number]>;
}

/** Where a session's indexing stands: everything up to `seq` is indexed, `state` is what follows it. */
export interface SearchCursor {
  seq: number;
  state: SessionTextState;
}

/**
 * The search index: one SQLite file of FTS5 documents (`docs_fts`, its text in `docs`, an
 * external-content table so that a session's documents can be found and deleted by session) and
 * each session's cursor. A batch of documents and the cursor past them commit in one transaction,
 * so a crash loses both or neither and indexing goes on from the cursor.
 */
export class SearchStore {
  private readonly db: Database.Database;
  private readonly stmt: {
    insertDoc: Statement<[string, number, string, string]>;
    insertFts: Statement<[number | bigint, string]>;
    cursor: Statement<[string]>;
    setCursor: Statement<[string, number, string]>;
    cursors: Statement<[]>;
    oldDocs: Statement<[string, number, number]>;
    deleteFts: Statement<[number, string]>;
    deleteDoc: Statement<[number]>;
    deleteCursor: Statement<[string]>;
    hasBefore: Statement<[string, number]>;
    searchAll: Statement<[string, number, number]>;
    searchIn: Statement<[string, string, number, number]>;
  };
  private closed = false;

  /** `readonly`: a connection that only reads (the query thread's), opened once the indexing thread made the file. */
  constructor(file: string, options: { readonly?: boolean } = {}) {
    if (options.readonly === true) {
      this.db = new Database(file, { readonly: true, fileMustExist: true });
      this.db.pragma(`cache_size = -${SEARCH_CACHE_MIB * 1024}`);
    } else {
      ownerOnly(file);
      this.db = new Database(file);
      this.db.pragma("journal_mode = WAL");
      // The index is rebuilt from the log where a crash cut it (its cursor commits with its documents).
      this.db.pragma("synchronous = NORMAL");
      // A removed session's text is overwritten where it was, not left in free pages.
      this.db.pragma("secure_delete = ON");
      // FTS5 rewrites its doclists' pages as it merges segments: a page cache of SEARCH_CACHE_MIB
      // keeps a build from reading them back from disk.
      this.db.pragma(`cache_size = -${SEARCH_CACHE_MIB * 1024}`);
      this.db.exec(`
        CREATE TABLE IF NOT EXISTS docs (
          id INTEGER PRIMARY KEY,
          session_id TEXT NOT NULL,
          seq INTEGER NOT NULL,
          kind TEXT NOT NULL,
          text TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS docs_session ON docs (session_id, seq);
        CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5 (
          text, content = 'docs', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
        );
        CREATE TABLE IF NOT EXISTS cursors (
          session_id TEXT PRIMARY KEY,
          seq INTEGER NOT NULL,
          state TEXT NOT NULL
        ) WITHOUT ROWID;
      `);
    }
    const snippet = `snippet(docs_fts, 0, '${MATCH_OPEN}', '${MATCH_CLOSE}', '${SNIPPET_ELLIPSIS}', ${SNIPPET_WORDS})`;
    // The FTS table drives both searches (newest document first, from its doclists); the session
    // filter is checked on each match, so a LIMIT counts only hits the caller may read.
    const search = (filter: string) =>
      this.db.prepare(
        `SELECT d.id, d.session_id, d.seq, d.kind, ${snippet} AS snippet
         FROM docs_fts JOIN docs d ON d.id = docs_fts.rowid
         WHERE docs_fts MATCH ? ${filter} AND docs_fts.rowid < ?
         ORDER BY docs_fts.rowid DESC LIMIT ?`,
      );
    this.stmt = {
      insertDoc: this.db.prepare("INSERT INTO docs (session_id, seq, kind, text) VALUES (?, ?, ?, ?)"),
      insertFts: this.db.prepare("INSERT INTO docs_fts (rowid, text) VALUES (?, ?)"),
      cursor: this.db.prepare("SELECT seq, state FROM cursors WHERE session_id = ?"),
      setCursor: this.db.prepare("INSERT OR REPLACE INTO cursors (session_id, seq, state) VALUES (?, ?, ?)"),
      cursors: this.db.prepare("SELECT session_id, seq FROM cursors").raw(),
      oldDocs: this.db.prepare("SELECT id, text FROM docs WHERE session_id = ? AND seq < ? LIMIT ?").raw(),
      deleteFts: this.db.prepare("INSERT INTO docs_fts (docs_fts, rowid, text) VALUES ('delete', ?, ?)"),
      deleteDoc: this.db.prepare("DELETE FROM docs WHERE id = ?"),
      deleteCursor: this.db.prepare("DELETE FROM cursors WHERE session_id = ?"),
      hasBefore: this.db.prepare("SELECT 1 FROM docs WHERE session_id = ? AND seq < ? LIMIT 1").pluck(),
      searchAll: search(""),
      searchIn: search("AND d.session_id IN (SELECT value FROM json_each(?))"),
    };
  }

  /** Where indexing of `sessionId` stands (undefined: not begun). */
  cursor(sessionId: string): SearchCursor | undefined {
    const row = this.stmt.cursor.get(sessionId) as { seq: number; state: string } | undefined;
    return row ? { seq: row.seq, state: JSON.parse(row.state) as SessionTextState } : undefined;
  }

  /** Each session that has a cursor, with the seq it has indexed up to. */
  cursors(): Array<[string, number]> {
    return this.stmt.cursors.all() as Array<[string, number]>;
  }

  /** Adds documents of sessions and moves their cursors past them, in one transaction. */
  write(batch: ReadonlyArray<{ sessionId: string; docs: readonly SearchDoc[]; cursor: SearchCursor }>): void {
    this.db.transaction(() => {
      for (const { sessionId, docs, cursor } of batch) {
        for (const doc of docs) {
          const { lastInsertRowid } = this.stmt.insertDoc.run(sessionId, doc.seq, doc.kind, doc.text);
          this.stmt.insertFts.run(lastInsertRowid, doc.text);
        }
        this.stmt.setCursor.run(sessionId, cursor.seq, JSON.stringify(cursor.state));
      }
    })();
  }

  /**
   * Deletes up to {@link SEARCH_DELETE_BATCH} of the session's documents that start before
   * `seq` (all of them: Infinity); `dropCursor` also forgets its cursor once none are left.
   * Returns whether some are left.
   */
  trim(sessionId: string, seq: number, dropCursor = false): boolean {
    return this.db.transaction(() => {
      const rows = this.stmt.oldDocs.all(sessionId, seq, SEARCH_DELETE_BATCH) as Array<[number, string]>;
      for (const [id, text] of rows) {
        this.stmt.deleteFts.run(id, text);
        this.stmt.deleteDoc.run(id);
      }
      const more = rows.length === SEARCH_DELETE_BATCH;
      if (!more && dropCursor) this.stmt.deleteCursor.run(sessionId);
      return more;
    })();
  }

  /** Whether the session has documents that start before `seq` (retention dropped those events). */
  hasBefore(sessionId: string, seq: number): boolean {
    return this.stmt.hasBefore.get(sessionId, seq) !== undefined;
  }

  /**
   * Hits of the FTS5 expression `match`, newest first, older than `before` (a hit's id; for the
   * next page), only in `sessions` when given.
   */
  search(
    match: string,
    options: { sessions: readonly string[] | undefined; before: number; limit: number },
  ): SearchStoreHit[] {
    const rows = (
      options.sessions === undefined
        ? this.stmt.searchAll.all(match, options.before, options.limit)
        : this.stmt.searchIn.all(match, JSON.stringify(options.sessions), options.before, options.limit)
    ) as Array<{ id: number; session_id: string; seq: number; kind: SearchDocKind; snippet: string }>;
    return rows.map((r) => {
      const { text, marks } = marksOf(r.snippet);
      return { id: r.id, sessionId: r.session_id, seq: r.seq, kind: r.kind, snippet: text, marks };
    });
  }

  /** The plan SQLite takes for a filtered search (a test holds it to the FTS table driving). */
  plan(): string[] {
    const sql = (this.stmt.searchIn as unknown as { source: string }).source;
    return (this.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all('"x"', "[]", 1, 1) as Array<{ detail: string }>).map(
      (r) => r.detail,
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}
