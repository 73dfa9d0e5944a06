export * from "./display-text.js";
export * from "./errors.js";
export * from "./events.js";
export * from "./frames.js";
export * from "./json-depth.js";
export * from "./limits.js";
export * from "./sessions.js";
export * from "./token-chars.js";
