import stringWidth from "string-width";

/**
 * Column arithmetic for `ls`, whose names and commands need not be ASCII: how many columns a
 * terminal gives text (string-width: East Asian wide characters and emoji take two, combining
 * marks none, per grapheme), padding to a width and cutting to one without splitting what the
 * user sees as one character. (Control characters do not occur: the text has been through `printable`.)
 */

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** The columns `text` takes on a terminal. */
export function textWidth(text: string): number {
  return stringWidth(text);
}

/** `text` padded with spaces to `width` columns. */
export function padToWidth(text: string, width: number): string {
  return text + " ".repeat(Math.max(0, width - textWidth(text)));
}

/** `text` cut to at most `width` columns, ending with "…" when cut; never inside a character. */
export function truncateToWidth(text: string, width: number): string {
  if (textWidth(text) <= width) return text;
  let out = "";
  let used = 0;
  for (const { segment } of segmenter.segment(text)) {
    const w = stringWidth(segment);
    if (used + w > width - 1) break;
    out += segment;
    used += w;
  }
  return `${out}…`;
}
