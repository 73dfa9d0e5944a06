import { blockBytes } from "../../src/protocol/index.js";
import type { ContentBlock } from "../../src/protocol/index.js";
import { byteSize } from "./disk-usage.js";
import { h, icon } from "./dom.js";

/**
 * The images and files a user's prompt carried (its `run.queued` event's `content`), under its
 * text: an image as a thumbnail that opens full size on a click or tap, any other block as its
 * name and size. The image is shown from the logged bytes as a `data:` URL (the page's CSP allows
 * those for images, and an image cannot run script); a type that is not an image's is shown as a
 * file.
 */

/** An image type the page shows from its bytes (not `image/svg+xml`: kept to the raster kinds). */
const SHOWN_IMAGE = /^image\/(png|jpe?g|gif|webp|avif|bmp)$/i;

export function renderAttachments(blocks: readonly ContentBlock[]): HTMLElement | null {
  if (blocks.length === 0) return null;
  return h(
    "ul",
    { class: "msg-attachments", "data-testid": "msg-attachments" },
    blocks.map((block) => h("li", null, renderBlock(block))),
  );
}

function renderBlock(block: ContentBlock): HTMLElement {
  if (block.type === "image" && SHOWN_IMAGE.test(block.mimeType)) {
    return h(
      "button",
      {
        class: "msg-image",
        type: "button",
        title: "Open the image",
        "aria-label": `Image (${block.mimeType}, ${byteSize(blockBytes(block))}): open`,
        onclick: (event) => showImage((event.currentTarget as HTMLElement).querySelector("img")?.src ?? ""),
      },
      h("img", { src: `data:${block.mimeType};base64,${block.data}`, alt: "", loading: "lazy" }),
    );
  }
  return h(
    "span",
    { class: "msg-file", "data-testid": "msg-file" },
    icon(block.type === "image" ? "image" : "text"),
    h("span", { class: "msg-file-name", dir: "auto" }, blockName(block)),
    h("span", { class: "msg-file-size" }, byteSize(blockBytes(block))),
  );
}

/** What a block is called: a resource's file name (the end of its URI), else its kind and type. */
function blockName(block: ContentBlock): string {
  switch (block.type) {
    case "resource":
      return lastSegment(block.resource.uri);
    case "resource_link":
      return block.title ?? block.name;
    case "image":
    case "audio":
      return `${block.type} (${block.mimeType})`;
    case "text":
      return "text";
  }
}

function lastSegment(uri: string): string {
  const segment = uri.split(/[/\\]/).filter(Boolean).at(-1) ?? uri;
  try {
    return decodeURIComponent(segment);
  } catch (error) {
    // URIError: a stray % in the name; shown as written.
    if (!(error instanceof URIError)) throw error;
    return segment;
  }
}

/** The image full size over the page, until a click, a tap or Escape closes it. */
function showImage(src: string): void {
  if (src === "") return;
  const dialog = h(
    "dialog",
    { class: "image-viewer", "data-testid": "image-viewer", "aria-label": "Image" },
    h("img", { src, alt: "" }),
    h("button", { class: "btn btn-icon image-close", type: "button", "aria-label": "Close" }, icon("x")),
  );
  dialog.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => dialog.remove());
  document.body.appendChild(dialog);
  dialog.showModal();
}
