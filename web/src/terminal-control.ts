import { isConnectionError, isSwitchboardError } from "../../src/client/index.js";
import type { ControlVia, SessionEvent, SessionInfo } from "../../src/protocol/index.js";
import type { AppContext } from "./context.js";
import { ControlBar } from "./control-bar.js";
import type { Control, ControlBarState } from "./control-bar.js";
import { errorText, unconfirmedText } from "./format.js";
import { heldBefore, noteHeld } from "./tab-memory.js";
import { END_OF_INPUT, INPUT_CHUNK_CHARS, inputChunks, joinKeys } from "./terminal-input.js";
import type { Keys } from "./terminal-input.js";

export interface TerminalControlPage {
  /** The session as the page knows it now (the store and the log keep it current). */
  session(): SessionInfo;
  /** The session runs (and has not ended in the log). */
  running(): boolean;
  /** The control was set (by the log, a reply or a lost lease); `was` is whose it was before. */
  changed(was: Control["kind"]): void;
  /**
   * The lease this page asked for (Take control, or by itself) was granted: the page puts the
   * focus where typing goes. Not when keys asked for it: they came from where typing goes, and
   * the user may have moved on while the request was on its way (ui-control.test.ts, "leaves the
   * focus where the user put it").
   */
  acquired(): void;
}

/**
 * The control of a terminal session from this page: the lease that typing needs and the bar
 * that says whose it is (see ControlBar). The page takes the lease when nobody holds it, offers
 * "Take control" (a force takeover) when someone else does, and never steers for a viewer.
 */
export class TerminalControl {
  readonly element: HTMLElement;
  private readonly ctx: AppContext;
  private readonly page: TerminalControlPage;
  private readonly sessionId: string;
  private readonly bar: ControlBar;
  private readonly disposers: (() => void)[];
  private control: Control;
  private acquiring = false;
  /**
   * Taking control by itself (see {@link maybeAutoAcquire}) was cut off by a dropped connection:
   * it is tried again once the connection is back. The SDK takes back only leases it was granted.
   */
  private acquireOnReconnect = false;
  /**
   * Keys typed while an acquire is pending (including the one that started it), sent in order
   * once control is ours and dropped if it is not. Nothing overtakes them: the log's control
   * event can name this page before the acquire's ack arrives, and a key sent then would go
   * out ahead of them. Bounded in time: the acquire is answered or times out (the SDK's
   * REQUEST_TIMEOUT_MS).
   */
  private typedAhead: Keys[] = [];
  /** The session ended in the log, and the lease with it. */
  private sessionEnded = false;

  constructor(ctx: AppContext, page: TerminalControlPage) {
    this.ctx = ctx;
    this.page = page;
    const { id, controller, controllerVia } = page.session();
    this.sessionId = id;
    this.control = controller === null ? { kind: "free" } : other(controller, controllerVia);
    this.bar = new ControlBar(ctx.me.name, {
      acquire: (force) => void this.acquire(force),
      release: () => void this.release(),
    });
    this.element = this.bar.element;
    this.disposers = [
      ctx.client.on("state", ({ state }) => {
        if (state !== "open" || !this.acquireOnReconnect) return;
        this.acquireOnReconnect = false;
        // Whoever the page last saw in control: the events since the drop are still to come. Someone
        // who took control meanwhile keeps it (no force).
        if (this.ctx.canSteer && this.page.running() && this.control.kind !== "mine")
          void this.acquire(false, "automatic");
      }),
      ctx.client.on("control-lost", (lost) => {
        if (lost.session !== this.sessionId) return;
        // The log's control event names the new holder; this only covers its absence.
        if (this.control.kind === "mine")
          this.setControl(this.otherNamed(lost.holder ?? this.page.session().controller ?? "someone else"));
        // Taken over from another of this user's pages: that page is where they type now.
        if (lost.holder === ctx.me.name) ctx.toast("You took control in another tab or window", "info");
        // Someone else took it (CONTROL_LOST, CONTROL_HELD): the gateway's message names them.
        else ctx.toast(`You lost control: ${lost.message}`, "error");
      }),
    ];
  }

  get kind(): Control["kind"] {
    return this.control.kind;
  }

  /** Who holds control as the bar shows it, for the header to say the same (controlHolder). */
  get holder(): { controller: string | null; via: ControlVia | null; here: boolean } {
    const c = this.control;
    if (c.kind === "free") return { controller: null, via: null, here: false };
    if (c.kind === "mine") return { controller: this.ctx.me.name, via: "page", here: true };
    return { controller: c.name, via: c.via ?? null, here: false };
  }

  /** Draws the bar for the page's state; returns the state it shows. */
  render(): ControlBarState {
    return this.bar.render({
      canSteer: this.ctx.canSteer,
      running: this.page.running(),
      kind: this.page.session().kind,
      control: this.control,
    });
  }

  /** The log's control event: who holds the lease now. */
  controlEvent(event: Extract<SessionEvent, { type: "control" }>): void {
    if (event.holder === null) this.setControl({ kind: "free" });
    else if (event.holder.connId !== undefined && event.holder.connId === this.ctx.client.hello?.connId)
      this.setControl({ kind: "mine" });
    else this.setControl(other(event.holder.name, event.holder.via));
  }

  /** The session ended (its exit or lost event); the page draws the bar again. */
  ended(): void {
    this.sessionEnded = true;
    // The lease ended with the session (the SDK says nothing of a lease whose session ended).
    this.control = { kind: "free" };
  }

  /**
   * Takes back what this tab held before a reload (the gateway keeps it for this tab's client key,
   * `control.reconnectGraceMs`, and refuses it to anyone else), or takes a session this tab just
   * started, if nobody holds it. Nothing else: opening a session only looks (control, and with it
   * the PTY's size, follows this window once the user types or takes control), so a phone that
   * opens a session reflows nobody's screen.
   */
  maybeAutoAcquire(): void {
    if (!this.ctx.canSteer || !this.page.running() || this.page.session().kind !== "terminal") return;
    if (!heldBefore(this.sessionId)) return;
    const mine = this.control.kind === "other" && this.control.name === this.ctx.me.name;
    if (this.control.kind === "free" || mine) void this.acquire(false, "automatic");
  }

  /** Keys for the session: sent in control, else they wait for control if nobody holds it. */
  type(data: Keys): void {
    if (!this.ctx.canSteer || !this.page.running()) return;
    if (this.acquiring) this.typedAhead.push(data);
    else if (this.control.kind === "mine") this.send(data);
    else if (this.control.kind === "free") {
      this.typedAhead.push(data);
      void this.acquire(false, "typing");
    } else this.bar.nudge();
  }

  dispose(): void {
    for (const dispose of this.disposers) dispose();
    if (this.control.kind === "mine" && !this.sessionEnded) {
      this.ctx.client.control(this.sessionId, "release").catch((error: unknown) => {
        // Leaving the page: the lease also lapses on disconnect or after its TTL.
        console.debug("release on leave failed", error);
      });
    }
  }

  /**
   * Asks for the control lease. `by`: the user asked (Take control), or typed keys that wait for
   * it, or the page by itself, which is not news the user needs when the connection is down.
   */
  private async acquire(force: boolean, by: "user" | "typing" | "automatic" = "user"): Promise<void> {
    if (this.acquiring) return;
    this.acquiring = true;
    try {
      await this.ctx.client.control(this.sessionId, "acquire", { force });
      this.setControl({ kind: "mine" });
      if (by !== "typing") this.page.acquired();
      for (const data of joinKeys(this.typedAhead.splice(0))) this.send(data);
    } catch (error) {
      const dropped = this.typedAhead.splice(0).length > 0;
      if (isSwitchboardError(error, "CONTROL_HELD")) {
        const holder = error.details?.["holder"];
        this.setControl(this.otherNamed(typeof holder === "string" ? holder : "someone else"));
        if (dropped) this.bar.nudge();
      } else if (by === "automatic" && !dropped && isConnectionError(error)) {
        // The connection dropped under the request, or was down until it timed out: the
        // connection pill says so, and whatever the gateway granted went with the connection.
        this.acquireOnReconnect = true;
      } else if (by === "automatic" && isSwitchboardError(error, "SESSION_NOT_RUNNING", "SESSION_NOT_FOUND")) {
        // It ended (or went) while the connection was away: its end event and banner say so.
      } else this.ctx.toast(`Could not take control: ${errorText(error)}`, "error");
    } finally {
      this.acquiring = false;
    }
  }

  private async release(): Promise<void> {
    try {
      await this.ctx.client.control(this.sessionId, "release");
      this.setControl({ kind: "free" });
    } catch (error) {
      this.ctx.toast(`Could not release control: ${errorText(error)}`, "error");
    }
  }

  private setControl(control: Control): void {
    const was = this.control.kind;
    this.control = control;
    if (!this.sessionEnded) noteHeld(this.sessionId, control.kind === "mine");
    this.page.changed(was);
  }

  /** Someone else named `name` holds it: connected as the session's controller is, if that is them. */
  private otherNamed(name: string): Control {
    const session = this.page.session();
    return other(name, session.controller === name ? session.controllerVia : undefined);
  }

  private send(data: Keys): void {
    const failed = (error: unknown): void => {
      if (isSwitchboardError(error, "SESSION_NOT_RUNNING")) return; // the exit event says it
      // A stalled link: the keys may still reach the program; typing them again may run them twice.
      const unconfirmed = unconfirmedText("Input", error);
      this.ctx.toast(
        unconfirmed !== null
          ? `${unconfirmed} — check the terminal before typing it again`
          : `Input not sent: ${errorText(error)}`,
        "error",
      );
    };
    if (data === END_OF_INPUT) {
      this.ctx.client.input(this.sessionId, "", { eof: true }).catch(failed);
      return;
    }
    for (const piece of inputChunks(data, INPUT_CHUNK_CHARS))
      this.ctx.client.input(this.sessionId, piece).catch(failed);
  }
}

function other(name: string, via: ControlVia | null | undefined): Control {
  return via === undefined || via === null ? { kind: "other", name } : { kind: "other", name, via };
}
