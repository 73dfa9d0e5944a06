export * from "./event-log.js";
export * from "./group-commit.js";
export * from "./hot-ring.js";
export * from "./retention.js";
export * from "./session-log.js";
export * from "./sqlite-store.js";
export * from "./store.js";
export * from "./types.js";
