/**
 * A few lines instead of a framework: `h()` builds elements, `icon()` builds inline SVG.
 * Text always goes in as text nodes, never as HTML, so nothing from the gateway (names,
 * commands, agent output) can inject markup.
 */

export type Child = Node | string | number | null | undefined | false;
type AttrValue = string | number | boolean | null | undefined;
export type Attrs = Record<string, AttrValue | ((event: Event) => void)>;

/**
 * `h("button", { class: "btn", onclick: () => go() }, "Go")`. Attributes that are `false`,
 * `null` or `undefined` are left out; `true` sets an empty attribute; `on*` functions are
 * listeners.
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: (Child | readonly Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function setAttrs(el: Element, attrs: Attrs): void {
  for (const [key, value] of Object.entries(attrs)) {
    if (typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else if (value !== false && value !== null && value !== undefined) {
      el.setAttribute(key, String(value));
    }
  }
}

export function append(el: Node, children: readonly (Child | readonly Child[])[]): void {
  for (const child of children) {
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else if (child !== null && child !== undefined && child !== false)
      el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function fill(el: Element, ...children: (Child | readonly Child[])[]): void {
  el.replaceChildren();
  append(el, children);
}

/**
 * Makes `live` (on the page) show what `fresh` (just built) shows, keeping every node that is
 * still there: the focus, a text selection or a `<details>` the user opened survive a
 * re-render. Children are matched by position, which suits content that grows at its end. An
 * element whose tag is unchanged is kept and updated, with its listeners: those must depend on
 * nothing but the element's place. An element built with {@link updatedBy} brings the live one
 * up to date itself, and nothing inside it is compared.
 */
export function morph(live: Element, fresh: Element): void {
  for (const { name } of [...live.attributes]) if (!fresh.hasAttribute(name)) live.removeAttribute(name);
  for (const { name, value } of fresh.attributes) if (live.getAttribute(name) !== value) live.setAttribute(name, value);
  const update = updaters.get(fresh);
  if (update) update(live);
  else morphChildren(live, [...fresh.childNodes]);
}

/**
 * {@link morph} for `live`'s children from the `from`th on: they become `next` (fresh nodes);
 * those before are left alone.
 */
export function morphChildren(live: Element, next: readonly Node[], from = 0): void {
  let old: ChildNode | null = live.childNodes[from] ?? null;
  for (const node of next) {
    const following: ChildNode | null = old?.nextSibling ?? null;
    if (!old) place(node, () => live.appendChild(node));
    else if (old instanceof Element && node instanceof Element && old.tagName === node.tagName) {
      if (updaters.has(node) || !old.isEqualNode(node)) morph(old, node);
    } else if (old.isEqualNode(node)) {
      // unchanged
    } else if (old instanceof Text && node instanceof Text) old.data = node.data;
    else place(node, () => old?.replaceWith(node));
    old = following;
  }
  while (old) {
    const following: ChildNode | null = old.nextSibling;
    old.remove();
    old = following;
  }
}

/** Elements built with {@link updatedBy}, and what brings each up to date. */
const updaters = new WeakMap<Element, (live: Element) => void>();

/**
 * Marks `fresh` as brought up to date by `update` rather than by comparing children: where
 * {@link morph} keeps the live element in its place, it calls `update(live)`, and where it puts
 * `fresh` itself on the page, `update(fresh)`. For content too large to build afresh for every
 * change (an answer streaming in, see markdown-stream.ts), whose owner knows what changed.
 */
export function updatedBy<T extends Element>(fresh: T, update: (live: T) => void): T {
  updaters.set(fresh, update as (live: Element) => void);
  return fresh;
}

/** Puts `node` on the page with `insert`, then lets it update itself (see {@link updatedBy}). */
function place(node: Node, insert: () => void): void {
  insert();
  if (node instanceof Element) updaters.get(node)?.(node);
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** 24×24 stroke icons (drawn for this UI). */
const ICONS = {
  terminal: "M4 17l6-5-6-5M12 19h8",
  agent:
    "M12 3l1.9 5.1L19 10l-5.1 1.9L12 17l-1.9-5.1L5 10l5.1-1.9zM19 15l.8 2.2L22 18l-2.2.8L19 21l-.8-2.2L16 18l2.2-.8z",
  stream: "M3 7c3-2 6 2 9 0s6-2 9 0M3 12c3-2 6 2 9 0s6-2 9 0M3 17c3-2 6 2 9 0s6-2 9 0",
  eye: "M2 12s3.6-7 10-7 10 7 10 7-3.6 7-10 7S2 12 2 12zM12 15a3 3 0 100-6 3 3 0 000 6z",
  lock: "M6 11h12v10H6zM8 11V7a4 4 0 018 0v4",
  unlock: "M6 11h12v10H6zM8 11V7a4 4 0 017.5-2",
  plus: "M12 5v14M5 12h14",
  back: "M15 18l-6-6 6-6",
  stop: "M7 7h10v10H7z",
  send: "M12 19V5M5 12l7-7 7 7",
  logout: "M9 21H5a2 2 0 01-2-2V5a2 2 0 012-2h4M16 17l5-5-5-5M21 12H9",
  link: "M7 17L17 7M8 7h9v9",
  check: "M5 12l5 5 9-10",
  x: "M6 6l12 12M18 6L6 18",
  clock: "M12 21a9 9 0 100-18 9 9 0 000 18zM12 7v5l3 2",
  tool: "M14.7 6.3a4 4 0 00-5.4 5.4L3 18l3 3 6.3-6.3a4 4 0 005.4-5.4l-2.5 2.5-2.5-.5-.5-2.5z",
  shield: "M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6z",
  list: "M9 6h12M9 12h12M9 18h12M4 6h.01M4 12h.01M4 18h.01",
  trash: "M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3",
  power: "M12 3v9M17.7 6.3a8 8 0 11-11.4 0",
  keyboard: "M3 6h18v12H3zM7 10h.01M11 10h.01M15 10h.01M7 14h10",
  text: "M4 6h16M4 10h16M4 14h10M4 18h7",
  copy: "M9 9h11v11H9zM5 15H4V4h11v1",
  image: "M4 5h16v14H4zM4 16l5-5 4 4 2-2 5 5M15.5 9.5a1 1 0 100-.01",
  camera: "M4 8h4l2-3h4l2 3h4v11H4zM12 17a3.5 3.5 0 100-7 3.5 3.5 0 000 7z",
  clip: "M20 11l-8.5 8.5a5 5 0 01-7-7L13 4a3.5 3.5 0 015 5l-8.5 8.5a2 2 0 01-3-3L14 7",
  upload: "M12 16V4M7 9l5-5 5 5M4 20h16",
  download: "M12 4v12M7 11l5 5 5-5M4 20h16",
  branch: "M6 3v12M18 9a3 3 0 100-6 3 3 0 000 6zM6 21a3 3 0 100-6 3 3 0 000 6zM18 9a9 9 0 01-9 9",
} as const;
export type IconName = keyof typeof ICONS;

export function icon(name: IconName, className = "icon"): SVGSVGElement {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", className);
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", ICONS[name]);
  svg.appendChild(path);
  return svg;
}
