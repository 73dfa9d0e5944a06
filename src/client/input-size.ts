import { SwitchboardError } from "../protocol/errors.js";
import { LIMITS, inputTooLarge } from "../protocol/limits.js";

const encoder = new TextEncoder();

/**
 * Why the gateway would refuse this input, found before sending it; undefined when it is fine.
 * VALIDATION_FAILED for input that is neither text nor bytes (a plain-JS caller's mistake), and
 * PAYLOAD_TOO_LARGE, in the gateway's own words, for input over {@link LIMITS.INPUT_BYTES}:
 * sent instead, a terminal frame over the gateway's frame limit (1 MiB) closed the connection
 * (1009), losing the input without an error; and until the gateway sized input as bytes at any
 * length, input over 128 Ki characters (of base64, for bytes) came back VALIDATION_FAILED.
 */
export function inputError(data: string | Uint8Array): SwitchboardError | undefined {
  // From plain JS anything may come: said as the gateway would say it, not as a size of `undefined`.
  if (typeof data !== "string" && !(data instanceof Uint8Array))
    return new SwitchboardError(
      "VALIDATION_FAILED",
      `input: a string or bytes (a Uint8Array), not ${data === null ? "null" : typeof data}`,
    );
  // A UTF-16 code unit is at most 3 bytes of UTF-8: a keystroke needs no counting.
  if (typeof data === "string" && data.length * 3 <= LIMITS.INPUT_BYTES) return undefined;
  return inputTooLarge(typeof data === "string" ? encoder.encode(data).length : data.length);
}
