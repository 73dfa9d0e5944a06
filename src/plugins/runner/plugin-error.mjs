// The error a plugin sees when the gateway (or the runner, on its behalf) refuses something,
// and how an error crosses the pipe to the host.

/** An error the host answered with; `code` is one of the gateway's error codes. */
export class PluginError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "PluginError";
    this.code = code;
  }
}

/** `error` as a failed answer's `error`: a PluginError keeps its code; anything else the plugin threw is PLUGIN_FAILED. */
export function errorToWire(error) {
  if (error instanceof PluginError) return { code: error.code, message: error.message };
  // What the plugin threw is the plugin's failure (502), not the gateway's (500).
  return { code: "PLUGIN_FAILED", message: error instanceof Error ? error.message : String(error) };
}
