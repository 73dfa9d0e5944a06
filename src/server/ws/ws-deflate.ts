import type { PerMessageDeflateOptions, WebSocket } from "ws";

/**
 * permessage-deflate (RFC 7692) on both WebSocket endpoints, negotiated only when the client
 * offers it (browsers always do) and `compression.websocket` is not false. A phone on a slow
 * link opens a busy session in a fraction of the bytes (docs/benchmarks.md, "Slow link");
 * test/server/ws-deflate.test.ts holds the negotiation, the threshold and exact round trips.
 */

/** Messages smaller than this go uncompressed: deflating a keystroke's echo costs more than it saves. */
export const WS_DEFLATE_THRESHOLD_BYTES = 1024;
/**
 * The deflate window (2^14 = 16 KiB) and zlib memory level: about 128 KiB of zlib state per
 * compressing connection (zlib's deflate takes 2^(windowBits+2) + 2^(memLevel+9) bytes), half of
 * zlib's default, for most of its ratio on terminal output and JSON events.
 */
export const WS_DEFLATE_WINDOW_BITS = 14;
export const WS_DEFLATE_MEM_LEVEL = 7;
/** zlib level: 1 is fast and takes most of the gain on repetitive text (a log, a transcript). */
export const WS_DEFLATE_LEVEL = 1;
/** Messages deflated or inflated at once across the gateway (ws's zlib queue; the rest wait in order). */
export const WS_DEFLATE_CONCURRENCY = 4;

/** The `perMessageDeflate` option of an endpoint's `ws` server: false when compression is off. */
export function deflateOptions(enabled: boolean): PerMessageDeflateOptions | false {
  if (!enabled) return false;
  return {
    threshold: WS_DEFLATE_THRESHOLD_BYTES,
    // No context carried from one message to the next: the window is not kept between messages,
    // so an idle connection holds no compression history, and a client may ask for the same.
    serverNoContextTakeover: true,
    serverMaxWindowBits: WS_DEFLATE_WINDOW_BITS,
    concurrencyLimit: WS_DEFLATE_CONCURRENCY,
    zlibDeflateOptions: { level: WS_DEFLATE_LEVEL, memLevel: WS_DEFLATE_MEM_LEVEL },
  };
}

/**
 * Whether a connection negotiated permessage-deflate: its messages must then go through
 * `ws.send`, which queues them behind the ones being deflated, never straight to the socket.
 */
export function deflates(ws: WebSocket): boolean {
  return ws.extensions !== "";
}
