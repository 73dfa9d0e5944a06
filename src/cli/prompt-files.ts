/**
 * The content blocks of `switchboard prompt --image FILE --file FILE --link URI`: an image block,
 * an embedded file (text when it is UTF-8, else base64), a link. A file over PROMPT_BLOCK_MAX_BYTES
 * is refused on its size, before it is read.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { isUtf8 } from "node:buffer";
import { PROMPT_BLOCK_MAX_BYTES, SwitchboardError } from "../protocol/index.js";
import type { ContentBlock } from "../protocol/index.js";

/** Image types the agents' model APIs take (Anthropic, Gemini, OpenAI), by extension. */
const IMAGE_TYPES: Record<string, string> = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
};

/** Types of other files, by extension; a file not named here is text/plain when UTF-8, else application/octet-stream. */
const FILE_TYPES: Record<string, string> = {
  ...IMAGE_TYPES,
  ".pdf": "application/pdf",
  ".json": "application/json",
  ".md": "text/markdown",
  ".html": "text/html",
  ".csv": "text/csv",
};

/** The bytes of `file`, refused (PAYLOAD_TOO_LARGE) past PROMPT_BLOCK_MAX_BYTES before they are read. */
async function readBounded(file: string): Promise<Buffer> {
  const { size } = await stat(file);
  if (size > PROMPT_BLOCK_MAX_BYTES) {
    throw new SwitchboardError(
      "PAYLOAD_TOO_LARGE",
      `${file} is ${size} bytes; a prompt takes files of at most ${PROMPT_BLOCK_MAX_BYTES} (PROMPT_BLOCK_MAX_BYTES)`,
    );
  }
  return readFile(file);
}

export async function imageBlock(file: string): Promise<ContentBlock> {
  const mimeType = IMAGE_TYPES[path.extname(file).toLowerCase()];
  if (mimeType === undefined) {
    throw new SwitchboardError(
      "VALIDATION_FAILED",
      `${file}: --image takes ${Object.keys(IMAGE_TYPES).join(", ")} files; send other files with --file`,
    );
  }
  return { type: "image", mimeType, data: (await readBounded(file)).toString("base64") };
}

export async function fileBlock(file: string): Promise<ContentBlock> {
  const bytes = await readBounded(file);
  const uri = pathToFileURL(path.resolve(file)).href;
  const known = FILE_TYPES[path.extname(file).toLowerCase()];
  if (isUtf8(bytes) && (known === undefined || !known.startsWith("image/"))) {
    return { type: "resource", resource: { uri, mimeType: known ?? "text/plain", text: bytes.toString("utf8") } };
  }
  return {
    type: "resource",
    resource: { uri, mimeType: known ?? "application/octet-stream", blob: bytes.toString("base64") },
  };
}

export function linkBlock(uri: string): ContentBlock {
  const name = uri.replace(/\/+$/, "").split("/").at(-1) || uri;
  return { type: "resource_link", uri, name };
}
