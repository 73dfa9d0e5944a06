import { z } from "zod";
import { SwitchboardError } from "./errors.js";
import { LIMITS } from "./limits.js";

/**
 * A prompt as content: ACP content blocks (`text`, `image`, `audio`, `resource`,
 * `resource_link`), as `POST /v1/sessions/:id/prompt` and the `/v1/ws` `prompt` frame take them
 * in `content`, as `run.queued` carries them, and as the gateway sends them in `session/prompt`.
 * Pure: the SDK, the CLI and the web UI check a prompt with the same bounds.
 */

/** Decoded bytes one image, audio or binary resource block may carry: the Anthropic API's per-image limit. */
export const PROMPT_BLOCK_MAX_BYTES = 5 * 1024 * 1024;
/** Decoded bytes all the blocks of one prompt may carry together (what its `run.queued` event holds). */
export const PROMPT_CONTENT_MAX_BYTES = 8 * 1024 * 1024;
/** Blocks in one prompt. */
export const PROMPT_MAX_BLOCKS = 64;
/**
 * The body `POST /v1/sessions/:id/prompt` reads, whatever `limits.bodyBytes` says when that is
 * smaller: {@link PROMPT_CONTENT_MAX_BYTES} as base64 (4/3) and 1 MiB for text and JSON. A larger
 * body is refused (413) on its Content-Length before it is read, or once that much has arrived.
 */
export const PROMPT_BODY_MAX_BYTES = Math.ceil((PROMPT_CONTENT_MAX_BYTES * 4) / 3) + 1024 * 1024;

/** Base64 text, padded or not (what ACP's `data` and `blob` fields hold). */
const Base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, "must be base64");
const MimeType = z.string().min(1).max(255);
const Uri = z.string().min(1).max(8192);
const Meta = z.record(z.string(), z.unknown()).nullable().optional();
const Annotations = z.record(z.string(), z.unknown()).nullable().optional();

export const TextBlock = z.strictObject({
  type: z.literal("text"),
  text: z.string().max(LIMITS.STRING_BYTES),
  annotations: Annotations,
  _meta: Meta,
});
export const ImageBlock = z.strictObject({
  type: z.literal("image"),
  data: Base64,
  mimeType: MimeType,
  uri: Uri.nullable().optional(),
  annotations: Annotations,
  _meta: Meta,
});
export const AudioBlock = z.strictObject({
  type: z.literal("audio"),
  data: Base64,
  mimeType: MimeType,
  annotations: Annotations,
  _meta: Meta,
});
const TextResource = z.strictObject({
  uri: Uri,
  text: z.string().max(LIMITS.STRING_BYTES),
  mimeType: MimeType.nullable().optional(),
  _meta: Meta,
});
const BlobResource = z.strictObject({
  uri: Uri,
  blob: Base64,
  mimeType: MimeType.nullable().optional(),
  _meta: Meta,
});
/** A file's contents embedded in the prompt (needs the agent's `embeddedContext`). */
export const ResourceBlock = z.strictObject({
  type: z.literal("resource"),
  resource: z.union([TextResource, BlobResource]),
  annotations: Annotations,
  _meta: Meta,
});
/** A link the agent reads itself: every ACP agent takes these. */
export const ResourceLinkBlock = z.strictObject({
  type: z.literal("resource_link"),
  uri: Uri,
  name: z
    .string()
    .min(1)
    .max(LIMITS.NAME_CHARS * 5),
  title: z.string().max(1000).nullable().optional(),
  description: z.string().max(LIMITS.STRING_BYTES).nullable().optional(),
  mimeType: MimeType.nullable().optional(),
  size: z.number().int().nonnegative().nullable().optional(),
  annotations: Annotations,
  _meta: Meta,
});

export const ContentBlock = z.discriminatedUnion("type", [
  TextBlock,
  ImageBlock,
  AudioBlock,
  ResourceBlock,
  ResourceLinkBlock,
]);
export type ContentBlock = z.infer<typeof ContentBlock>;

export const PromptContent = z.array(ContentBlock).min(1).max(PROMPT_MAX_BLOCKS);
export type PromptContent = z.infer<typeof PromptContent>;

/** What an agent takes in a prompt beyond text and links (ACP `promptCapabilities`). */
export interface PromptCapabilities {
  image: boolean;
  audio: boolean;
  embeddedContext: boolean;
}

/** What an agent without ACP (echo, command) takes: text and links only. */
export const TEXT_ONLY: PromptCapabilities = { image: false, audio: false, embeddedContext: false };

/** The capability a block needs, or undefined for the baseline every agent takes (text, resource_link). */
export function neededCapability(block: ContentBlock): keyof PromptCapabilities | undefined {
  switch (block.type) {
    case "text":
    case "resource_link":
      return undefined;
    case "image":
      return "image";
    case "audio":
      return "audio";
    case "resource":
      return "embeddedContext";
  }
}

/** Whether any block needs more than the baseline (so the agent's capabilities must be known). */
export function needsCapabilities(content: readonly ContentBlock[]): boolean {
  return content.some((b) => neededCapability(b) !== undefined);
}

/** Decoded bytes of base64 text (validated as base64 by the schema). */
function decodedBytes(base64: string): number {
  const padding = base64.endsWith("==") ? 2 : base64.endsWith("=") ? 1 : 0;
  return Math.floor((base64.length * 3) / 4) - padding;
}

/** The bytes a block carries: decoded for base64 payloads, UTF-16 units for text. */
export function blockBytes(block: ContentBlock): number {
  switch (block.type) {
    case "text":
      return block.text.length;
    case "image":
    case "audio":
      return decodedBytes(block.data);
    case "resource":
      return "blob" in block.resource ? decodedBytes(block.resource.blob) : block.resource.text.length;
    case "resource_link":
      return 0;
  }
}

/**
 * Throws PAYLOAD_TOO_LARGE when a block passes {@link PROMPT_BLOCK_MAX_BYTES} or the prompt
 * {@link PROMPT_CONTENT_MAX_BYTES}; the message names the block and the limit.
 */
export function checkContentSize(content: readonly ContentBlock[]): void {
  let total = 0;
  content.forEach((block, i) => {
    const bytes = blockBytes(block);
    if (block.type !== "text" && bytes > PROMPT_BLOCK_MAX_BYTES) {
      throw new SwitchboardError(
        "PAYLOAD_TOO_LARGE",
        `content[${i}] (${block.type}) is ${bytes} bytes; one block may carry at most ${PROMPT_BLOCK_MAX_BYTES} (PROMPT_BLOCK_MAX_BYTES): send a smaller or compressed file`,
      );
    }
    total += bytes;
  });
  if (total > PROMPT_CONTENT_MAX_BYTES) {
    throw new SwitchboardError(
      "PAYLOAD_TOO_LARGE",
      `the prompt's content is ${total} bytes; one prompt may carry at most ${PROMPT_CONTENT_MAX_BYTES} (PROMPT_CONTENT_MAX_BYTES): send the files in several prompts`,
    );
  }
}

const CAPABILITY_NAMES: Record<keyof PromptCapabilities, string> = {
  image: "images",
  audio: "audio",
  embeddedContext: "embedded files (resource)",
};

const BLOCK_NAMES: Record<ContentBlock["type"], string> = {
  text: "text",
  resource_link: "a resource link",
  image: "an image",
  audio: "audio",
  resource: "an embedded resource",
};

/** What an agent with `caps` takes, in words: "text, resource links and images". */
export function describeAccepted(caps: PromptCapabilities): string {
  const kinds = [
    "text",
    "resource links",
    ...(Object.keys(CAPABILITY_NAMES) as Array<keyof PromptCapabilities>)
      .filter((k) => caps[k])
      .map((k) => CAPABILITY_NAMES[k]),
  ];
  return kinds.length === 2
    ? `${kinds[0]} and ${kinds[1]} only`
    : `${kinds.slice(0, -1).join(", ")} and ${kinds.at(-1)}`;
}

/**
 * UNSUPPORTED_CONTENT naming the first block `caps` does not cover and what the agent takes,
 * or undefined when it takes all of `content`.
 */
export function unsupportedContent(
  content: readonly ContentBlock[],
  caps: PromptCapabilities,
  agent: string,
): SwitchboardError | undefined {
  const i = content.findIndex((b) => {
    const need = neededCapability(b);
    return need !== undefined && !caps[need];
  });
  if (i < 0) return undefined;
  const block = content[i]!;
  return new SwitchboardError(
    "UNSUPPORTED_CONTENT",
    `content[${i}] is ${BLOCK_NAMES[block.type]}, which ${agent} does not take in a prompt: it takes ${describeAccepted(caps)} (its ACP promptCapabilities); nothing was sent to it`,
  );
}

/**
 * The prompt as text: the text blocks, and each link's URI, one after another with a blank line
 * between. What `run.queued`'s `text` says, and what an agent without ACP is given.
 */
export function promptText(content: readonly ContentBlock[]): string {
  const parts: string[] = [];
  for (const block of content) {
    if (block.type === "text") parts.push(block.text);
    else if (block.type === "resource_link") parts.push(block.uri);
  }
  return parts.join("\n\n");
}

/**
 * What a client sends as a prompt: `text`, `content` blocks, or both (`text` goes first).
 * @example
 * await client.prompt(id, { text: "what is wrong here?", content: [{ type: "image", mimeType: "image/png", data }] });
 */
export interface PromptRequest {
  text?: string;
  content?: ContentBlock[];
}

/** A prompt as the gateway queues it: its text (for lists and text-only agents) and, when sent as content, its blocks. */
export interface PromptInput {
  text: string;
  content?: ContentBlock[];
}

/**
 * The prompt a body or frame asked for: `text` alone, or `content` (after `text`, when both are
 * given, as its first block). Throws PAYLOAD_TOO_LARGE past the content limits, VALIDATION_FAILED
 * when it has no text at all and no other block.
 */
export function promptInput(body: { text?: string | undefined; content?: ContentBlock[] | undefined }): PromptInput {
  if (body.content === undefined) {
    if (body.text === undefined || body.text.length === 0) {
      throw new SwitchboardError("VALIDATION_FAILED", "a prompt needs `text` or `content`");
    }
    return { text: body.text };
  }
  const content: ContentBlock[] =
    body.text !== undefined && body.text.length > 0
      ? [{ type: "text", text: body.text }, ...body.content]
      : body.content;
  checkContentSize(content);
  if (content.every((b) => b.type === "text" && b.text.length === 0)) {
    throw new SwitchboardError("VALIDATION_FAILED", "the prompt's content is empty: give some text or another block");
  }
  return { text: promptText(content), content };
}
