import { byteSize } from "./disk-usage.js";
import { h } from "./dom.js";

/**
 * Characters of keys typed while the screen is restored that wait for it; past this they are
 * dropped, and the page says so (a restore takes seconds, typing ahead takes a few hundred).
 */
export const RESTORE_TYPEAHEAD_CHARS = 64 * 1024;

/**
 * "Restoring… 12 MiB of 48 MiB" over a terminal until its screen is back, and the keys typed
 * meanwhile, kept in order for the page to send once it is (never sent at a screen that is not
 * there yet, never dropped unless past {@link RESTORE_TYPEAHEAD_CHARS}).
 */
export class RestoreStatus {
  readonly element: HTMLElement;
  private readonly text: HTMLElement;
  /** The session's output size when the page opened (it may grow meanwhile). */
  private readonly total: number;
  private reached = 0;
  private drawQueued = false;
  private keys: string[] = [];
  private chars = 0;
  private _overflowed = false;
  private _done = false;

  constructor(totalBytes: number) {
    this.total = totalBytes;
    this.text = h("span", null);
    this.element = h("div", { class: "restore-status", role: "status", "data-test": "restoring" }, this.text);
    this.draw();
  }

  get done(): boolean {
    return this._done;
  }

  /** Keys were dropped past {@link RESTORE_TYPEAHEAD_CHARS} (the page says so once). */
  get overflowed(): boolean {
    return this._overflowed;
  }

  /** Output up to byte `offset` is on its way to the screen. */
  reach(offset: number): void {
    if (offset <= this.reached) return;
    this.reached = offset;
    if (this.drawQueued || this._done) return;
    this.drawQueued = true;
    requestAnimationFrame(() => {
      this.drawQueued = false;
      this.draw();
    });
  }

  /** Keeps keys typed before the screen is back; false if they are past the bound and dropped. */
  hold(data: string): boolean {
    if (this.chars + data.length > RESTORE_TYPEAHEAD_CHARS) {
      this._overflowed = true;
      return false;
    }
    this.keys.push(data);
    this.chars += data.length;
    return true;
  }

  /**
   * The screen is back: hides the status and hands over the keys typed meanwhile, in order, as
   * one string (one input to send, not one per key: ui-reconnect's "20 MB" test).
   */
  finish(): string {
    this._done = true;
    this.element.hidden = true;
    const keys = this.keys.join("");
    this.keys = [];
    this.chars = 0;
    return keys;
  }

  private draw(): void {
    const total = Math.max(this.total, this.reached);
    this.text.textContent =
      total === 0 ? "Restoring…" : `Restoring… ${byteSize(Math.min(this.reached, total))} of ${byteSize(total)}`;
  }
}
