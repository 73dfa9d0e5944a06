import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { MIN_TOKEN_CHARS } from "../server/config/config.js";
import { tokenCharsProblem } from "../protocol/index.js";
import { DEFAULT_HOST, DEFAULT_PORT } from "../server/config/listen-defaults.js";
import { DEFAULT_LOG_LEVEL, LOG_LEVELS, isLogLevel, logLevelFromEnv } from "../server/ops/logger.js";
import { EXIT } from "./exit-codes.js";
import { LOG_FORMATS, isLogFormat, logFormatFromEnv } from "../system/log-format.js";
import { removeGatewayFile, writeGatewayFile } from "./gateway-file.js";
import { nodeIdProblem, parseRedisSeeds } from "../cluster/cluster-settings.js";
import { parseByteSize, parseDuration } from "../core/units.js";
import type { EndedRetentionSetting } from "../server/gateway.js";
import type { StopAsked } from "../server/stop-request.js";
import { InternalError } from "../protocol/errors.js";
import { quickenOptimisation } from "../system/jit-budget.js";

export const SERVE_USAGE = `Usage: switchboard serve [--host 127.0.0.1] [--port 7317] [--data-dir DIR] [--config FILE] [--token T]
                        [--redis URL[,URL...]] [--node-id NAME]
                        [--ended-max-age 30d] [--ended-max-bytes 4GiB] [--holders on|off]
                        [--tls-cert FILE --tls-key FILE]

Starts the gateway. Options fall back to SWITCHBOARD_HOST, SWITCHBOARD_PORT,
SWITCHBOARD_DATA_DIR, SWITCHBOARD_CONFIG, SWITCHBOARD_TOKEN, SWITCHBOARD_REDIS_URL and
SWITCHBOARD_NODE_ID. --port 0 picks a free port. --redis joins a cluster sharing its log in
Redis (several URLs: the seeds of a Redis Cluster; redis+sentinel://H1:26379,H2:26379/MASTER:
the master those Sentinels name, followed across failovers); the node id defaults to HOST:PORT.
Ended sessions and their logs are removed 30 days after they ended, and oldest first while
they take more than 4 GiB: --ended-max-age (SWITCHBOARD_ENDED_MAX_AGE; 12h, 7d, ...) and
--ended-max-bytes (SWITCHBOARD_ENDED_MAX_BYTES; 500MiB, 10GB, ...) change that, ahead of the
config's retention.endedSessions; "off" keeps them by that measure.
Terminal sessions run under holders, so they outlive a stop or crash of the gateway and the next
serve on the same data directory adopts them: --holders off (SWITCHBOARD_HOLDERS) runs them in
the gateway, ending with it, ahead of the config's sessions.holders.
A token needs at least 16 characters; without one, one is generated on first start and
kept in DATA_DIR/token (mode 0600). An empty variable counts as unset. Logs go to stderr at
SWITCHBOARD_LOG_LEVEL (${LOG_LEVELS.join(", ")}; default ${DEFAULT_LOG_LEVEL}): a line a person
reads on a terminal, JSON lines elsewhere (SWITCHBOARD_LOG_FORMAT=json or pretty chooses).
--tls-cert and --tls-key (SWITCHBOARD_TLS_CERT, SWITCHBOARD_TLS_KEY; PEM files, both or
neither) serve HTTPS and WSS instead of HTTP, so a phone can reach the gateway beyond
loopback without a proxy in front; the UI's cookie is then Secure.
Once ready it prints one line to stdout: "switchboard listening on http://HOST:PORT", and
records that URL (never the token) in DATA_DIR/gateway.json, where client commands find it.`;

/**
 * The longest `serve`'s graceful stop may take: past it the process exits 1 without finishing it,
 * as after `kill -9` (the kernel releases gateway.lock, held sessions run on, committed output is
 * kept). Every step of a stop has a bound of its own, the sessions' 8 s (STOP_SESSIONS_MAX_MS) the
 * longest; this one is the backstop should one of them not hold.
 */
export const STOP_DEADLINE_MS = 30_000;

/**
 * Ports browsers and `fetch` refuse to connect to (the Fetch standard's "bad ports"): a gateway
 * there could be reached by neither the UI nor the CLI, which would only say it is unreachable.
 */
export const FETCH_BLOCKED_PORTS: ReadonlySet<number> = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110,
  111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532,
  540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061,
  6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);

/** `switchboard serve`: runs until SIGINT/SIGTERM, then shuts down gracefully (flush the log, end children). */
export async function serve(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        host: { type: "string" },
        port: { type: "string" },
        "data-dir": { type: "string" },
        config: { type: "string" },
        token: { type: "string" },
        redis: { type: "string" },
        "node-id": { type: "string" },
        "ended-max-age": { type: "string" },
        "ended-max-bytes": { type: "string" },
        holders: { type: "string" },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (error) {
    // A mistake on the command line, as for the client commands.
    console.error(`switchboard: ${(error as Error).message}\n\n${SERVE_USAGE}`);
    return EXIT.USAGE;
  }
  if (values.help) {
    console.log(SERVE_USAGE);
    return EXIT.OK;
  }
  // An empty value is a mistake on the command line (`--host "$HOST"` with HOST unset): an empty
  // host listened on every address, and an empty data dir was the current directory.
  for (const name of ["host", "data-dir", "config", "redis", "node-id", "tls-cert", "tls-key"] as const) {
    if (values[name] === "") {
      console.error(`switchboard: --${name} is empty: give it a value, or leave it out`);
      return EXIT.USAGE;
    }
  }
  // An empty variable is an unset one, as for the client commands (`Environment=SWITCHBOARD_HOST=`
  // in a unit file, `-e SWITCHBOARD_DATA_DIR` with nothing in it): not every address, not the
  // current directory.
  const env = (name: string): string | undefined => process.env[name] || undefined;
  const portText = values.port ?? env("SWITCHBOARD_PORT") ?? String(DEFAULT_PORT);
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    const from = values.port !== undefined ? "--port" : "SWITCHBOARD_PORT";
    console.error(`switchboard: ${from} must be a number from 0 to 65535, not ${portText}`);
    return EXIT.USAGE;
  }
  if (FETCH_BLOCKED_PORTS.has(Number(portText))) {
    console.error(
      `switchboard: port ${Number(portText)} is one browsers and fetch refuse to connect to (a "bad port" of the Fetch standard): neither the UI nor the CLI could reach the gateway there; pick another (the default is ${DEFAULT_PORT})`,
    );
    return EXIT.USAGE;
  }
  // Checked here, as a usage error: pino refused it only once the data directory was claimed, in
  // its own words ("default level:verbose must be included in custom levels").
  const logLevel = logLevelFromEnv();
  if (!isLogLevel(logLevel)) {
    console.error(`switchboard: SWITCHBOARD_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, not ${logLevel}`);
    return EXIT.USAGE;
  }
  const logFormat = logFormatFromEnv(process.env, process.stderr.isTTY === true);
  if (!isLogFormat(logFormat)) {
    console.error(`switchboard: SWITCHBOARD_LOG_FORMAT must be one of ${LOG_FORMATS.join(", ")}, not ${logFormat}`);
    return EXIT.USAGE;
  }
  const config = values.config ?? env("SWITCHBOARD_CONFIG");
  const token = values.token ?? env("SWITCHBOARD_TOKEN");
  // An empty token means none (one is generated); a short one would be easy to guess.
  const tokenSource = values.token !== undefined ? "--token" : "SWITCHBOARD_TOKEN";
  if (token !== undefined && token !== "" && token.length < MIN_TOKEN_CHARS) {
    console.error(
      `switchboard: ${tokenSource} must be at least ${MIN_TOKEN_CHARS} characters (it has ${token.length}); leave it out to have one generated`,
    );
    return EXIT.USAGE;
  }
  const tokenProblem = token === undefined ? undefined : tokenCharsProblem(token);
  if (tokenProblem !== undefined) {
    console.error(`switchboard: ${tokenSource} cannot be a token: ${tokenProblem}`);
    return EXIT.USAGE;
  }
  const redisText = values.redis ?? env("SWITCHBOARD_REDIS_URL");
  const nodeId = values["node-id"] ?? env("SWITCHBOARD_NODE_ID");
  let redis: string[] | undefined;
  try {
    redis = redisText === undefined ? undefined : parseRedisSeeds(redisText);
    const problem = nodeId === undefined ? undefined : nodeIdProblem(nodeId);
    if (problem !== undefined) throw new InternalError(problem);
  } catch (error) {
    const from =
      redis === undefined
        ? values.redis !== undefined
          ? "--redis"
          : "SWITCHBOARD_REDIS_URL"
        : values["node-id"] !== undefined
          ? "--node-id"
          : "SWITCHBOARD_NODE_ID";
    console.error(`switchboard: ${from}: ${(error as Error).message}`);
    return EXIT.USAGE;
  }
  const endedSessions = endedRetentionArgs(values, env);
  if (typeof endedSessions === "string") {
    console.error(`switchboard: ${endedSessions}`);
    return EXIT.USAGE;
  }
  const holdersText = values.holders ?? env("SWITCHBOARD_HOLDERS");
  if (holdersText !== undefined && holdersText !== "on" && holdersText !== "off") {
    const from = values.holders !== undefined ? "--holders" : "SWITCHBOARD_HOLDERS";
    console.error(`switchboard: ${from} must be on or off, not ${JSON.stringify(holdersText)}`);
    return EXIT.USAGE;
  }
  const tls = tlsFiles(
    values["tls-cert"] ?? env("SWITCHBOARD_TLS_CERT"),
    values["tls-key"] ?? env("SWITCHBOARD_TLS_KEY"),
  );
  if (typeof tls === "string") {
    console.error(`switchboard: ${tls}`);
    return EXIT.USAGE;
  }
  const dataDir = values["data-dir"] ?? env("SWITCHBOARD_DATA_DIR") ?? ".switchboard";
  // A stop asked for while the gateway starts (its port may answer already): kept and done once it
  // has started. Without a handler the signal's default action ended the process unstopped (a
  // loaded CI run of test/cli/serve-output-gone.test.ts).
  let earlySignal: NodeJS.Signals | undefined;
  const onEarlySignal = (signal: NodeJS.Signals) => {
    if (earlySignal === undefined) {
      earlySignal = signal;
      return;
    }
    // A second one while the start still runs (a Redis that never answers): it ends the process
    // at once, as a signal did before.
    process.off("SIGINT", onEarlySignal);
    process.off("SIGTERM", onEarlySignal);
    process.kill(process.pid, signal);
  };
  process.on("SIGINT", onEarlySignal);
  process.on("SIGTERM", onEarlySignal);
  // Loaded once the command line is known to be good: --help and a mistake are answered without
  // loading the whole gateway (about 1 s of CPU from the sources).
  const { startGateway } = await import("../server/gateway.js");
  const gateway = await startGateway({
    endedSessions,
    host: values.host ?? env("SWITCHBOARD_HOST") ?? DEFAULT_HOST,
    port: Number(portText),
    dataDir,
    holdersByDefault: true,
    ...(holdersText !== undefined ? { holders: holdersText === "on" } : {}),
    ...(config !== undefined ? { config } : {}),
    ...(token !== undefined ? { token } : {}),
    ...(tls !== undefined ? { tls } : {}),
    ...(redis !== undefined || nodeId !== undefined
      ? { cluster: { ...(redis ? { redis } : {}), ...(nodeId !== undefined ? { nodeId } : {}) } }
      : {}),
  });
  // SIGHUP reloads the config file (agents, bindings, plugins); an invalid one is refused. The
  // gateway's log says what came of it, once: a second, plain line on the same stderr said it twice.
  const onHup = () => {
    if (config === undefined) {
      gateway.core.logger.error(
        {
          code: "CONFIG_INVALID",
          err: "no config file to reload (serve was started without --config or SWITCHBOARD_CONFIG)",
        },
        "config reload refused",
      );
      return;
    }
    gateway.reload();
  };
  const onUsr1 = () =>
    gateway.core.logger.warn(
      { signal: "SIGUSR1" },
      "SIGUSR1 ignored: the gateway does not open Node's inspector on a signal (start it with --inspect to debug it)",
    );
  // Handlers first, then the ready line: whoever reads it may signal at once (a SIGHUP that came
  // before its handler would end the process).
  process.on("SIGHUP", onHup);
  // Node opens its inspector on SIGUSR1, and anyone who may signal this process (every process of
  // its user: its sessions, a plugin) could then run code in the gateway through it. With a
  // handler of its own, Node does not; debugging needs --inspect at start instead.
  process.on("SIGUSR1", onUsr1);
  // A rejection nobody handles is a bug: logged as one (the tests fail on that line) while the
  // gateway goes on, so one missed handler does not end every session it runs.
  process.on("unhandledRejection", (reason) =>
    gateway.core.logger.error(
      { err: reason, bug: "unhandled-rejection" },
      "bug: a promise was rejected with no handler",
    ),
  );
  // The handlers stay for the whole stop and after it: Ctrl-C on `npm start` sends SIGINT twice
  // (the terminal's and the one npm forwards), and a second signal without a handler ended the
  // process before the sessions' output was committed. A repeat is said once, then ignored.
  let stopping = false;
  let repeated = 0;
  const stopped = new Promise<{ signal?: NodeJS.Signals; asked?: StopAsked }>((done) => {
    // `switchboard shutdown` (POST /v1/shutdown): the same stop, with what it asks for the sessions.
    gateway.core.stopRequest.onRequest((asked) => {
      if (stopping) return;
      stopping = true;
      done({ asked });
    });
    const onStop = (signal: NodeJS.Signals) => {
      if (!stopping) {
        stopping = true;
        done({ signal });
        return;
      }
      repeated += 1;
      if (repeated === 1)
        gateway.core.logger.warn(
          { signal },
          "already stopping: the signal is ignored until what was read is committed (kill -9 ends the gateway at once; committed output is kept)",
        );
    };
    process.on("SIGINT", onStop);
    process.on("SIGTERM", onStop);
    process.off("SIGINT", onEarlySignal);
    process.off("SIGTERM", onEarlySignal);
    if (earlySignal !== undefined) onStop(earlySignal);
  });
  // Where client commands find it without --url (src/cli/gateway-file.ts): a URL that reaches it
  // from this machine, also when it listens on every address.
  try {
    writeGatewayFile(dataDir, uiBase(gateway.host, gateway.port, gateway.url));
  } catch (error) {
    // The gateway serves without it: only the commands' discovery is missing.
    gateway.core.logger.warn(
      { err: (error as Error).message },
      "cannot record the URL in the data dir's gateway.json: client commands need --url or SWITCHBOARD_URL",
    );
  }
  process.stdout.write(`switchboard listening on ${gateway.url}\n`);
  // Asked for, a key's way through the gateway optimised within a few hundred keys, not
  // thousands; after the start, whose code runs once and would only cost compiles.
  const quickened = quickenOptimisation();
  if (quickened.problem !== undefined) gateway.core.logger.warn(quickened.problem);
  if (gateway.tokenGenerated) {
    const ui = uiBase(gateway.host, gateway.port, gateway.url);
    // The token goes in the fragment: browsers never send it to the server, so it stays out of
    // request logs. And only to a terminal: a service's stderr is its log (the journal, `docker
    // logs`), kept where more users may read it than the 0600 token file.
    process.stderr.write(
      process.stderr.isTTY
        ? `open the UI: ${ui}/#token=${gateway.token}\n`
        : `open the UI: ${ui}/ with the token in ${join(resolve(dataDir), "token")}\n`,
    );
  }
  const { signal, asked } = await stopped;
  const by = asked?.by;
  // Said before the wait for the sessions' processes, which may take SHUTDOWN_GRACE_MS.
  const kept =
    gateway.core.config.sessions.onStop === "end" || asked?.sessions === "end"
      ? 0
      : gateway.core.sessions.held().length;
  if (kept === 0) gateway.core.logger.info({ signal, by }, "stopping: ending sessions");
  else
    gateway.core.logger.info(
      { signal, by, kept },
      `stopping: ${kept} session${kept === 1 ? "" : "s"} keep running under their holders and the next serve on ${resolve(dataDir)} adopts them; the others end (end one with switchboard kill ID, all with switchboard shutdown --sessions, or at every stop with sessions.onStop "end" in the config)`,
    );
  process.off("SIGHUP", onHup);
  process.off("SIGUSR1", onUsr1);
  const deadline = setTimeout(() => {
    gateway.core.logger.error(
      { deadlineMs: STOP_DEADLINE_MS },
      "the stop did not finish in time: exiting without it (held sessions run on; committed output is kept)",
    );
    gateway.core.logger.flush(() => process.exit(EXIT.FAILURE));
  }, STOP_DEADLINE_MS);
  // Removed first: a client command run during the stop is told no gateway listens here.
  removeGatewayFile(dataDir);
  await gateway.close(asked !== undefined ? { sessions: asked.sessions } : {});
  await new Promise<void>((flushed) => gateway.core.logger.flush(() => flushed()));
  clearTimeout(deadline);
  return EXIT.OK;
}

/** The certificate and key `--tls-cert`/`--tls-key` name, read; none without either; what is wrong otherwise. */
function tlsFiles(
  certFile: string | undefined,
  keyFile: string | undefined,
): { cert: Buffer; key: Buffer } | string | undefined {
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined)
    return `--tls-cert and --tls-key go together: give both (the certificate and its private key, PEM), or neither`;
  const read = (file: string, what: string): Buffer | string => {
    try {
      return readFileSync(file);
    } catch (error) {
      return `cannot read the TLS ${what} ${file}: ${(error as Error).message}`;
    }
  };
  const cert = read(certFile, "certificate");
  if (typeof cert === "string") return cert;
  const key = read(keyFile, "key");
  if (typeof key === "string") return key;
  if (!cert.includes("-----BEGIN CERTIFICATE-----"))
    return `${certFile} is not a PEM certificate (-----BEGIN CERTIFICATE-----)`;
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.toString("latin1")))
    return `${keyFile} is not a PEM private key (-----BEGIN ... PRIVATE KEY-----)`;
  return { cert, key };
}

/** `--ended-max-age` and `--ended-max-bytes` (or their variables) as a rule, or what is wrong with them. */
function endedRetentionArgs(
  values: { "ended-max-age"?: string | undefined; "ended-max-bytes"?: string | undefined },
  env: (name: string) => string | undefined,
): EndedRetentionSetting | string {
  const setting: EndedRetentionSetting = {};
  const age = values["ended-max-age"] ?? env("SWITCHBOARD_ENDED_MAX_AGE");
  if (age !== undefined) {
    const ms = parseDuration(age);
    const from = values["ended-max-age"] !== undefined ? "--ended-max-age" : "SWITCHBOARD_ENDED_MAX_AGE";
    if (ms === undefined)
      return `${from} must be a duration such as 30d, 12h or 90m, or off; not ${JSON.stringify(age)}`;
    setting.maxAgeMs = ms;
  }
  const size = values["ended-max-bytes"] ?? env("SWITCHBOARD_ENDED_MAX_BYTES");
  if (size !== undefined) {
    const bytes = parseByteSize(size);
    const from = values["ended-max-bytes"] !== undefined ? "--ended-max-bytes" : "SWITCHBOARD_ENDED_MAX_BYTES";
    if (bytes === undefined)
      return `${from} must be a size such as 4GiB, 500MB or 1048576, or off; not ${JSON.stringify(size)}`;
    setting.maxTotalBytes = bytes;
  }
  return setting;
}

/**
 * Where a browser on this machine opens the UI: bound to every address (0.0.0.0 or ::), the
 * gateway's own URL names no reachable host (and browsers block 0.0.0.0), so loopback.
 */
export function uiBase(host: string, port: number, url: string): string {
  const scheme = url.startsWith("https:") ? "https" : "http";
  if (host === "0.0.0.0") return `${scheme}://127.0.0.1:${port}`;
  if (host === "::") return `${scheme}://[::1]:${port}`;
  return url;
}
