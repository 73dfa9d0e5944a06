// Error stacks of the CLI and gateway under source maps (dist/cli/main.js turns them on, as tsx
// does): formatted as V8 does when an error's stack is first read, mapped to src/ lines only
// where a person reads them (a logged `err`, an uncaught exception).
import { findSourceMap } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

/** A stack frame's location: `at f (file:///…/x.js:1:2)` or `at file:///…/x.js:1:2` (a path too). */
const FRAME = /^(\s*at (?:.*\()?)((?:file:\/\/|\/)[^\s()]*?):(\d+):(\d+)(\)?)$/;

/**
 * With source maps on, Node maps every stack it formats, and the first stack through a chunk
 * parses that chunk's whole map on the event loop (the gateway chunk: 40-150 ms). It formats
 * stacks nobody reads: each failed socket write reads its error's `stack` (Writable's `onwrite`),
 * so the first client to drop mid-write stalled every keystroke (docs/benchmarks.md, "Stacks
 * mapped when read"). Here stacks are formatted plain, and {@link mappedStack} maps one when it
 * is read. Nothing to do when source maps are off.
 */
export function plainStacks(): void {
  if (!process.sourceMapsEnabled) return;
  Error.prepareStackTrace = (error: unknown, frames: NodeJS.CallSite[]) =>
    `${Error.prototype.toString.call(error)}${frames.map((frame) => `\n    at ${String(frame)}`).join("")}`;
  // Node prints an uncaught exception's stack after its monitors: mapped, as it would have been.
  process.on("uncaughtExceptionMonitor", (error) => {
    if (error instanceof Error && typeof error.stack === "string") error.stack = mappedStack(error.stack);
  });
}

/** `stack` with each frame in a source-mapped file named by its source's line and column, as Node names them. */
export function mappedStack(stack: string): string {
  if (!process.sourceMapsEnabled) return stack;
  return stack
    .split("\n")
    .map((line) => {
      const match = FRAME.exec(line);
      if (match === null) return line;
      const [, head, file, row, column, tail] = match as unknown as [string, string, string, string, string, string];
      const map = findSourceMap(file.startsWith("/") ? pathToFileURL(file).href : file);
      const entry = map?.findEntry(Number(row) - 1, Number(column) - 1);
      if (entry === undefined || !("originalSource" in entry)) return line;
      const source = entry.originalSource.startsWith("file://")
        ? fileURLToPath(entry.originalSource)
        : entry.originalSource;
      return `${head}${source}:${entry.originalLine + 1}:${entry.originalColumn + 1}${tail}`;
    })
    .join("\n");
}
