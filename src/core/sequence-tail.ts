const ESC = 0x1b;
const BEL = 0x07;

/**
 * How many bytes at the end of `bytes` are an unfinished escape sequence or UTF-8 character:
 * what a terminal parser that read `bytes` holds without having shown it. A viewer handed a
 * screen parsed up to here replays from that many bytes back, so the cut sequence arrives whole
 * (`/ws/session?since=screen`). Strings (OSC, DCS) that started before `bytes` are not seen.
 */
export function incompleteTail(bytes: Uint8Array): number {
  const esc = bytes.lastIndexOf(ESC);
  if (esc === -1) return utf8Cut(bytes, 0);
  // A lone ESC at the end may be the first half of the ST that ends a string begun before it.
  const string = esc === bytes.length - 1 ? openString(bytes, esc) : -1;
  if (string !== -1) return bytes.length - string;
  if (!escapeComplete(bytes, esc)) return bytes.length - esc;
  return utf8Cut(bytes, esc + 1);
}

/** Where a string (OSC, DCS, SOS, PM, APC) that is still open at `end` starts, or -1. */
function openString(bytes: Uint8Array, end: number): number {
  const start = bytes.lastIndexOf(ESC, end - 1);
  if (start === -1) return -1;
  const kind = bytes[start + 1];
  if (kind === 0x5d) return bytes.subarray(start, end).includes(BEL) ? -1 : start;
  return kind === 0x50 || kind === 0x58 || kind === 0x5e || kind === 0x5f ? start : -1;
}

/** Whether the escape sequence at `at` (the last ESC in `bytes`) ends within `bytes`. */
function escapeComplete(bytes: Uint8Array, at: number): boolean {
  const kind = bytes[at + 1];
  if (kind === undefined) return false;
  switch (kind) {
    case 0x5b: // CSI: parameters and intermediates (0x20–0x3f), then a final byte 0x40–0x7e
      for (let i = at + 2; i < bytes.length; i++) if (bytes[i]! >= 0x40 && bytes[i]! <= 0x7e) return true;
      return false;
    case 0x5d: // OSC: ends with BEL, or with ST (ESC \), whose ESC would be the last one
      return bytes.indexOf(BEL, at + 2) !== -1;
    case 0x50: // DCS, SOS, PM, APC: end only with ST
    case 0x58:
    case 0x5e:
    case 0x5f:
      return false;
    default:
      // ESC, intermediates 0x20–0x2f, then a final byte 0x30–0x7e (ESC \ included).
      for (let i = at + 1; i < bytes.length; i++) if (bytes[i]! >= 0x30 && bytes[i]! <= 0x7e) return true;
      return false;
  }
}

/** Bytes of a UTF-8 character cut at the end of `bytes` (looking no further back than `from`). */
function utf8Cut(bytes: Uint8Array, from: number): number {
  for (let back = 1; back <= 3 && bytes.length - back >= from; back++) {
    const b = bytes[bytes.length - back]!;
    if (b < 0x80) return 0;
    if (b >= 0xc0) {
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return need > back ? back : 0;
    }
  }
  return 0;
}
