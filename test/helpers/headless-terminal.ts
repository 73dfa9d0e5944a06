import headless from "@xterm/headless";

const { Terminal } = headless;
export type HeadlessTerminal = InstanceType<typeof Terminal>;

/** The rows on screen, trailing blanks and empty rows trimmed (GET .../screen's `text`). */
export function visibleText(term: HeadlessTerminal): string {
  const buffer = term.buffer.active;
  const lines: string[] = [];
  for (let y = 0; y < term.rows; y++)
    lines.push(
      buffer
        .getLine(buffer.viewportY + y)!
        .translateToString(true)
        .trimEnd(),
    );
  while (lines.at(-1) === "") lines.pop();
  return lines.join("\n");
}

/** A headless xterm of `cols`×`rows` (1,000 lines of scrollback) that has parsed `parts` in order. */
export async function fed(cols: number, rows: number, ...parts: Array<string | Uint8Array>): Promise<HeadlessTerminal> {
  const term = new Terminal({ cols, rows, scrollback: 1000, allowProposedApi: true });
  for (const part of parts) await new Promise<void>((resolve) => term.write(part, resolve));
  return term;
}
