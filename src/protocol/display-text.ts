/**
 * Characters that make a string display as something other than what it is: controls (a
 * terminal acts on them: retitle, clear the screen, a new line), bidirectional controls (they
 * reorder what follows, the "Trojan Source" trick, CVE-2021-42574) and invisible characters
 * (zero-width spaces, Unicode tags: text that is there but not shown). Names people choose and
 * others read — session names, token names — are refused with one of these; text shown from
 * elsewhere (commands, tool titles) has them replaced or escaped.
 *
 * Allowed, because real text needs them: right-to-left scripts themselves (no control is
 * needed to write Hebrew or Arabic), variation selectors after a visible character (`❤️`,
 * keycaps `1️⃣`), the zero-width (non-)joiner between two non-ASCII characters (emoji
 * sequences `👩‍💻`, Persian, Indic scripts), and the tag characters of a subdivision flag
 * (`🏴󠁧󠁢󠁳󠁣󠁴󠁿`) — anywhere else tags are invisible text ("ASCII smuggling").
 */

export type HiddenCharKind = "control" | "bidi" | "invisible" | "surrogate";

export interface HiddenChar {
  kind: HiddenCharKind;
  /** The code point (a lone surrogate's code unit). */
  codePoint: number;
  /** 1-based position in code points, as a person counts characters. */
  position: number;
  /** Index in UTF-16 code units, as `String.prototype.slice` counts. */
  index: number;
  /** The character itself (one or two code units). */
  char: string;
}

// Cc: C0, DEL, C1. Zl/Zp: U+2028/U+2029 break lines like \n.
const CONTROL = /^[\p{Cc}\p{Zl}\p{Zp}]$/u;
const BIDI = /^\p{Bidi_Control}$/u;
const SURROGATE = /^\p{Cs}$/u;
// Default_Ignorable_Code_Point: what renders as nothing (ZWSP, word joiner, BOM, soft hyphen,
// tags, Hangul fillers, ...). Joiners and variation selectors are checked in context below.
const IGNORABLE = /^\p{Default_Ignorable_Code_Point}$/u;
const JOINER = /^\p{Join_Control}$/u;
const VARIATION_SELECTOR = /^\p{Variation_Selector}$/u;
// Quick pass: text without any of these (nearly all) is checked with one regex test.
const SUSPECT = /[\p{Cc}\p{Zl}\p{Zp}\p{Cs}\p{Bidi_Control}\p{Default_Ignorable_Code_Point}]/u;

/** Names of the characters a message is most likely to be about. */
const NAMES: Readonly<Record<number, string>> = {
  0x061c: "ARABIC LETTER MARK",
  0x200e: "LEFT-TO-RIGHT MARK",
  0x200f: "RIGHT-TO-LEFT MARK",
  0x202a: "LEFT-TO-RIGHT EMBEDDING",
  0x202b: "RIGHT-TO-LEFT EMBEDDING",
  0x202c: "POP DIRECTIONAL FORMATTING",
  0x202d: "LEFT-TO-RIGHT OVERRIDE",
  0x202e: "RIGHT-TO-LEFT OVERRIDE",
  0x2066: "LEFT-TO-RIGHT ISOLATE",
  0x2067: "RIGHT-TO-LEFT ISOLATE",
  0x2068: "FIRST STRONG ISOLATE",
  0x2069: "POP DIRECTIONAL ISOLATE",
  0x00ad: "SOFT HYPHEN",
  0x200b: "ZERO WIDTH SPACE",
  0x200c: "ZERO WIDTH NON-JOINER",
  0x200d: "ZERO WIDTH JOINER",
  0x2028: "LINE SEPARATOR",
  0x2029: "PARAGRAPH SEPARATOR",
  0x2060: "WORD JOINER",
  0xfeff: "ZERO WIDTH NO-BREAK SPACE",
  0x115f: "HANGUL CHOSEONG FILLER",
  0x1160: "HANGUL JUNGSEONG FILLER",
  0x3164: "HANGUL FILLER",
  0xffa0: "HALFWIDTH HANGUL FILLER",
  0x0000: "NULL",
  0x0009: "CHARACTER TABULATION",
  0x000a: "LINE FEED",
  0x000d: "CARRIAGE RETURN",
  0x001b: "ESCAPE",
  0x007f: "DELETE",
};

function visibleNonAscii(c: string | undefined): boolean {
  return c !== undefined && c.codePointAt(0)! > 0x7f && !SUSPECT.test(c);
}

const BLACK_FLAG = 0x1f3f4;
const CANCEL_TAG = 0xe007f;
/** Tag letters and digits: what a subdivision flag spells (`gbsct`). */
const isFlagTag = (c: string | undefined) => {
  const cp = c?.codePointAt(0) ?? 0;
  return (cp >= 0xe0030 && cp <= 0xe0039) || (cp >= 0xe0061 && cp <= 0xe007a);
};
// UTS #51: a subdivision flag is 🏴, a region and subdivision code in tag characters, CANCEL TAG.
const FLAG_TAGS_MAX = 7;

/** Whether chars[i] is one of the tags of a subdivision flag (🏴 + tags + CANCEL TAG). */
function inFlagSequence(chars: readonly string[], i: number): boolean {
  const last = chars[i]!.codePointAt(0) === CANCEL_TAG ? i - 1 : i;
  if (!isFlagTag(chars[last])) return false;
  // Bounded both ways, so a long run of tags costs linear time, not quadratic.
  let start = last;
  while (last - start < FLAG_TAGS_MAX && isFlagTag(chars[start - 1])) start--;
  let end = last + 1;
  while (end - start <= FLAG_TAGS_MAX && isFlagTag(chars[end])) end++;
  return (
    end - start <= FLAG_TAGS_MAX &&
    chars[start - 1]?.codePointAt(0) === BLACK_FLAG &&
    chars[end]?.codePointAt(0) === CANCEL_TAG
  );
}

function kindOf(chars: readonly string[], i: number): HiddenCharKind | undefined {
  const c = chars[i]!;
  if (!SUSPECT.test(c)) return undefined;
  if (SURROGATE.test(c)) return "surrogate";
  if (CONTROL.test(c)) return "control";
  if (BIDI.test(c)) return "bidi";
  if (!IGNORABLE.test(c)) return undefined;
  if (inFlagSequence(chars, i)) return undefined;
  const before = chars[i - 1];
  if (VARIATION_SELECTOR.test(c) && before !== undefined && !SUSPECT.test(before)) return undefined;
  if (JOINER.test(c) && (visibleNonAscii(before) || (before !== undefined && VARIATION_SELECTOR.test(before)))) {
    if (visibleNonAscii(chars[i + 1])) return undefined;
  }
  return "invisible";
}

/** Every character of `text` that {@link displayTextProblem} would refuse, in order. */
export function hiddenChars(text: string): HiddenChar[] {
  if (!SUSPECT.test(text)) return [];
  // Array.from splits by code point; a lone surrogate stays one element.
  const chars = Array.from(text);
  const found: HiddenChar[] = [];
  let index = 0;
  for (let i = 0; i < chars.length; i++) {
    const kind = kindOf(chars, i);
    const char = chars[i]!;
    if (kind) found.push({ kind, codePoint: char.codePointAt(0)!, position: i + 1, index, char });
    index += char.length;
  }
  return found;
}

/** `U+202E` (with its name when known): how messages and escapes name a character. */
export function codePointName(codePoint: number): string {
  const hex = `U+${codePoint.toString(16).toUpperCase().padStart(4, "0")}`;
  const name = NAMES[codePoint] ?? (codePoint >= 0xe0000 && codePoint <= 0xe007f ? "TAG" : undefined);
  return name ? `${hex} ${name}` : hex;
}

/**
 * Why `text` cannot be a name people read, or undefined when it can: which character, where,
 * and what to do.
 *
 * @example
 * displayTextProblem("invoice\u202Efdp.exe");
 * // "contains U+202E RIGHT-TO-LEFT OVERRIDE, a bidirectional control character, at character 8: ..."
 */
export function displayTextProblem(text: string): string | undefined {
  const first = hiddenChars(text)[0];
  if (!first) return undefined;
  const at = `at character ${first.position}`;
  const what = codePointName(first.codePoint);
  switch (first.kind) {
    case "control":
      return `contains ${what}, a control character, ${at}: terminals act on control characters (a new line, a new title, a cleared screen); remove it`;
    case "bidi":
      return `contains ${what}, a bidirectional control character, ${at}: it makes the text display in another order than it has (right-to-left text needs no control characters); remove it`;
    case "invisible":
      return JOINER.test(first.char)
        ? `contains ${what}, an invisible character, ${at}: joiners are accepted only between two non-ASCII characters (emoji sequences, Indic or Arabic script); remove it`
        : `contains ${what}, an invisible character, ${at}: it makes the text differ from what it shows; remove it`;
    case "surrogate":
      return `contains a lone surrogate (${what}) ${at}: the text is not well-formed Unicode; send whole characters`;
  }
}

/**
 * `text` with every character {@link hiddenChars} finds replaced by `replace(char)` (default `?`),
 * for showing text not checked on the way in (a command, a tool title, an old name).
 * @example
 * replaceHiddenChars("a\u202Eb"); // "a?b"
 * replaceHiddenChars("a\u202Eb", (c) => `<${codePointName(c.codePoint)}>`); // "a<U+202E RIGHT-TO-LEFT OVERRIDE>b"
 */
export function replaceHiddenChars(text: string, replace: (c: HiddenChar) => string = () => "?"): string {
  const found = hiddenChars(text);
  if (found.length === 0) return text;
  let out = "";
  let from = 0;
  for (const c of found) {
    out += text.slice(from, c.index) + replace(c);
    from = c.index + c.char.length;
  }
  return out + text.slice(from);
}
