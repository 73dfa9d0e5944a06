/** Gateway variables a child never inherits: they would hand it the gateway's credentials. */
const WITHHELD_ENV = /^SWITCHBOARD_/;

/**
 * The environment of a process the gateway starts (terminal sessions, agents): the gateway's
 * own minus its secrets (`SWITCHBOARD_*`), then `overrides`, which may set anything.
 */
export function childEnv(overrides: Record<string, string> | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !WITHHELD_ENV.test(k)) env[k] = v;
  return { ...env, ...overrides };
}
