import type { Terminal } from "@xterm/xterm";

/** What a user scrolls the frame with. */
const USER_SCROLL_EVENTS = ["wheel", "touchstart", "touchmove", "pointerdown", "keydown"] as const;
/** How long after such an event a scroll of the frame counts as the user's (a fling lasts about this). */
const USER_SCROLL_MS = 1500;

/**
 * Keeps a terminal's cursor in sight when the terminal is bigger than its frame (a PTY shown at
 * its own size on a phone, which scrolls the frame): the frame opens at the cursor, and follows
 * it as output comes, unless the user scrolled it so that the cursor is out of sight; scrolling
 * back to it follows again. Test: ui-phone.test.ts, "opens a phone's terminal at the cursor".
 */
export class CursorFollow {
  /** Off while the user has scrolled the cursor out of sight. */
  private following = true;
  private frame = 0;
  /** When the user last touched, wheeled or pressed a key in the frame (performance.now()). */
  private userAt = -Infinity;
  private readonly disposers: (() => void)[] = [];

  constructor(
    private readonly term: Terminal,
    private readonly wrap: HTMLElement,
  ) {
    // Only the user's scrolls decide: a layout change (the key bar, a font) scrolls the frame too.
    const touched = () => (this.userAt = performance.now());
    const onScroll = () => {
      if (performance.now() - this.userAt > USER_SCROLL_MS) return;
      this.following = this.cursorRect() === undefined || this.inSight();
      if (this.following) this.schedule();
    };
    for (const type of USER_SCROLL_EVENTS) wrap.addEventListener(type, touched, { passive: true });
    wrap.addEventListener("scroll", onScroll, { passive: true });
    const moved = this.term.onCursorMove(() => this.schedule());
    const written = this.term.onWriteParsed(() => this.schedule());
    const resized = this.term.onResize(() => this.schedule());
    // The frame or the screen changing size (the key bar showing, fit to width's font) moves
    // the cursor without any output.
    const layout = new ResizeObserver(() => this.schedule());
    layout.observe(wrap);
    if (term.element) layout.observe(term.element);
    this.disposers.push(
      () => wrap.removeEventListener("scroll", onScroll),
      () => USER_SCROLL_EVENTS.forEach((type) => wrap.removeEventListener(type, touched)),
      () => moved.dispose(),
      () => written.dispose(),
      () => resized.dispose(),
      () => layout.disconnect(),
      () => cancelAnimationFrame(this.frame),
    );
  }

  dispose(): void {
    for (const dispose of this.disposers.splice(0)) dispose();
  }

  private schedule(): void {
    if (!this.following) return;
    cancelAnimationFrame(this.frame);
    this.frame = requestAnimationFrame(() => this.scrollToCursor());
  }

  private scrollToCursor(): void {
    const cursor = this.cursorRect();
    if (!cursor || this.inSight()) return;
    const view = this.wrap.getBoundingClientRect();
    // The least scroll that shows the cursor's row (and column), with a row of room below it.
    if (cursor.bottom + cursor.height > view.bottom) this.wrap.scrollTop += cursor.bottom + cursor.height - view.bottom;
    else if (cursor.top < view.top) this.wrap.scrollTop -= view.top - cursor.top;
    if (cursor.right > view.right) this.wrap.scrollLeft += cursor.right - view.right + cursor.width * 4;
    else if (cursor.left < view.left) this.wrap.scrollLeft -= view.left - cursor.left + cursor.width * 4;
  }

  private inSight(): boolean {
    const cursor = this.cursorRect();
    const view = this.wrap.getBoundingClientRect();
    return (
      cursor !== undefined &&
      cursor.top >= view.top &&
      cursor.bottom <= view.bottom &&
      cursor.left >= view.left &&
      cursor.right <= view.right
    );
  }

  /** Where the cursor's cell is drawn, from the screen's size and the buffer's cursor. */
  private cursorRect(): DOMRect | undefined {
    const screen = this.term.element?.querySelector(".xterm-screen");
    if (!screen) return undefined;
    const box = screen.getBoundingClientRect();
    if (box.height === 0 || box.width === 0) return undefined;
    const buffer = this.term.buffer.active;
    // The cursor's row on screen: its line less the first line shown (xterm's own scrollback).
    const row = buffer.baseY + buffer.cursorY - buffer.viewportY;
    if (row < 0 || row >= this.term.rows) return undefined;
    const cellHeight = box.height / this.term.rows;
    const cellWidth = box.width / this.term.cols;
    return new DOMRect(box.left + buffer.cursorX * cellWidth, box.top + row * cellHeight, cellWidth, cellHeight);
  }
}
