// The plugin runner: the entry module of every sandboxed plugin process. It closes gaps of the
// permission model (harden.mjs), speaks the frame protocol with the host over fd 3, gives the
// plugin its API, streams agent runs (run-stream.mjs), answers HTTP hooks and stops.
//
// Plain JavaScript on purpose: the child runs under Node's permission model, reading only
// this folder (src/plugins/runner/, which holds the runner's modules and nothing else), the
// plugin's folder and its state folder, so it cannot load TypeScript through tsx (that would
// need node_modules) and must not depend on anything but Node built-ins and this folder's
// modules. The build copies the folder next to the compiled host (dist/plugins/runner/).
//
// Nothing here is a security boundary: plugin code shares this process and can forge any
// frame. The host checks every request against the plugin's permissions; the runner only
// gives plugins a convenient, typed-by-docs API (see src/plugins/api.ts and docs/plugins.md).
import { Buffer } from "node:buffer";
import net from "node:net";
import { pathToFileURL } from "node:url";
import { frameLine, pieceEnd, setFrameLimits } from "./frame.mjs";
import { harden } from "./harden.mjs";
import { errorToWire, PluginError } from "./plugin-error.mjs";
import { RunStream } from "./run-stream.mjs";

/** How long a fatal report may take to reach the host before the process exits anyway. */
const FATAL_FLUSH_MS = 500;

const channel = new net.Socket({ fd: 3, readable: true, writable: true });

function send(frame) {
  channel.write(JSON.stringify(frame) + "\n");
}

function fatal(error) {
  // A refusal from the gateway (PluginError) is said as such: its stack is only the runner's.
  const message =
    error instanceof PluginError
      ? `${error.code}: ${error.message}`
      : error instanceof Error
        ? (error.stack ?? error.message)
        : String(error);
  channel.write(JSON.stringify({ t: "fatal", message }) + "\n", () => process.exit(1));
  setTimeout(() => process.exit(1), FATAL_FLUSH_MS).unref();
}

let nextRequestId = 1;
const pending = new Map();
const subscriptions = new Map();
const agents = new Map();
/** Agent runs in flight, by run id: their RunStream. */
const runs = new Map();
let httpHandler;
/** HTTP hook answers in progress: a stop lets them finish (the host kills it after `stopGraceMs`). */
const httpAnswers = new Set();
let deactivate;
let stopping = false;
/** A run's unacknowledged delta characters are kept under this: the host's `agentDeltaWindowChars`, set by init (before any run). */
let deltaWindowChars;

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

/**
 * Characters of a log message kept when its line would not fit in a frame: under the 8,192 the
 * gateway log keeps of any message (the host's `logLineChars`), so that the note saying how much
 * was cut is kept with it.
 */
const LOG_MSG_KEPT = 8_000;

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
    const end = pieceEnd(text, 0, LOG_MSG_KEPT);
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
  const stream = new RunStream({
    runId: params.runId,
    windowChars: deltaWindowChars,
    write: (line) => channel.write(line),
  });
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
  // Stopping, its queued text was dropped: an answer would end the run as if all of it had
  // arrived. Unanswered, the run ends with the process (AGENT_EXITED).
  if (stopping) return;
  if (outcome.ok) reply(callId, outcome.value);
  else send({ t: "res", id: callId, ok: false, error: outcome.error });
}

/**
 * The request a hook handler gets: the body comes raw (base64) and once; it is parsed here as the
 * gateway said it is (JSON it already checked, or a form), and kept as bytes for signatures.
 */
function hookRequest(params) {
  const rawBody = Buffer.from(params.rawBody ?? "", "base64");
  let body = null;
  if (params.bodyKind === "json") body = JSON.parse(rawBody.toString("utf8"));
  else if (params.bodyKind === "form") body = Object.fromEntries(new URLSearchParams(rawBody.toString("utf8")));
  return {
    method: params.method,
    path: params.path,
    query: params.query,
    headers: params.headers,
    body,
    rawBody,
    public: params.public === true,
  };
}

async function answerHttp(callId, params) {
  try {
    if (httpHandler === undefined) throw new PluginError("NOT_FOUND", "this plugin has no HTTP hook");
    reply(callId, await httpHandler(hookRequest(params)));
  } catch (error) {
    send({ t: "res", id: callId, ok: false, error: errorToWire(error) });
  }
}

async function stop() {
  if (stopping) return;
  stopping = true;
  // The host is going: nothing queued will be taken, and no run may keep deactivate waiting.
  for (const stream of runs.values()) stream.drop();
  // A caller is waiting for each HTTP answer, and the handler may itself wait for the host (a
  // plugin writing its own config is restarted by that write while its hook still has to answer):
  // they finish first, under the host's stop grace, and deactivate runs after them. answerHttp
  // never rejects (a failing handler is answered as such).
  if (httpAnswers.size > 0) await Promise.all(httpAnswers);
  try {
    if (typeof deactivate === "function") await deactivate();
  } catch (error) {
    log("error", "deactivate failed", { error: error instanceof Error ? error.message : String(error) });
  }
  channel.end(() => process.exit(0));
}

async function start(init) {
  deltaWindowChars = init.deltaWindowChars;
  setFrameLimits(init);
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
      else if (frame.method === "http.request") {
        const answer = answerHttp(frame.id, frame.params);
        httpAnswers.add(answer);
        void answer.finally(() => httpAnswers.delete(answer));
      }
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

/**
 * Frames read and not handled yet. Past QUEUE_PAUSE_BYTES of them the channel is not read
 * (the gateway then drops events past its own queue for this plugin and says how many, see
 * `onDropped`) until half of that is handled.
 */
const QUEUE_PAUSE_BYTES = 256 * 1024;
/** Longest the runner handles frames in a row before it lets its event loop run (timers, reads, pings). */
const SLICE_MS = 10;
let buffered = "";
const queue = [];
let head = 0;
let queuedBytes = 0;
let readPaused = false;
let draining = false;
channel.setEncoding("utf8");
channel.on("data", (chunk) => {
  buffered += chunk;
  for (let nl = buffered.indexOf("\n"); nl !== -1; nl = buffered.indexOf("\n")) {
    const line = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    const frame = JSON.parse(line);
    // Answered as it is read, not behind the frames before it: a subscriber that takes a while
    // per event is slow, not hung. Its event loop runs, or this would not be reading.
    if (frame.t === "ping") {
      send({ t: "pong", n: frame.n });
      continue;
    }
    queue.push({ frame, bytes: line.length });
    queuedBytes += line.length;
  }
  if (!readPaused && queuedBytes > QUEUE_PAUSE_BYTES) {
    readPaused = true;
    channel.pause();
  }
  if (!draining) drain().catch(fatal);
});

/**
 * Handles the frames read, in order, letting the event loop run every SLICE_MS (so timers fire,
 * calls are answered and the gateway's heartbeat is read while a slow subscriber works through a
 * backlog). After an answer, the code that awaited it runs before the next frame: the host sends
 * the answer of `messages.inbound` before the events of the run it started, and a handler of
 * those events must find what that code kept of the answer (its run id) — in one chunk, the
 * events were handled before the awaiting code resumed.
 */
async function drain() {
  draining = true;
  try {
    let sliceStart = performance.now();
    while (head < queue.length) {
      const { frame, bytes } = queue[head];
      queue[head++] = undefined;
      queuedBytes -= bytes;
      // Handled entries leave the array once it is empty, or once they are half of it.
      if (head === queue.length || (head >= 1024 && head * 2 >= queue.length)) {
        queue.splice(0, head);
        head = 0;
      }
      onFrame(frame);
      if (readPaused && queuedBytes <= QUEUE_PAUSE_BYTES / 2) {
        readPaused = false;
        channel.resume();
      }
      if (frame.t === "res" || performance.now() - sliceStart > SLICE_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
    }
  } finally {
    draining = false;
  }
}
// The host went away (or closed the channel): nothing left to serve.
channel.on("end", () => process.exit(0));
channel.on("error", (error) => {
  // Once asked to stop, the host may close its end first: nothing is lost then.
  if (stopping) process.exit(0);
  console.error("plugin channel error:", error.message);
  process.exit(1);
});
