import { OMIT_HEADERS, formatPatch, structuredPatch } from "diff";
import type { StructuredPatch } from "diff";

/**
 * Unified diffs of text files, and git patches of several (jsdiff: Myers' line diff). Pure: the
 * gateway logs a change's hunks (`file.change.diff`), serves a run's patch, and the web UI shows
 * tool calls' diff content with the same code. test/core/unified-diff.property.test.ts holds that
 * `git apply` of a patch gives exactly the new text.
 */

/** Lines of context around each change in a hunk (git's default). */
export const DIFF_CONTEXT_LINES = 3;

/**
 * Milliseconds one line diff may take (it runs synchronously). Past it the change is shown as
 * every old line removed and every new line added: still exact, only less readable.
 */
export const DIFF_TIMEOUT_MS = 200;

/** A text file's change: `null` for a side where the file does not exist. */
export interface TextChange {
  path: string;
  oldText: string | null;
  newText: string | null;
}

/** A change's hunks as unified-diff text, and its lines added and removed. */
export interface DiffHunks {
  /** `@@ -a,b +c,d @@` headers and their lines; "" when nothing changed. */
  diff: string;
  added: number;
  removed: number;
}

function structured(change: TextChange): StructuredPatch {
  const oldText = change.oldText ?? "";
  const newText = change.newText ?? "";
  const options = { context: DIFF_CONTEXT_LINES, timeout: DIFF_TIMEOUT_MS };
  const patch = structuredPatch(
    `a/${change.path}`,
    `b/${change.path}`,
    oldText,
    newText,
    undefined,
    undefined,
    options,
  );
  return patch ?? wholeReplacement(change.path, oldText, newText);
}

/** The patch that removes every old line and adds every new one (a diff that ran out of time). */
function wholeReplacement(path: string, oldText: string, newText: string): StructuredPatch {
  const side = (text: string, sign: string): string[] => {
    if (text === "") return [];
    const lines = text.split("\n");
    const ends = lines.at(-1) === "";
    if (ends) lines.pop();
    const out = lines.map((l) => sign + l);
    if (!ends) out.push("\\ No newline at end of file");
    return out;
  };
  const removed = side(oldText, "-");
  const added = side(newText, "+");
  const count = (lines: string[]): number => lines.filter((l) => !l.startsWith("\\")).length;
  return {
    oldFileName: `a/${path}`,
    newFileName: `b/${path}`,
    oldHeader: undefined,
    newHeader: undefined,
    hunks:
      removed.length + added.length === 0
        ? []
        : [
            {
              oldStart: 1,
              oldLines: count(removed),
              newStart: 1,
              newLines: count(added),
              lines: [...removed, ...added],
            },
          ],
  };
}

/** The hunks of `change` and its counts of lines added and removed. */
export function diffHunks(change: TextChange): DiffHunks {
  const patch = structured(change);
  let added = 0;
  let removed = 0;
  for (const hunk of patch.hunks)
    for (const line of hunk.lines) {
      if (line.startsWith("+")) added++;
      else if (line.startsWith("-")) removed++;
    }
  const text = formatPatch(patch, OMIT_HEADERS);
  return { diff: patch.hunks.length === 0 ? "" : text, added, removed };
}

/**
 * A git patch of `changes` (`git apply`-able from the directory the paths are relative to):
 * `diff --git a/P b/P` headers, `new file mode` and `deleted file mode` for files that appear and
 * vanish, names quoted as git quotes them. A change with nothing to show is left out.
 */
export function gitPatch(changes: readonly TextChange[]): string {
  return changes
    .filter((c) => c.oldText !== c.newText)
    .map((change) => {
      const patch = structured(change);
      const isCreate = change.oldText === null;
      const isDelete = change.newText === null;
      return formatPatch({
        ...patch,
        oldFileName: isCreate ? "/dev/null" : `a/${change.path}`,
        newFileName: isDelete ? "/dev/null" : `b/${change.path}`,
        isGit: true,
        ...(isCreate ? { isCreate: true } : {}),
        ...(isDelete ? { isDelete: true } : {}),
      });
    })
    .join("");
}

/** One line of a unified diff as a viewer colors it. */
export type DiffLineKind = "hunk" | "add" | "del" | "context" | "note";

/** What kind of line `line` of a diff's hunks is. */
export function diffLineKind(line: string): DiffLineKind {
  if (line.startsWith("@@")) return "hunk";
  if (line.startsWith("+")) return "add";
  if (line.startsWith("-")) return "del";
  if (line.startsWith("\\")) return "note";
  return "context";
}
