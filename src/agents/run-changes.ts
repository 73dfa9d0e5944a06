import { setImmediate as nextTurn } from "node:timers/promises";
import { diffHunks, gitPatch } from "../core/unified-diff.js";
import type { TextChange } from "../core/unified-diff.js";
import { MAX_CHANGES_DIFF_CHARS, MAX_LISTED_RUNS, SwitchboardError } from "../protocol/index.js";
import type { ChangedFile, ChangesAnswer, EventOf } from "../protocol/index.js";
import type { SessionLog } from "../log/session-log.js";

/** Stored events one read of the scan takes (a filtered read examines at most FILTERED_SCAN_EVENTS). */
const SCAN_READ_BYTES = 1024 * 1024;

const SCANNED: ReadonlySet<string> = new Set(["run.queued", "file.change"]);

type Change = EventOf<"file.change">;

/** One file's changes in the scope asked for: the first old side and the last new side. */
interface FileState {
  first: Change;
  last: Change;
  runIds: string[];
  changes: number;
}

/** What the log says of the changes: per file (a region change is its own entry), and the runs. */
interface Scan {
  runs: string[];
  files: FileState[];
}

/**
 * Reads the session's `run.queued` and `file.change` events (one read per event-loop turn) and
 * combines the changes of `runId` (all runs: undefined) per file. RUN_NOT_FOUND when the run is
 * not in the retained log; `latest` is the last run.
 */
async function scan(log: SessionLog, sessionId: string, runId: string | undefined): Promise<Scan & { runId?: string }> {
  const runs: string[] = [];
  const changes: Change[] = [];
  let since = log.first - 1;
  for (;;) {
    const page = log.read(since, { types: SCANNED, maxBytes: SCAN_READ_BYTES });
    for (const entry of page.entries) {
      if (entry.type === "run.queued") runs.push((JSON.parse(entry.json) as EventOf<"run.queued">).runId);
      else changes.push(JSON.parse(entry.json) as Change);
    }
    if (page.next >= page.head || page.next <= since) break;
    since = page.next;
    await nextTurn();
  }
  const wanted = runId === "latest" ? runs.at(-1) : runId;
  if (runId !== undefined && (wanted === undefined || !runs.includes(wanted))) {
    const latest = runs.slice(-5).reverse();
    throw new SwitchboardError(
      "RUN_NOT_FOUND",
      runs.length === 0
        ? `session ${sessionId} has no run in its retained log`
        : `session ${sessionId} has no run ${runId} in its retained log; its latest runs: ${latest.join(", ")}`,
      { runs: latest },
    );
  }
  const files = new Map<string, FileState>();
  const regions: FileState[] = [];
  for (const change of changes) {
    if (wanted !== undefined && change.runId !== wanted) continue;
    if (change.region === true) {
      regions.push({ first: change, last: change, runIds: [change.runId], changes: 1 });
      continue;
    }
    const known = files.get(change.path);
    if (known === undefined) {
      files.set(change.path, { first: change, last: change, runIds: [change.runId], changes: 1 });
      continue;
    }
    known.last = change;
    known.changes++;
    if (!known.runIds.includes(change.runId)) known.runIds.push(change.runId);
  }
  return {
    runs: runs.slice(-MAX_LISTED_RUNS),
    files: [...files.values(), ...regions],
    ...(wanted !== undefined ? { runId: wanted } : {}),
  };
}

/** The texts of a file's combined change, when both sides are text. */
function texts(state: FileState): TextChange | undefined {
  const { first, last } = state;
  const oldText = first.oldBytes === null ? null : first.oldText;
  const newText = last.newBytes === null ? null : last.newText;
  if (oldText === undefined || newText === undefined) return undefined;
  return { path: first.path, oldText, newText };
}

/** How a file's combined change is kept: text when both its sides are. */
function contentOf(state: FileState, change: TextChange | undefined): ChangedFile["content"] {
  if (change !== undefined) return "text";
  return state.first.content === "too-large" || state.last.content === "too-large" ? "too-large" : "binary";
}

function listed(state: FileState, diffBudget: { left: number }): ChangedFile | undefined {
  const { first, last } = state;
  if (first.oldSha256 === last.newSha256 && state.first.region !== true) return undefined;
  const change = texts(state);
  const status = first.oldBytes === null ? "added" : last.newBytes === null ? "deleted" : "modified";
  const content = contentOf(state, change);
  const hunks = change !== undefined ? diffHunks(change) : undefined;
  const fits = hunks !== undefined && hunks.diff.length <= diffBudget.left;
  if (fits) diffBudget.left -= hunks.diff.length;
  return {
    path: first.path,
    status,
    content,
    added: hunks?.added ?? 0,
    removed: hunks?.removed ?? 0,
    ...(last.toolCallId !== undefined ? { toolCallId: last.toolCallId } : {}),
    runIds: state.runIds,
    changes: state.changes,
    ...(hunks !== undefined ? (fits ? { diff: hunks.diff } : { diffOmitted: true as const }) : {}),
    ...(first.region === true ? { region: true as const } : {}),
    oldBytes: first.oldBytes,
    newBytes: last.newBytes,
    oldSha256: first.oldSha256,
    newSha256: last.newSha256,
  };
}

/** The changes of run `runId` (`latest`: the last run), or of all runs when undefined. */
export async function changesOf(
  session: { id: string; log: SessionLog },
  runId: string | undefined,
): Promise<ChangesAnswer> {
  const found = await scan(session.log, session.id, runId);
  const budget = { left: MAX_CHANGES_DIFF_CHARS };
  const files = found.files.flatMap((f) => listed(f, budget) ?? []);
  return {
    sessionId: session.id,
    ...(found.runId !== undefined ? { runId: found.runId } : {}),
    runs: found.runs,
    files,
  };
}

/**
 * The git patch of run `runId` (or all runs): every text file's combined change, `git apply`-able
 * in the session's cwd. Binary, too-large and region changes have no patch; they are named in
 * `# ` lines before the first file, which `git apply` skips.
 */
export async function patchOf(session: { id: string; log: SessionLog }, runId: string | undefined): Promise<string> {
  const found = await scan(session.log, session.id, runId);
  const notes: string[] = [];
  const changes: TextChange[] = [];
  for (const state of found.files) {
    const change = texts(state);
    if (state.first.region === true) notes.push(`# ${state.first.path}: only a region was reported, not in this patch`);
    else if (change === undefined)
      notes.push(`# ${state.first.path}: ${contentOf(state, change)} change, not in this patch`);
    else changes.push(change);
  }
  return (notes.length > 0 ? `${notes.join("\n")}\n` : "") + gitPatch(changes);
}
