import { SwitchboardError } from "../protocol/index.js";
import type { Actor, ExternalEvent, SessionEvent } from "../protocol/index.js";
import { Session } from "./session.js";

/**
 * A session with no process: external producers append events to it (a tool's output, a CI
 * job's log). An `exit` event from the producer ends it.
 */
export class StreamSession extends Session {
  /** Appends producer events in order; returns the stored events. */
  appendExternal(events: readonly ExternalEvent[]): SessionEvent[] {
    this.assertRunning();
    const out: SessionEvent[] = [];
    for (const e of events) {
      if (!this.running)
        throw new SwitchboardError("SESSION_NOT_RUNNING", `session ${this.id} ended at an earlier event in this batch`);
      out.push(appendExternalEvent(this, e));
    }
    this.touch();
    this.changed();
    return out;
  }

  /** Appends a producer's output, which feeds the list's last line as a terminal's does. */
  appendOutput(stream: "stdout" | "stderr", data: string, enc?: "base64"): SessionEvent {
    const event = this.log.appendOutput(stream, data, enc);
    this.outputTail.push(enc === "base64" ? Buffer.from(data, "base64") : data);
    return event;
  }

  /** Marks the stream ended (used for `exit` from a producer and for DELETE). */
  end(exitCode: number | null, signal: string | null): SessionEvent {
    const event = this.finish("exited", exitCode, signal);
    if (!event) throw new SwitchboardError("SESSION_NOT_RUNNING", `session ${this.id} has already ended`);
    return event;
  }

  /** A stream has no process: it stays open across a restart, producers go on appending. */
  override async shutdown(_by: Actor): Promise<void> {}

  async terminate(_by: Actor): Promise<void> {
    if (this.running) this.finish("exited", null, null);
    await this.ended();
  }
}

/**
 * Appends one external event. `output` and `exit` only make sense on stream sessions; any
 * other type goes in as `custom {name, data}` on any running session.
 */
export function appendExternalEvent(session: Session, e: ExternalEvent): SessionEvent {
  switch (e.type) {
    case "output": {
      if (!(session instanceof StreamSession)) break;
      const d = e.data as { stream: "stdout" | "stderr"; data: string; enc?: "base64" };
      return session.appendOutput(d.stream, d.data, d.enc);
    }
    case "exit": {
      if (!(session instanceof StreamSession)) break;
      const d = e.data as { exitCode: number | null; signal: string | null };
      return session.end(d.exitCode, d.signal);
    }
    default:
      return session.log.append({ type: "custom", name: e.type, data: e.data ?? null });
  }
  throw new SwitchboardError("WRONG_SESSION_KIND", `only stream sessions accept ${e.type} events from producers`);
}
