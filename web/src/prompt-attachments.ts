import {
  PROMPT_BLOCK_MAX_BYTES,
  PROMPT_CONTENT_MAX_BYTES,
  PROMPT_MAX_BLOCKS,
  neededCapability,
} from "../../src/protocol/index.js";
import type { ContentBlock, PromptCapabilities } from "../../src/protocol/index.js";
import { h, icon } from "./dom.js";
import { byteSize as fileSize } from "./disk-usage.js";

/**
 * The files a prompt carries, before it is sent: pasted, dropped or picked, shown as chips (an
 * image's thumbnail, a file's name and size) each with a remove button, and turned into ACP
 * content blocks — an image as `image` (base64 with its type), audio as `audio`, a text file as a
 * `resource` with its text, any other file as a `resource` with its bytes as `blob`. What the
 * agent does not take (its `promptCapabilities`, when known) is refused here with a reason, as
 * are files past the gateway's bounds (PROMPT_BLOCK_MAX_BYTES, PROMPT_CONTENT_MAX_BYTES).
 */

/** File types read as text (a `resource` with `text`), beyond `text/*`. */
const TEXT_TYPES = /^application\/(json|xml|javascript|x-sh|x-yaml|yaml|toml|x-toml|sql|graphql|ld\+json)$/;
/** Names read as text whatever type the browser gives them (often none). */
const TEXT_NAMES =
  /\.(md|txt|json|ya?ml|toml|ini|cfg|conf|csv|tsv|log|xml|html?|css|s[ac]ss|[cm]?[jt]sx?|py|rb|go|rs|java|kt|swift|c|h|cc|cpp|hpp|cs|php|sh|bash|zsh|sql|lua|pl|r|dart|vue|svelte|diff|patch|env|gitignore|dockerfile|makefile)$/i;

/** One attached file, read. */
export interface Attachment {
  name: string;
  size: number;
  block: ContentBlock;
  /** A data URL to show an image by (the page's CSP allows `data:` images, not `blob:`). */
  preview: string | null;
}

/** The block `file` becomes, by its type and name. */
export async function attachmentOf(file: File): Promise<Attachment> {
  const type = file.type || "application/octet-stream";
  const uri = `file:///${encodeURIComponent(file.name || "attachment")}`;
  let block: ContentBlock;
  let preview: string | null = null;
  if (type.startsWith("image/")) {
    const data = await base64(file);
    block = { type: "image", mimeType: type, data };
    preview = `data:${type};base64,${data}`;
  } else if (type.startsWith("audio/")) {
    block = { type: "audio", mimeType: type, data: await base64(file) };
  } else if (type.startsWith("text/") || TEXT_TYPES.test(type) || TEXT_NAMES.test(file.name)) {
    const mimeType = file.type || "text/plain";
    block = { type: "resource", resource: { uri, mimeType, text: await file.text() } };
  } else {
    block = { type: "resource", resource: { uri, mimeType: type, blob: await base64(file) } };
  }
  return { name: file.name || "attachment", size: file.size, block, preview };
}

/** Why `file` cannot go with the prompt, or null when it can. */
export function refusal(
  file: File,
  caps: PromptCapabilities | undefined,
  attached: readonly Attachment[],
): string | null {
  const name = file.name || "the pasted file";
  if (attached.length + 1 >= PROMPT_MAX_BLOCKS)
    return `${name}: a prompt carries at most ${PROMPT_MAX_BLOCKS - 1} files`;
  if (file.size > PROMPT_BLOCK_MAX_BYTES)
    return `${name} is ${fileSize(file.size)}; one file may be at most ${fileSize(PROMPT_BLOCK_MAX_BYTES)}`;
  const total = attached.reduce((sum, a) => sum + a.size, 0) + file.size;
  if (total > PROMPT_CONTENT_MAX_BYTES)
    return `${name} would make the prompt ${fileSize(total)}; one prompt may carry at most ${fileSize(PROMPT_CONTENT_MAX_BYTES)}`;
  if (caps === undefined) return null; // the gateway checks once the agent said
  const kind = file.type.startsWith("image/") ? "image" : file.type.startsWith("audio/") ? "audio" : "embeddedContext";
  if (caps[kind]) return null;
  const what = kind === "image" ? "images" : kind === "audio" ? "audio" : "files";
  return `${name}: this agent does not take ${what} in a prompt`;
}

/** Whether an agent with `caps` takes any attachment at all (unknown: it may). */
export function takesFiles(caps: PromptCapabilities | undefined): boolean {
  return caps === undefined || caps.image || caps.audio || caps.embeddedContext;
}

/** Whether `block` needs nothing `caps` lacks. */
export function allowed(block: ContentBlock, caps: PromptCapabilities | undefined): boolean {
  const need = neededCapability(block);
  return caps === undefined || need === undefined || caps[need];
}

/** The chip of an attachment in the composer: thumbnail or file icon, name, size, remove. */
export function attachmentChip(attachment: Attachment, remove: () => void): HTMLElement {
  return h(
    "li",
    { class: "attachment", "data-testid": "attachment", title: `${attachment.name} · ${fileSize(attachment.size)}` },
    attachment.preview !== null
      ? h("img", { class: "attachment-thumb", src: attachment.preview, alt: "" })
      : h("span", { class: "attachment-icon" }, icon("text")),
    h("span", { class: "attachment-name", dir: "auto" }, attachment.name),
    h("span", { class: "attachment-size" }, fileSize(attachment.size)),
    h(
      "button",
      {
        class: "attachment-remove",
        type: "button",
        "aria-label": `Remove ${attachment.name}`,
        title: "Remove",
        onclick: remove,
      },
      icon("x"),
    ),
  );
}

/** A file's bytes as base64 (what ACP's `data` and `blob` hold). */
async function base64(file: Blob): Promise<string> {
  const url = await new Promise<string>((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error ?? new Error("the file could not be read"));
    reader.readAsDataURL(file);
  });
  return url.slice(url.indexOf(",") + 1);
}
