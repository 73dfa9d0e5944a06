export { LOG_DIRECT_MAX_BYTES, LOG_RATE_WINDOW_MS, LOG_STREAMING_BYTES } from "./commit-queues.js";
export * from "./event-log.js";
export * from "./group-commit.js";
export * from "./hot-ring.js";
export * from "./retention.js";
export * from "./session-log.js";
export * from "./sqlite-store.js";
export * from "./store.js";
export * from "./types.js";
