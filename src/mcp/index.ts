export { SwitchboardMcpServer, TOOLS, serveStdio } from "./server.js";
export { GatewayAccess } from "./gateway.js";
export type { GatewayAccessOptions } from "./gateway.js";
export type { McpServerOptions } from "./server.js";
export { DEFAULT_OUTPUT_BYTES, DEFAULT_WAIT_MS, MAX_OUTPUT_BYTES, MAX_WAIT_MS } from "./output-tools.js";
export { DEFAULT_RUN_WAIT_MS, MAX_RUN_WAIT_MS } from "./agent-tools.js";
export { decodePage, plainText } from "./output-text.js";
