import type { LogRoom } from "./adapter.js";

/**
 * Holds an ACP agent back while the session's log has no room (AdapterContext.room). Its
 * {@link stream} sits between the agent's stdout and the JSON-RPC parser and passes the output on
 * only while {@link roomForOutput} allows: held back, the stream stops pulling, Node stops reading
 * the pipe, and the agent blocks on its writes. Chunks pass one at a time, in order, so the wire
 * order AcpWire numbers is the agent's.
 */
export class AcpOutputHold {
  private readonly room: LogRoom;
  private readonly runOpen: () => boolean;
  /** Set once the adapter shuts down: the agent's output is no longer held back. */
  private released = false;
  /** Ends the current wait for room in the log early (see {@link roomForOutput}). */
  private stopHolding: (() => void) | undefined;

  /** `runOpen` says whether a run is open, i.e. whether what the agent sends now reaches the log. */
  constructor(options: { room: LogRoom; runOpen: () => boolean }) {
    this.room = options.room;
    this.runOpen = options.runOpen;
  }

  /** The agent's stdout, passed on only while the log has room. */
  stream(): TransformStream<Uint8Array, Uint8Array> {
    return new TransformStream<Uint8Array, Uint8Array>({
      transform: (chunk, controller) => {
        const wait = this.roomForOutput();
        if (wait === undefined) return controller.enqueue(chunk);
        return wait.then(() => controller.enqueue(chunk));
      },
    });
  }

  /** Ends the current wait, if any: the run has ended, so what the agent sends for it is read on. */
  stop(): void {
    this.stopHolding?.();
  }

  /** Never holds the agent back again: it is being stopped, and its output must drain, or its end is never seen. */
  release(): void {
    this.released = true;
    this.stopHolding?.();
  }

  /**
   * Undefined when more of the agent's output may be read now; else resolves when it may. The
   * agent is held back while a run is open and the session's log has no room. Once the run has
   * ended (aborted, stopped at its text limit) what the agent sends for it is not logged, so it
   * is read on (and can finish the cancelled turn); so is it after {@link release}.
   */
  private roomForOutput(): Promise<void> | undefined {
    if (this.released || !this.runOpen()) return undefined;
    const room = this.room();
    if (room === undefined) return undefined;
    return new Promise<void>((resolve) => {
      const stop = (): void => {
        if (this.stopHolding === stop) this.stopHolding = undefined;
        resolve();
      };
      this.stopHolding = stop;
      void room.then(stop);
    });
  }
}
