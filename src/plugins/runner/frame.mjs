// What a frame to the host may be: the host's limits on its size and nesting, checked here
// before a frame is sent, so that a call, tool event or answer over them is refused to the
// plugin (a PluginError) instead of costing it its process as a protocol violation.
import { PluginError } from "./plugin-error.mjs";

/** Most bytes of one frame to the host (set by init): a bigger frame is a protocol violation that ends the process. */
let frameBytes = Infinity;
/** Deepest nesting of arrays and objects in a frame to the host, the frame itself included (set by init): deeper is a protocol violation too. */
let frameDepth = Infinity;

/** Takes the host's limits from its `init` frame (`limits.frameBytes`, `limits.frameDepth`). */
export function setFrameLimits(init) {
  frameBytes = init.frameBytes;
  frameDepth = init.frameDepth;
}

/**
 * Whether `json` (text JSON.stringify wrote) nests arrays and objects more than `max` levels deep,
 * counted as the host counts the parsed frame (`nestsDeeperThan` in src/protocol/json-depth.ts,
 * which the runner cannot import): on the text, so a `toJSON` counts as what it writes. It jumps
 * from bracket to quote with a regular expression and over strings with indexOf: stepping
 * through every character took ~300 ms for 800 tool events of 64 KiB (a plugin busy that long
 * misses heartbeats on a loaded machine); this takes ~10 ms.
 */
function jsonNestsDeeperThan(json, max) {
  const structure = /["[\]{}]/g;
  let depth = 0;
  for (let match; (match = structure.exec(json)) !== null;) {
    const char = match[0];
    if (char === '"') structure.lastIndex = afterString(json, match.index);
    else if (char === "{" || char === "[") {
      if (++depth > max) return true;
    } else depth--;
  }
  return false;
}

/** The index just after the JSON string that opens at `start` (valid JSON: its closing quote is there). */
function afterString(json, start) {
  for (let quote = json.indexOf('"', start + 1); ; quote = json.indexOf('"', quote + 1)) {
    let backslashes = 0;
    while (json.charCodeAt(quote - 1 - backslashes) === 0x5c /* \\ */) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
  }
}

const tooLarge = (what) =>
  `${what} is larger than the ${frameBytes} bytes a frame to the gateway may have (limits.frameBytes)`;

const tooDeep = (what) =>
  `${what} is nested deeper than the ${frameDepth} levels of arrays and objects a frame to the gateway may have, the frame itself included (limits.frameDepth)`;

/**
 * `line` (a frame's JSON and its newline), checked against what the host takes: a call or an
 * answer over `frameBytes` or nested deeper than `frameDepth` is refused here (thrown as a
 * PluginError), as the plugin's own mistake, instead of costing it its process.
 */
export function checkedLine(line, what) {
  if (Buffer.byteLength(line) > frameBytes) throw new PluginError("PAYLOAD_TOO_LARGE", tooLarge(what));
  if (jsonNestsDeeperThan(line, frameDepth)) throw new PluginError("VALIDATION_FAILED", tooDeep(what));
  return line;
}

/** `frame` as the line sent to the host; throws a PluginError when it is not JSON or not within the limits. */
export function frameLine(frame, what) {
  let json;
  try {
    json = JSON.stringify(frame);
  } catch (error) {
    throw new PluginError("VALIDATION_FAILED", `${what} is not JSON (${error.message})`);
  }
  return checkedLine(json + "\n", what);
}

/**
 * Most characters of delta text in one frame: a longer text is sent in pieces, since a frame over
 * `frameBytes` ends the plugin. A character takes at most 6 bytes in a frame (`\u0001`); 512
 * bytes are left for the rest of the frame.
 */
export const deltaPieceChars = () =>
  Number.isFinite(frameBytes) ? Math.max(1024, Math.floor((frameBytes - 512) / 6)) : Infinity;

const isHighSurrogate = (code) => code >= 0xd800 && code <= 0xdbff;

/**
 * Where the piece of `text` that starts at `start` and has at most `most` characters ends: not
 * between the two halves of a surrogate pair, so that each piece is valid text.
 */
export function pieceEnd(text, start, most) {
  const end = Math.min(text.length, start + most);
  return end < text.length && isHighSurrogate(text.charCodeAt(end - 1)) ? end - 1 : end;
}
