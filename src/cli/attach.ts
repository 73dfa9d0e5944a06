import { randomBytes } from "node:crypto";
import { ConnectionError, TerminalClient } from "../client/node.js";
import { controlHeldText, skippedText } from "../protocol/index.js";
import type { SwitchboardError } from "../protocol/index.js";
import type { HttpClient, SessionInfo, TerminalExit } from "../client/node.js";
import type { GatewayTarget } from "../client/node.js";
import { EXIT, sessionExitCode } from "./exit-codes.js";
import { endText } from "./format.js";
import { inputPieces } from "./input-pieces.js";
import { LocalTerminal } from "./local-terminal.js";
import { DEFAULT_DETACH_KEY } from "./detach-key.js";
import type { DetachKey } from "./detach-key.js";
import { isTerminalReport } from "../core/terminal-reports.js";
import { QueryFilter } from "./terminal-queries.js";
import { Notices } from "./attach-notices.js";
import { printable } from "./printable.js";
import { matchSessions } from "./session-ref.js";
import { systemClock } from "../core/clock.js";
import type { Clock } from "../core/clock.js";

export { NOTICE_INTERVAL_MS } from "./attach-notices.js";
/** Signals that end `attach` (after restoring the terminal) with 128 + their number. */
export const ATTACH_EXIT_SIGNALS = ["SIGTERM", "SIGHUP", "SIGINT", "SIGQUIT"] as const;
const SIGNAL_NUMBERS: Record<(typeof ATTACH_EXIT_SIGNALS)[number], number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGTERM: 15,
};
/** After keys typed while control is free, this attach steers for this long (its terminal's answers go too). */
const STEERING_AFTER_KEYS_MS = 10_000;
/** Keys kept while the first connection is on its way (see `attach`); more are dropped, and attach says so. */
const PENDING_INPUT_CHARS = 1 << 20;
/** Ctrl-C: a pipe session has no terminal to turn it into SIGINT, so attach sends the signal itself. */
const CTRL_C = 0x03;
/** Ctrl-D: likewise, attach ends a pipe session's input itself. */
const CTRL_D = 0x04;
const CR = 0x0d;

export interface AttachOptions {
  target: GatewayTarget & { url: string };
  http: HttpClient;
  session: string;
  /** Watch only: no control, keys (other than the detach key) are not sent. */
  readOnly: boolean;
  /** Take control over when someone else holds it (`?control=force`); they go on watching. */
  force?: boolean;
  /**
   * Output byte offset to replay from (0: the whole retained output, so the screen comes back),
   * or `screen`: a PTY session's screen as the gateway keeps it, then output from there (a
   * session without a PTY replays from 0).
   */
  since: number | "screen";
  /** The key that detaches; default {@link DEFAULT_DETACH_KEY}, Ctrl-]. */
  detachKey?: DetachKey;
  /** The session, when the caller already has it (run --attach). */
  info?: SessionInfo;
  stdin?: NodeJS.ReadStream;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WritableStream;
  /** Times the keys (how long typing steers) and the notices; default the system's. */
  clock?: Clock;
}

/** What a key press asks of the session. */
type Steering = { kind: "keys"; text: string } | { kind: "interrupt" } | { kind: "eof" };

/**
 * Where this attach's connection is: `first` (the first connection is on its way; keys wait for
 * it, up to PENDING_INPUT_CHARS; `outage`: an attempt failed, said once), `open`, `lost` (dropped,
 * coming back; said once; keys are dropped), `taken-over` (closed by a take-over, 4001: coming
 * back as a viewer, no outage).
 */
type Connection =
  | { at: "first"; pending: Steering[]; pendingChars: number; outage: boolean }
  | { at: "open" }
  | { at: "lost" }
  | { at: "taken-over" };

/**
 * What this attach knows of control: `holding` it (keys and size go through), or `watching`
 * (read-only, refused, expired or taken over; keys go through while control is free). `sizeOwed`:
 * someone else may have resized the PTY since this attach last sent its size, as the web page
 * does to fit its window; the size goes again with the next keys (docs/cli.md).
 */
type Control = { at: "holding" } | { at: "watching"; sizeOwed: boolean };

type Outcome =
  | { kind: "exit"; exit: TerminalExit }
  | { kind: "detach" }
  | { kind: "signal"; signal: (typeof ATTACH_EXIT_SIGNALS)[number] };

/**
 * `switchboard attach ID`: shows the session's terminal on this one — replayed from `since`
 * so the screen comes back, then live — forwards keys (taking control when it is free), sends
 * the local size on start and on every resize, and exits with the session's exit code when it
 * ends. `Ctrl-]` detaches. The local terminal is always restored.
 */
export async function attach(options: AttachOptions): Promise<number> {
  const stdin = options.stdin ?? process.stdin;
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const info = options.info ?? (await options.http.getSession(options.session));
  const running = info.state === "running";
  const detachKey = options.detachKey ?? DEFAULT_DETACH_KEY;
  // Only terminal sessions take keys; agent and stream sessions are watched.
  const steer = running && !options.readOnly && info.kind === "terminal";
  const local = new LocalTerminal(stdin, stdout);
  const clock = options.clock ?? systemClock;
  const notices = new Notices(stderr, local, clock);
  let run: AttachRun | undefined;
  let outcome: Outcome;
  try {
    local.enterRaw();
    // An agent's answers are events, not terminal output: attach would show an empty screen
    // until the session ends (exploratory testing), so say where its conversation is.
    if (info.kind === "agent" && running)
      notices.show(
        `${info.id} is an agent session: it prints nothing here; "switchboard logs -f ${info.id}" follows its conversation, "switchboard prompt ${info.id} TEXT" prompts it (${detachKey.name} detaches)`,
      );
    const since = options.since === "screen" && !info.pty ? 0 : options.since;
    // The replay redraws the screen from the start of the output: start from a clean one (a
    // screen clears it itself).
    if (info.pty && local.isTTY && since === 0) stdout.write("\x1b[H\x1b[2J");
    // The screen at this terminal's size: at the PTY's, the whole terminal (scrollback, modes);
    // at another, the part of it that fits, laid out for the PTY (a steering attach then
    // resizes the PTY and the program draws anew).
    const size = local.size();
    // A person watching on a terminal never trails a flood: past the bound, the screen instead of the bytes.
    const lag = info.pty && local.isTTY;
    const client = new TerminalClient({
      ...options.target,
      session: info.id,
      since,
      ...((since === "screen" || lag) && size !== undefined ? { screenSize: size } : {}),
      ...(lag ? { lag: "screen" as const } : {}),
      // A key of this attach's own: a dropped connection's control waits for its reconnect
      // (control.reconnectGraceMs) instead of going to whoever asks first.
      ...(steer
        ? { control: options.force === true ? ("force" as const) : ("acquire" as const), clientKey: newClientKey() }
        : {}),
    });
    run = new AttachRun({ client, info, http: options.http, local, notices, stdin, stdout, detachKey, steer, clock });
    outcome = await run.outcome();
  } finally {
    run?.dispose();
    stdin.pause();
    local.restore();
  }
  return report(outcome, info, options.http, local, stderr);
}

/** Says how attach ended (after the terminal is restored) and returns its exit code. */
async function report(
  outcome: Outcome,
  info: SessionInfo,
  http: HttpClient,
  local: LocalTerminal,
  stderr: NodeJS.WritableStream,
): Promise<number> {
  // No raw mode any more; start on a fresh line when on a terminal.
  const lead = local.isTTY ? "\n" : "";
  switch (outcome.kind) {
    case "detach": {
      const ref = await comeBackRef(http, info);
      const which = ref === info.id ? info.id : `${printable(ref)} (${info.id})`;
      stderr.write(`${lead}[detached from ${which}; "switchboard attach ${printable(ref)}" to come back]\n`);
      return EXIT.OK;
    }
    case "exit": {
      const ended = { ...outcome.exit, state: await endState(http, info, outcome.exit) };
      stderr.write(`${lead}[session ${printable(info.id)} ${printable(endText(ended))}]\n`);
      return sessionExitCode(ended);
    }
    case "signal": {
      // Its id, as on detach: after `run --attach` it was never printed.
      const ref = printable(await comeBackRef(http, info));
      stderr.write(
        `${lead}[switchboard attach: ${outcome.signal}; session ${info.id} keeps running: "switchboard attach ${ref}" to come back]\n`,
      );
      return 128 + SIGNAL_NUMBERS[outcome.signal];
    }
  }
}

/** How long the detach line waits to learn whether the session's name is its own. */
const NAME_CHECK_MS = 2_000;
/** A name the detach line may print for the shell as it is: no quoting needed, not an option. */
const SHELL_WORD = /^[A-Za-z0-9_.,:@%+=/][A-Za-z0-9_.,:@%+=/-]*$/;

/**
 * What to attach by to come back: the session's name when it has one that names it alone (and
 * needs no quoting), else its id (test/cli/session-names.test.ts, the detach line).
 */
async function comeBackRef(http: HttpClient, info: SessionInfo): Promise<string> {
  const name = info.name;
  if (name === null || name === undefined || !SHELL_WORD.test(name)) return info.id;
  try {
    const match = matchSessions(await http.listSessions({ signal: AbortSignal.timeout(NAME_CHECK_MS) }), name);
    return match.by === "name" && match.sessions.length === 1 && match.sessions[0]!.id === info.id ? name : info.id;
  } catch (error) {
    // The gateway gone or slow: the id always works.
    if (!(error instanceof Error)) throw error;
    return info.id;
  }
}

interface AttachRunOptions {
  client: TerminalClient;
  info: SessionInfo;
  http: HttpClient;
  local: LocalTerminal;
  notices: Notices;
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  detachKey: DetachKey;
  /** This attach sends keys and its size (a running terminal session, not read-only). */
  steer: boolean;
  clock: Clock;
}

/**
 * One attach while it runs: the connection's events, the local keys and resizes, and what it
 * knows of control, size and keys waiting for the first connection. `outcome()` resolves on the
 * session's end, the detach key or a signal; `dispose()` removes every listener and closes.
 */
class AttachRun {
  private readonly client: TerminalClient;
  private readonly info: SessionInfo;
  private readonly notices: Notices;
  private readonly steer: boolean;
  private readonly running: boolean;
  private readonly disposers: Array<() => void> = [];
  // Replayed output goes to the local terminal without its queries: answered again, the
  // answers came back as keys and were sent to the session (see terminal-queries.ts). Output
  // that is not shown on a terminal is left exactly as the session wrote it.
  private readonly queries: QueryFilter | undefined;
  private readonly decoder = new TextDecoder();
  private readonly encoder = new TextEncoder();
  private finish: (outcome: Outcome) => void = () => undefined;
  private fail: (error: unknown) => void = () => undefined;
  // Keys that come before the first connection is up (typed or pasted at once, or piped in:
  // `printf 'make\n' | switchboard attach ID`) wait for it instead of being dropped. Keys
  // typed while a dropped connection comes back are dropped (and said so): by then the
  // screen the user typed at is stale.
  private connection: Connection = { at: "first", pending: [], pendingChars: 0, outage: false };
  private control: Control = { at: "watching", sizeOwed: false };
  // Besides holding control, this attach steers for STEERING_AFTER_KEYS_MS after keys typed
  // while control is free. Only while it steers does it pass on what its terminal answers by
  // itself (isTerminalReport): a watching attach's terminal answers the live queries too, and
  // those answers typed into the session a second time, resending its size with them.
  private typedAt = Number.NEGATIVE_INFINITY;
  // Watching a PTY at another size than its own: said once (the screen is laid out for the
  // size of whoever steers it, and a full-screen program looks garbled in a smaller or larger one).
  private sizeNoticed = false;
  // One wording per connection for "someone else has control", whichever refusal said it first
  // (the start-up's acquire and a refused key word it differently).
  private heldNotice: string | undefined;

  constructor(private readonly options: AttachRunOptions) {
    this.client = options.client;
    this.info = options.info;
    this.notices = options.notices;
    this.steer = options.steer;
    this.running = options.info.state === "running";
    this.queries = options.local.isTTY ? new QueryFilter() : undefined;
  }

  /** Starts listening; resolves with how the attach ended. */
  outcome(): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      this.finish = resolve;
      this.fail = reject;
      this.listenToClient();
      this.listenToTerminal();
    });
  }

  dispose(): void {
    for (const dispose of this.disposers.splice(0)) dispose();
    this.client.close();
  }

  private listenToClient(): void {
    const { client, local } = this.options;
    this.disposers.push(
      client.on("data", ({ kind, bytes }) =>
        local.write(this.queries ? this.queries.filter(bytes, kind === "replay") : bytes),
      ),
      client.on("screen", ({ data, skipped }) => {
        local.write(this.encoder.encode(data));
        if (skipped !== undefined)
          this.notices.show(`${skippedText(skipped)} (switchboard logs ${this.options.info.id})`);
      }),
      client.on("connected", () => this.onConnected()),
      client.on("control-lost", () => {
        // A take-over closes an open connection; it comes back as a viewer, without an outage.
        if (this.connection.at === "open") this.connection = { at: "taken-over" };
        this.control = { at: "watching", sizeOwed: this.sizeOwed() };
      }),
      client.on("state", ({ state, error }) => {
        if (state === "reconnecting") this.onReconnecting(error);
      }),
      client.on("error", (error) => this.onError(error)),
    );
    client.done.then((exit) => this.finish({ kind: "exit", exit }), this.fail);
  }

  private listenToTerminal(): void {
    const { stdin, stdout } = this.options;
    const onData = (chunk: Buffer) => this.onKeys(chunk);
    // Input piped into a pipe session ends its input where the pipe ends, as a shell's
    // pipe would (`printf 'b\na\n' | switchboard attach ID` with ID running `sort`). A PTY
    // session is left as it is: Ctrl-D there would end a shell.
    const onEnd = () => {
      if (this.steer && !this.info.pty) this.steerSession({ kind: "eof" });
    };
    stdin.on("data", onData);
    stdin.once("end", onEnd);
    stdin.resume();
    this.disposers.push(
      () => stdin.off("data", onData),
      () => stdin.off("end", onEnd),
    );
    const onResize = () => this.sendSize();
    stdout.on("resize", onResize);
    this.disposers.push(() => stdout.off("resize", onResize));
    for (const signal of ATTACH_EXIT_SIGNALS) {
      const onSignal = () => this.finish({ kind: "signal", signal });
      process.on(signal, onSignal);
      this.disposers.push(() => process.off(signal, onSignal));
    }
  }

  /** An attempt to connect failed or the connection dropped: said once per outage, not after a take-over. */
  private onReconnecting(error: Error | undefined): void {
    const connection = this.connection;
    if (connection.at === "open") this.connection = { at: "lost" };
    else if (connection.at === "first" && !connection.outage) connection.outage = true;
    else return;
    // Ctrl-C is a key here (raw mode), dropped too: say how to leave a gateway that is gone.
    const what =
      error instanceof ConnectionError && error.code === "RESTARTING"
        ? "gateway restarting… the session keeps running; reconnecting"
        : "connection lost; reconnecting";
    this.notices.show(`${what} (keys typed meanwhile are dropped; ${this.options.detachKey.name} detaches)`);
  }

  private onConnected(): void {
    const { info, local } = this.options;
    const was = this.connection;
    this.connection = { at: "open" };
    this.heldNotice = undefined;
    if (was.at === "lost" || (was.at === "first" && was.outage)) this.notices.show("reconnected");
    this.notices.newConnection();
    if (!this.steer) this.noticeSize();
    const size = local.size();
    // Attaching at another size than the PTY's: the program is told of the new size and
    // draws for it anew, but a scroll region the replay set for the old size (vim's
    // `CSI 1;20r`) stays in force on this terminal, under its new drawing. At the same
    // size the region is the program's own and still right (apt keeps its progress line so).
    if (was.at === "first" && this.steer && info.pty && size && (size.cols !== info.cols || size.rows !== info.rows))
      local.resetScrollRegion();
    // A connection after a take-over asks for no control: the size would be refused; it goes with the next keys.
    if (was.at === "taken-over") this.control = { at: "watching", sizeOwed: true };
    else if (this.steer) {
      this.control = { at: "holding" };
      this.sendSize();
    }
    if (was.at === "first") for (const action of was.pending) this.steerSession(action);
  }

  private onError(error: SwitchboardError): void {
    const detachName = this.options.detachKey.name;
    if (error.code === "CONTROL_HELD") {
      // Said from who holds it, not from the gateway's message: its advice ("use force",
      // "acquire control with force") is attach --force here.
      const holder = controlHeldText(error) ?? error.message;
      this.heldNotice ??= `${holder}: watching read-only, keys are not sent (attach --force takes control; ${detachName} detaches)`;
      this.control = { at: "watching", sizeOwed: true };
      this.typedAt = Number.NEGATIVE_INFINITY;
      this.noticeSize();
      // Keys were dropped: said again when more are (at most every NOTICE_INTERVAL_MS), also
      // after control was free for a while, which attach does not hear of.
      this.notices.show(this.heldNotice);
    } else if (error.code === "CONTROL_LOST") {
      // Expiry (this connection was silent past the lease's auto-release) leaves control
      // free and the connection open, so keys still go through; a take-over closes it (4001).
      const expired = error.details?.["reason"] === "expired" || error.message.startsWith("control expired");
      this.control = { at: "watching", sizeOwed: true };
      this.notices.control(
        expired ? "expired" : "taken-over",
        expired
          ? `${error.message}: nobody holds control now, keys still go through until someone takes it`
          : `${error.message}: watching read-only now`,
      );
    } else if (error.code === "SESSION_NOT_RUNNING") return;
    else this.notices.show(`${error.message} (${error.code})`);
  }

  /** Local input: keys go to the session (or are refused with a notice) up to the detach key. */
  private onKeys(chunk: Buffer): void {
    const { info, detachKey } = this.options;
    const at = chunk.indexOf(detachKey.byte);
    const keys = at >= 0 ? chunk.subarray(0, at) : chunk;
    if (keys.length > 0) {
      // What the terminal answered by itself (to a query in the output), not typed.
      const report = isTerminalReport(keys.toString("latin1"));
      if (!this.steer) {
        if (this.running && !report) {
          const why = info.kind === "terminal" ? "read-only" : `a ${info.kind} session takes no keys`;
          this.notices.show(`${why}: keys are not sent (${detachKey.name} detaches)`);
        }
      } else if (!info.pty && keys.length === 1 && keys[0] === CTRL_C) {
        this.steerSession({ kind: "interrupt" });
      } else if (!info.pty && keys.length === 1 && keys[0] === CTRL_D) {
        // As a terminal would: Ctrl-D ends the input (the pipe is closed; cat, sort, wc finish).
        this.steerSession({ kind: "eof" });
      } else {
        // A pipe has no terminal to turn Enter (CR) into a newline: do it here.
        const bytes = info.pty ? keys : Buffer.from(keys.map((b) => (b === CR ? 0x0a : b)));
        const text = this.decoder.decode(bytes, { stream: true });
        if (report) {
          if (this.steering()) this.steerSession({ kind: "keys", text });
        } else {
          this.typedAt = this.options.clock.monotonic();
          this.steerSession({ kind: "keys", text });
        }
      }
    }
    if (at >= 0) this.finish({ kind: "detach" });
  }

  private steering(): boolean {
    return this.control.at === "holding" || this.options.clock.monotonic() - this.typedAt < STEERING_AFTER_KEYS_MS;
  }

  private sizeOwed(): boolean {
    return this.control.at === "watching" && this.control.sizeOwed;
  }

  private sendSize(): void {
    const size = this.options.local.size();
    if (size && this.info.pty && this.steer) this.client.resize(size.cols, size.rows);
  }

  private noticeSize(): void {
    const { info, local, http } = this.options;
    const size = local.size();
    if (this.sizeNoticed || !info.pty || !this.running || size === undefined) return;
    this.sizeNoticed = true;
    void http.getSession(info.id).then(
      (now) => {
        if (now.cols === null || now.rows === null || (now.cols === size.cols && now.rows === size.rows)) return;
        this.notices.show(
          `the session's terminal is ${now.cols}×${now.rows} and this one ${size.cols}×${size.rows}: while you watch, the size is that of whoever steers it, and a full-screen program may look wrong here`,
        );
      },
      () => undefined,
    );
  }

  private steerSession(action: Steering): void {
    const connection = this.connection;
    if (connection.at === "first") {
      connection.pendingChars += action.kind === "keys" ? action.text.length : 1;
      if (connection.pendingChars <= PENDING_INPUT_CHARS) connection.pending.push(action);
      else this.notices.show("not connected yet: keys dropped");
    } else if (!this.apply(action) && this.client.state !== "open")
      this.notices.show(
        `${action.kind === "eof" ? "not connected: Ctrl-D dropped" : "not connected: keys dropped"} (${this.options.detachKey.name} detaches)`,
      );
  }

  /** False when not sent (not connected; or over the input limit, which the `error` event says). */
  private apply(action: Steering): boolean {
    switch (action.kind) {
      case "interrupt":
        return this.client.signal("INT");
      case "eof":
        return this.client.endInput();
      case "keys":
        if (this.sizeOwed()) {
          this.control = { at: "watching", sizeOwed: false };
          this.sendSize();
        }
        // The gateway takes at most 64 KiB per message: a big paste or pipe goes in pieces.
        return inputPieces(action.text).every((piece) => this.client.write(piece));
    }
  }
}

/**
 * Whether an ended session exited or was lost. The exit frame says so (`state`); a gateway older
 * than that field tells only by a code or a signal, and otherwise by the session's state.
 */
async function endState(http: HttpClient, info: SessionInfo, exit: TerminalExit): Promise<"exited" | "lost"> {
  if (exit.state !== undefined) return exit.state;
  if (exit.exitCode !== null || exit.signal !== null) return "exited";
  if (info.state !== "running") return info.state;
  try {
    const { state } = await http.getSession(info.id);
    return state === "lost" ? "lost" : "exited";
  } catch (error) {
    // The gateway cannot say any more (gone, or the session removed): an end without a word is lost.
    if (!(error instanceof Error)) throw error;
    return "lost";
  }
}

function newClientKey(): string {
  return randomBytes(18).toString("base64url");
}
