/**
 * Every bound of the plugin system, named. `PluginHost` takes `Partial<PluginLimits>` so tests
 * can shrink timeouts; the defaults are what the gateway runs with.
 */
export const DEFAULT_PLUGIN_LIMITS = {
  /** A plugin's `activate` must resolve within this long, or the start counts as a crash. */
  startTimeoutMs: 10_000,
  /** Default timeout of a host → plugin call (an HTTP hook, a stop request). Expired: `PLUGIN_TIMEOUT`. */
  callTimeoutMs: 10_000,
  /** An agent run fails with `PLUGIN_TIMEOUT` when the plugin sends nothing (delta, tool, final) for this long. */
  agentIdleTimeoutMs: 120_000,
  /** After a stop request the plugin gets this long to run its deactivate hook, then SIGKILL. */
  stopGraceMs: 2_000,
  /** The host pings every plugin this often... */
  heartbeatIntervalMs: 5_000,
  /** ...and kills it as hung (then restarts it) when no pong came for this long (a blocked event loop). */
  heartbeatTimeoutMs: 20_000,
  /** Consecutive crashes after which a plugin is marked `failed` and left alone until its config changes. */
  maxRestarts: 5,
  /** First restart delay; each further consecutive crash doubles it... */
  restartBackoffBaseMs: 500,
  /** ...up to this. */
  restartBackoffMaxMs: 30_000,
  /** A plugin that stayed up this long has its consecutive-crash count reset. */
  stableAfterMs: 60_000,
  /** Largest IPC frame (one JSON line) in either direction; a plugin sending more is killed. */
  frameBytes: 1024 * 1024,
  /**
   * Deepest nesting of arrays and objects in a frame from a plugin, the frame itself included;
   * a plugin sending deeper is killed. The host serializes what plugins send (log fields into the
   * gateway log, tool events into the session log), and serializing recurses: a frame nested
   * 100,000 levels deep fits in 200 KB and overflowed the stack there, outside any handler.
   * The runner gets it in `init` and refuses a call, tool event or answer that deep itself
   * (`VALIDATION_FAILED`), so only a frame written past the runner costs a plugin its process.
   */
  frameDepth: 64,
  /**
   * Delta text (UTF-16 code units) and tool events (JSON length) a plugin run may have unacknowledged;
   * acks come once the log has room (`StoreBacklog.room`). 1 MiB: one frame, so any delta fits; ~25 ms
   * of streaming, far longer than an ack takes, so a keeping-up log never slows a run (a 50 MiB flood
   * took 1.0–1.9 s with and without it); a sixteenth of the log's 16 MiB pause bound.
   */
  agentDeltaWindowChars: 1024 * 1024,
  /** Bytes queued towards a plugin before event deliveries to it are dropped (and counted). */
  outboundQueueBytes: 4 * 1024 * 1024,
  /**
   * Bytes queued towards a plugin (written by the host, not yet read by it) past which the host
   * stops reading the plugin's frames until it has read them. Every request gets an answer, so a
   * plugin that sends requests and leaves the answers unread made the gateway queue them without
   * end (+2.4 GB in 25 s of `sessions.list` calls and forged pongs). While reading is stopped its
   * pongs are not read either: a plugin that never reads is killed as hung after
   * `heartbeatTimeoutMs`. Twice `outboundQueueBytes`, so events a slow plugin lags on never stop it.
   */
  readPauseBytes: 8 * 1024 * 1024,
  /** Runtime API calls a plugin may have in flight at once. */
  pendingRequests: 64,
  /** Runtime API calls a plugin may start per second (fixed one-second windows); the excess fails with `RATE_LIMITED`. */
  callsPerSecond: 5_000,
  /** Event subscriptions per plugin. */
  subscriptions: 32,
  /** Agents one plugin may register. */
  agentsPerPlugin: 16,
  /** Size of a plugin's persisted key-value state (serialized JSON). */
  stateBytes: 1024 * 1024,
  /** Longest state key. */
  stateKeyChars: 256,
  /** Largest `config.writeConfigFile` patch (serialized JSON). */
  configPatchBytes: 64 * 1024,
  /** Largest `messages.inbound` message (serialized JSON). */
  inboundMessageBytes: 256 * 1024,
  /** `system.runCommandWithTimeout`: the longest timeout a plugin may ask for. */
  commandMaxTimeoutMs: 10 * 60_000,
  /** `system.runCommandWithTimeout`: stdout and stderr are each kept up to this many bytes (the rest is counted, not kept). */
  commandOutputBytes: 1024 * 1024,
  /** `system.runCommandWithTimeout`: commands one plugin may run at once. */
  commandsPerPlugin: 4,
  /**
   * Lines of plugin log (API `log` plus stdout/stderr) accepted per second; the excess is dropped,
   * counted, and reported when its one-second window ends (or the plugin exits).
   */
  logLinesPerSecond: 200,
  /**
   * The gateway log keeps at most this many characters of a plugin's log message (an API `log`
   * call's `msg`, a stdout/stderr line); an API call's `fields` whose JSON is longer are replaced.
   */
  logLineChars: 8 * 1024,
  /** V8 old-space limit of a plugin process (`--max-old-space-size`), in MiB. */
  heapMb: 256,
} as const;

export type PluginLimits = { -readonly [K in keyof typeof DEFAULT_PLUGIN_LIMITS]: number };
