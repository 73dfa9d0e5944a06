import { LIMITS, inputTooLarge } from "../protocol/index.js";
import type { SwitchboardError } from "../protocol/index.js";

const encoder = new TextEncoder();

/**
 * The gateway's refusal of input over {@link LIMITS.INPUT_BYTES}, made before sending it, or
 * undefined when it fits: PAYLOAD_TOO_LARGE in the gateway's own words, without a round trip.
 * Sent instead, a terminal frame over the gateway's frame limit (1 MiB) closed the connection
 * (1009), losing the input without an error; and until the gateway sized input as bytes at any
 * length, input over 128 Ki characters (of base64, for bytes) came back VALIDATION_FAILED.
 */
export function inputSizeError(data: string | Uint8Array): SwitchboardError | undefined {
  // A UTF-16 code unit is at most 3 bytes of UTF-8: a keystroke needs no counting.
  if (typeof data === "string" && data.length * 3 <= LIMITS.INPUT_BYTES) return undefined;
  return inputTooLarge(typeof data === "string" ? encoder.encode(data).length : data.length);
}
