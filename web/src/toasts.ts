import { h, icon } from "./dom.js";

/** A toast stays this long (errors twice as long). */
export const TOAST_MS = 5_000;
/** At most this many toasts are on screen; older ones go first. */
export const MAX_TOASTS = 4;

/** Short notices in a corner: errors the user should know of, and what others did. */
export class Toasts {
  readonly element = h("div", { class: "toasts", "aria-live": "polite" });

  show(message: string, kind: "error" | "info" = "info"): void {
    const toast = h(
      "div",
      { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" },
      icon(kind === "error" ? "x" : "check"),
      h("span", null, message),
    );
    const remove = (): void => toast.remove();
    toast.addEventListener("click", remove);
    this.element.appendChild(toast);
    while (this.element.children.length > MAX_TOASTS) this.element.firstElementChild?.remove();
    setTimeout(remove, kind === "error" ? TOAST_MS * 2 : TOAST_MS);
  }
}
