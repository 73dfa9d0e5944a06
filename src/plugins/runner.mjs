// The plugin runner: the entry module of every sandboxed plugin process.
//
// Plain JavaScript on purpose: the child runs under Node's permission model, reading only
// this file, the plugin's folder and its state folder, so it cannot load TypeScript through
// tsx (that would need node_modules) and must not depend on anything but Node built-ins.
// The build copies it next to the compiled host (dist/plugins/runner.mjs).
//
// Nothing here is a security boundary: plugin code shares this process and can forge any
// frame. The host checks every request against the plugin's permissions; this file only
// gives plugins a convenient, typed-by-docs API (see src/plugins/api.ts and docs/plugins.md).
import net from "node:net";
import os from "node:os";
import { syncBuiltinESMExports } from "node:module";
import { pathToFileURL } from "node:url";

/** How long a fatal report may take to reach the host before the process exits anyway. */
const FATAL_FLUSH_MS = 500;

const channel = new net.Socket({ fd: 3, readable: true, writable: true });

function send(frame) {
  channel.write(JSON.stringify(frame) + "\n");
}

/** Most bytes of one frame to the host (set by init): a bigger frame is a protocol violation that ends the process. */
let frameBytes = Infinity;
/** Deepest nesting of arrays and objects in a frame to the host, the frame itself included (set by init): deeper is a protocol violation too. */
let frameDepth = Infinity;

/**
 * Whether `json` (text JSON.stringify wrote) nests arrays and objects more than `max` levels deep,
 * counted as the host counts the parsed frame (`nestsDeeperThan` in src/protocol/json-depth.ts,
 * which this file cannot import): on the text, so a `toJSON` counts as what it writes. It jumps
 * from bracket to quote with a regular expression and over strings with indexOf: stepping
 * through every character took ~300 ms for 800 tool events of 64 KiB (a plugin busy that long
 * misses heartbeats on a loaded machine); this takes ~10 ms.
 */
function jsonNestsDeeperThan(json, max) {
  const structure = /["[\]{}]/g;
  let depth = 0;
  for (let match; (match = structure.exec(json)) !== null;) {
    const char = match[0];
    if (char === '"') structure.lastIndex = afterString(json, match.index);
    else if (char === "{" || char === "[") {
      if (++depth > max) return true;
    } else depth--;
  }
  return false;
}

/** The index just after the JSON string that opens at `start` (valid JSON: its closing quote is there). */
function afterString(json, start) {
  for (let quote = json.indexOf('"', start + 1); ; quote = json.indexOf('"', quote + 1)) {
    let backslashes = 0;
    while (json.charCodeAt(quote - 1 - backslashes) === 0x5c /* \\ */) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
  }
}

const isHighSurrogate = (code) => code >= 0xd800 && code <= 0xdbff;

const tooLarge = (what) =>
  `${what} is larger than the ${frameBytes} bytes a frame to the gateway may have (limits.frameBytes)`;

const tooDeep = (what) =>
  `${what} is nested deeper than the ${frameDepth} levels of arrays and objects a frame to the gateway may have, the frame itself included (limits.frameDepth)`;

/**
 * `line` (a frame's JSON and its newline), checked against what the host takes: a call or an
 * answer over `frameBytes` or nested deeper than `frameDepth` is refused here (thrown as a
 * PluginError), as the plugin's own mistake, instead of costing it its process.
 */
function checkedLine(line, what) {
  if (Buffer.byteLength(line) > frameBytes) throw new PluginError("PAYLOAD_TOO_LARGE", tooLarge(what));
  if (jsonNestsDeeperThan(line, frameDepth)) throw new PluginError("VALIDATION_FAILED", tooDeep(what));
  return line;
}

/** `frame` as the line sent to the host; throws a PluginError when it is not JSON or not within the limits. */
function frameLine(frame, what) {
  let json;
  try {
    json = JSON.stringify(frame);
  } catch (error) {
    throw new PluginError("VALIDATION_FAILED", `${what} is not JSON (${error.message})`);
  }
  return checkedLine(json + "\n", what);
}

function fatal(error) {
  // A refusal from the gateway (PluginError) is said as such: its stack is only this file's.
  const message =
    error instanceof PluginError
      ? `${error.code}: ${error.message}`
      : error instanceof Error
        ? (error.stack ?? error.message)
        : String(error);
  channel.write(JSON.stringify({ t: "fatal", message }) + "\n", () => process.exit(1));
  setTimeout(() => process.exit(1), FATAL_FLUSH_MS).unref();
}

function accessDenied(what) {
  const error = new Error(`Access to this API has been restricted: ${what} (plugin sandbox)`);
  error.code = "ERR_ACCESS_DENIED";
  return error;
}

// Gaps of Node 20's permission model, closed before plugin code runs (defence in depth, not a
// boundary — see docs/plugins.md): signals to other processes (the gateway is process.ppid),
// diagnostic reports written to any directory, and re-prioritising other processes.
function harden() {
  const rawKill = process._kill;
  const guardedKill = function _kill(pid, signal) {
    if (pid !== process.pid) throw accessDenied("process.kill of another process");
    return rawKill.call(process, pid, signal);
  };
  Object.defineProperty(process, "_kill", { value: guardedKill, writable: false, configurable: false });
  const deniedReport = () => {
    throw accessDenied("process.report");
  };
  const reportStub = Object.freeze(
    Object.defineProperties(
      { writeReport: deniedReport, getReport: deniedReport },
      Object.fromEntries(
        [
          "directory",
          "filename",
          "compact",
          "signal",
          "reportOnFatalError",
          "reportOnSignal",
          "reportOnUncaughtException",
        ].map((name) => [name, { get: () => undefined, set: deniedReport, enumerable: true }]),
      ),
    ),
  );
  Object.defineProperty(process, "report", { value: reportStub, writable: false, configurable: false });
  Object.defineProperty(process, "dlopen", {
    value: () => {
      throw accessDenied("process.dlopen");
    },
    writable: false,
    configurable: false,
  });
  const rawSetPriority = os.setPriority;
  const guardedSetPriority = function setPriority(pid, priority) {
    if (priority === undefined) return rawSetPriority(pid);
    if (pid !== 0 && pid !== process.pid) throw accessDenied("os.setPriority of another process");
    return rawSetPriority(pid, priority);
  };
  Object.defineProperty(os, "setPriority", { value: guardedSetPriority, writable: false, configurable: false });
  syncBuiltinESMExports();
}

/** An error the host answered with; `code` is one of the gateway's error codes. */
class PluginError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "PluginError";
    this.code = code;
  }
}

let nextRequestId = 1;
const pending = new Map();
const subscriptions = new Map();
const agents = new Map();
/** Agent runs in flight, by run id: their RunStream. */
const runs = new Map();
let httpHandler;
let deactivate;
let stopping = false;
/** A run's unacknowledged delta characters are kept under this: the host's `agentDeltaWindowChars`, set by init (before any run). */
let deltaWindowChars;

const DONE = Promise.resolve();

/**
 * Most characters of delta text in one frame: a longer text is sent in pieces, since a frame over
 * `frameBytes` ends the plugin. A character takes at most 6 bytes in a frame (`\u0001`); 512
 * bytes are left for the rest of the frame.
 */
const deltaPieceChars = () =>
  Number.isFinite(frameBytes) ? Math.max(1024, Math.floor((frameBytes - 512) / 6)) : Infinity;

/**
 * One agent run's stream frames towards the host, paced by the host's acks (`agent.ack`, see
 * the host's RunCredit). A frame is sent while the run's unacknowledged characters are under
 * `deltaWindowChars` — delta text counts its length, a tool event the length of its JSON —;
 * beyond, frames wait here, in order, in the plugin's own memory, until acks come. The host acks
 * only while the run's log has room, so a run is held back without holding back the pipe, which
 * carries heartbeats and the plugin's other runs.
 */
class RunStream {
  constructor(runId) {
    this.runId = runId;
    this.controller = new AbortController();
    this.unacked = 0;
    /** Frames not sent yet, in order, from index `head`: `{line, chars}`. */
    this.queue = [];
    this.head = 0;
    /** delta()/tool() callers waiting for the run to be under its window again. */
    this.roomWaiters = [];
    /** sent() callers waiting for the queue to empty. */
    this.sentWaiters = [];
    this.dropping = false;
  }

  /** Queues delta text; resolves at once while the run is under its window, else once it is again. */
  delta(text) {
    if (this.dropping) return DONE;
    text = String(text);
    const most = deltaPieceChars();
    for (let at = 0; at < text.length;) {
      let end = Math.min(text.length, at + most);
      // Not between the two halves of a surrogate pair: each piece is valid text.
      if (end < text.length && isHighSurrogate(text.charCodeAt(end - 1))) end--;
      const piece = text.slice(at, end);
      this.queue.push({
        line: JSON.stringify({ t: "agent.delta", runId: this.runId, text: piece }) + "\n",
        chars: piece.length,
      });
      at = end;
    }
    return this.queued();
  }

  /**
   * Queues a tool event, paced as delta text is (by its JSON's length, which the host counts
   * too). One that is not an object, or that would not fit in a frame (too big, too deeply
   * nested), is refused here — the promise rejects, as every other call of the API does — with
   * the plugin still up: sent, either would be a protocol violation.
   */
  tool(event) {
    if (this.dropping) return DONE;
    let frame;
    try {
      frame = this.toolFrame(event);
    } catch (error) {
      return Promise.reject(error);
    }
    this.queue.push(frame);
    return this.queued();
  }

  /** The queue entry of tool event `event`; throws a PluginError for one that may not be sent. */
  toolFrame(event) {
    if (event === null || typeof event !== "object" || Array.isArray(event))
      throw new PluginError("VALIDATION_FAILED", "run.tool(event) takes an object: {toolCallId, status, title?, …}");
    let json;
    try {
      json = JSON.stringify(event);
    } catch (error) {
      throw new PluginError("VALIDATION_FAILED", `run.tool(event): the event is not JSON (${error.message})`);
    }
    // What goes on the wire is its JSON: a Date, a String object or a toJSON() answering
    // something else is an object here and not one on the host (which ends the plugin for it).
    if (json === undefined || json[0] !== "{")
      throw new PluginError(
        "VALIDATION_FAILED",
        "run.tool(event) takes an object whose JSON is an object: {toolCallId, status, title?, …}",
      );
    const line = `{"t":"agent.tool","runId":${JSON.stringify(this.runId)},"event":${json}}\n`;
    return { line: checkedLine(line, "this tool event"), chars: json.length };
  }

  /** After queueing: sends what the window allows; resolves once the run is under its window. */
  queued() {
    this.pump();
    if (this.hasRoom()) return DONE;
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** The host took `chars` more characters. */
  ack(chars) {
    this.unacked = Math.max(0, this.unacked - chars);
    this.pump();
  }

  /** Resolves once every frame queued so far is sent (or dropped): the run's answer goes behind them. */
  sent() {
    if (this.head === this.queue.length) return DONE;
    return new Promise((resolve) => this.sentWaiters.push(resolve));
  }

  /** The run was aborted or timed out: what is queued is dropped, everyone waiting goes on. */
  abort() {
    this.controller.abort();
    this.drop();
  }

  /** Nothing more is sent for this run (aborted, ended, or the plugin is stopping); waiters are let go. */
  drop() {
    this.dropping = true;
    this.queue = [];
    this.head = 0;
    this.wake();
  }

  hasRoom() {
    return this.head === this.queue.length && this.unacked < deltaWindowChars;
  }

  pump() {
    while (this.head < this.queue.length && this.unacked < deltaWindowChars) {
      const { line, chars } = this.queue[this.head];
      this.unacked += chars;
      this.queue[this.head++] = undefined;
      channel.write(line);
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.wake();
  }

  wake() {
    if (this.head !== this.queue.length) return;
    if (this.sentWaiters.length > 0) {
      const sent = this.sentWaiters;
      this.sentWaiters = [];
      for (const resolve of sent) resolve();
    }
    if (this.roomWaiters.length > 0 && (this.dropping || this.unacked < deltaWindowChars)) {
      const room = this.roomWaiters;
      this.roomWaiters = [];
      for (const resolve of room) resolve();
    }
  }
}

/** A runtime API call; parameters that may not be sent (see `frameLine`) reject it, unsent. */
function request(method, params) {
  const id = nextRequestId++;
  let line;
  try {
    line = frameLine({ t: "req", id, method, params }, `this ${method} call`);
  } catch (error) {
    return Promise.reject(error);
  }
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    channel.write(line);
  });
}

/** Answers a host → plugin call with `value`; an answer that may not be sent (see `frameLine`) fails the call (PLUGIN_FAILED). */
function reply(id, value) {
  let line;
  try {
    line = frameLine({ t: "res", id, ok: true, value }, "the plugin's answer");
  } catch (error) {
    send({ t: "res", id, ok: false, error: { code: "PLUGIN_FAILED", message: error.message } });
    return;
  }
  channel.write(line);
}

function errorToWire(error) {
  if (error instanceof PluginError) return { code: error.code, message: error.message };
  // What the plugin threw is the plugin's failure (502), not the gateway's (500).
  return { code: "PLUGIN_FAILED", message: error instanceof Error ? error.message : String(error) };
}

/** Characters of a log message kept when its line would not fit in a frame. */
const LOG_MSG_KEPT = 16_384;

/**
 * Writes a line to the gateway log. A log call is never refused (it returns nothing to reject),
 * and a line the host would not take must not cost the plugin its process: `fields` that are not
 * an object are wrapped (`{value}`), and a line too big or too deeply nested for a frame, or not
 * JSON, goes with its message cut to {@link LOG_MSG_KEPT} characters and `fields` replaced by why
 * (`logLineCut`).
 */
function log(level, msg, fields) {
  const text = String(msg);
  const frame = { t: "log", level, msg: text };
  if (fields !== undefined)
    frame.fields = fields !== null && typeof fields === "object" && !Array.isArray(fields) ? fields : { value: fields };
  try {
    channel.write(frameLine(frame, "this log line"));
  } catch (error) {
    let end = Math.min(text.length, LOG_MSG_KEPT);
    if (end < text.length && isHighSurrogate(text.charCodeAt(end - 1))) end--;
    const kept = end < text.length ? `${text.slice(0, end)}… (${text.length - end} characters cut)` : text;
    send({ t: "log", level, msg: kept, fields: { logLineCut: error.message } });
  }
}

function makeApi(init) {
  const config = init.config;
  return Object.freeze({
    id: init.id,
    /** The plugin's own writable folder. */
    stateDir: init.stateDir,
    /** The permissions granted to this plugin (informational; the host enforces them). */
    permissions: Object.freeze([...init.permissions]),
    log: Object.freeze({
      debug: (msg, fields) => log("debug", msg, fields),
      info: (msg, fields) => log("info", msg, fields),
      warn: (msg, fields) => log("warn", msg, fields),
      error: (msg, fields) => log("error", msg, fields),
    }),
    config: Object.freeze({
      get: () => structuredClone(config),
      writeConfigFile: (patch) => request("config.writeConfigFile", { patch }),
    }),
    state: Object.freeze({
      get: (key) => request("state.get", { key }),
      set: (key, value) => request("state.set", { key, value }),
      delete: (key) => request("state.delete", { key }),
      keys: () => request("state.keys", {}),
    }),
    sessions: Object.freeze({
      list: (filter) => request("sessions.list", filter?.state === undefined ? {} : { state: filter.state }),
      get: (id) => request("sessions.get", { id }),
    }),
    events: Object.freeze({
      async subscribe(filter, handler, options = {}) {
        if (typeof handler !== "function") throw new TypeError("events.subscribe needs a handler function");
        // The subscription id is the request id, known before the answer, so an event that
        // arrives right behind the answer already finds its handler.
        const sub = nextRequestId;
        subscriptions.set(sub, { handler, onDropped: options.onDropped });
        try {
          await request("events.subscribe", { filter });
        } catch (error) {
          subscriptions.delete(sub);
          throw error;
        }
        return async () => {
          if (!subscriptions.delete(sub)) return;
          await request("events.unsubscribe", { sub });
        };
      },
    }),
    messages: Object.freeze({
      inbound: (message) => request("messages.inbound", { message }),
    }),
    agents: Object.freeze({
      async register(agentId, handler) {
        if (typeof handler !== "function") throw new TypeError("agents.register needs a handler function");
        agents.set(agentId, handler);
        try {
          await request("agents.register", { agentId });
        } catch (error) {
          agents.delete(agentId);
          throw error;
        }
      },
      async unregister(agentId) {
        agents.delete(agentId);
        await request("agents.unregister", { agentId });
      },
    }),
    http: Object.freeze({
      async onRequest(handler) {
        if (typeof handler !== "function") throw new TypeError("http.onRequest needs a handler function");
        httpHandler = handler;
        await request("http.listen", {});
      },
    }),
    system: Object.freeze({
      runCommandWithTimeout: (argv, options = {}) =>
        request("system.runCommandWithTimeout", {
          argv,
          timeoutMs: options.timeoutMs,
          ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
        }),
    }),
  });
}

async function runAgent(callId, params) {
  const handler = agents.get(params.agentId);
  if (handler === undefined) {
    send({
      t: "res",
      id: callId,
      ok: false,
      error: { code: "AGENT_NOT_FOUND", message: `no agent ${params.agentId}` },
    });
    return;
  }
  const stream = new RunStream(params.runId);
  if (stopping) stream.drop();
  runs.set(params.runId, stream);
  const run = Object.freeze({
    runId: params.runId,
    sessionId: params.sessionId,
    text: params.text,
    signal: stream.controller.signal,
    delta: (text) => stream.delta(text),
    tool: (event) => stream.tool(event),
  });
  let outcome;
  try {
    const result = await handler(run);
    outcome = { ok: true, value: typeof result === "string" ? { text: result } : result };
  } catch (error) {
    outcome = { ok: false, error: errorToWire(error) };
  }
  // The answer ends the run at the host: it must come after the run's queued text. Text the
  // plugin streams after it would reach no run (and never be acknowledged): it is dropped.
  await stream.sent();
  stream.drop();
  runs.delete(params.runId);
  if (outcome.ok) reply(callId, outcome.value);
  else send({ t: "res", id: callId, ok: false, error: outcome.error });
}

async function answerHttp(callId, params) {
  try {
    if (httpHandler === undefined) throw new PluginError("NOT_FOUND", "this plugin has no HTTP hook");
    reply(callId, await httpHandler(params));
  } catch (error) {
    send({ t: "res", id: callId, ok: false, error: errorToWire(error) });
  }
}

async function stop() {
  if (stopping) return;
  stopping = true;
  // The host is going: nothing queued will be taken, and no run may keep deactivate waiting.
  for (const stream of runs.values()) stream.drop();
  try {
    if (typeof deactivate === "function") await deactivate();
  } catch (error) {
    log("error", "deactivate failed", { error: error instanceof Error ? error.message : String(error) });
  }
  channel.end(() => process.exit(0));
}

async function start(init) {
  deltaWindowChars = init.deltaWindowChars;
  frameBytes = init.frameBytes;
  frameDepth = init.frameDepth;
  const mod = await import(pathToFileURL(init.entry).href);
  const activate = typeof mod.default === "function" ? mod.default : mod.activate;
  if (typeof activate !== "function")
    throw new Error(`${init.entry} exports no activate function (default export or named "activate")`);
  const result = await activate(makeApi(init));
  deactivate = typeof result === "function" ? result : result?.deactivate;
  send({ t: "ready" });
}

function onFrame(frame) {
  switch (frame.t) {
    case "init":
      start(frame).catch(fatal);
      break;
    case "res": {
      const waiter = pending.get(frame.id);
      if (waiter === undefined) break;
      pending.delete(frame.id);
      if (frame.ok) waiter.resolve(frame.value);
      else waiter.reject(new PluginError(frame.error.code, frame.error.message));
      break;
    }
    case "event": {
      const sub = subscriptions.get(frame.sub);
      if (sub === undefined) break;
      try {
        const maybe = sub.handler(frame.event, frame.sessionId);
        if (maybe && typeof maybe.catch === "function")
          maybe.catch((error) => log("error", "event handler failed", { error: String(error) }));
      } catch (error) {
        log("error", "event handler failed", { error: String(error) });
      }
      break;
    }
    case "dropped":
      subscriptions.get(frame.sub)?.onDropped?.(frame.count);
      break;
    case "call":
      if (frame.method === "agent.run") void runAgent(frame.id, frame.params);
      else if (frame.method === "http.request") void answerHttp(frame.id, frame.params);
      break;
    case "agent.abort":
      runs.get(frame.runId)?.abort();
      break;
    case "agent.ack":
      runs.get(frame.runId)?.ack(frame.chars);
      break;
    case "stop":
      void stop();
      break;
    case "ping":
      send({ t: "pong", n: frame.n });
      break;
    default:
      break;
  }
}

harden();
process.on("uncaughtException", fatal);
process.on("unhandledRejection", fatal);

let buffered = "";
channel.setEncoding("utf8");
channel.on("data", (chunk) => {
  buffered += chunk;
  for (;;) {
    const nl = buffered.indexOf("\n");
    if (nl === -1) break;
    const line = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    onFrame(JSON.parse(line));
  }
});
// The host went away (or closed the channel): nothing left to serve.
channel.on("end", () => process.exit(0));
channel.on("error", (error) => {
  console.error("plugin channel error:", error.message);
  process.exit(1);
});
