// Flow control of agent runs, the plugin's side (the host's side: src/plugins/run-credit.ts).
import { checkedLine, deltaPieceChars, pieceEnd } from "./frame.mjs";
import { PluginError } from "./plugin-error.mjs";

const DONE = Promise.resolve();

/**
 * One agent run's stream frames towards the host, paced by the host's acks (`agent.ack`, see
 * the host's RunCredit). A frame is sent while the run's unacknowledged characters are under
 * its window (`windowChars`) — delta text counts its length, a tool event the length of its JSON —;
 * beyond, frames wait here, in order, in the plugin's own memory, until acks come. The host acks
 * only while the run's log has room, so a run is held back without holding back the pipe, which
 * carries heartbeats and the plugin's other runs.
 */
export class RunStream {
  /**
   * `runId`: the run's id at the host. `windowChars`: unacknowledged characters the run is kept
   * under, the host's `agentDeltaWindowChars` (from init). `write`: writes a line to the host.
   */
  constructor({ runId, windowChars, write }) {
    this.runId = runId;
    this.windowChars = windowChars;
    this.write = write;
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
      const end = pieceEnd(text, at, most);
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
    return this.head === this.queue.length && this.unacked < this.windowChars;
  }

  pump() {
    while (this.head < this.queue.length && this.unacked < this.windowChars) {
      const { line, chars } = this.queue[this.head];
      this.unacked += chars;
      this.queue[this.head++] = undefined;
      this.write(line);
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
    if (this.roomWaiters.length > 0 && (this.dropping || this.unacked < this.windowChars)) {
      const room = this.roomWaiters;
      this.roomWaiters = [];
      for (const resolve of room) resolve();
    }
  }
}
