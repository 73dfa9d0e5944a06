/** The frames of `/v1/ws` encoded once for every connection, and the `ref` and session a refused frame names. */
import type { FramePiece } from "../../log/json-text.js";
import { OutputEntry } from "../../log/output-entry.js";
import type { LogEntry } from "../../log/types.js";
import { ClientFrame, appendFrame, isRef } from "../../protocol/index.js";
import type { Ref, ServerFrame } from "../../protocol/index.js";
import { OWN_FRAME_BYTES, jsonFramePooled, textFrame } from "./outbound-frames.js";
import type { Frame } from "./outbound-frames.js";
import { ClientFrameCheck } from "./ws-common.js";
import type { FrameCodec } from "./connection.js";

/** The frames of `/v1/ws` (docs/protocol.md): `op` frames; a refused one's error names its `ref` and session. */
export const multiplexCodec: FrameCodec<ClientFrame, ServerFrame> = {
  endpoint: "multiplex",
  check: new ClientFrameCheck(ClientFrame, "op", appendFrame),
  error: (fields) => ({ op: "error", ...fields }),
  refused: (checked) => {
    const ref = refOf(checked.raw);
    const session = sessionOf(checked.raw);
    return {
      op: "error",
      ...(ref !== undefined ? { ref } : {}),
      ...(session !== undefined ? { session } : {}),
      code: checked.code,
      message: checked.message,
    };
  },
};

export function refOf(raw: unknown): Ref | undefined {
  if (raw === null || typeof raw !== "object") return undefined;
  const ref = (raw as { ref?: unknown }).ref;
  return isRef(ref) ? ref : undefined;
}

/**
 * The session a refused frame names, if it names one a session id could be: its error says which
 * session, as the errors of frames that passed the schema do — without it a client that sends
 * keystrokes to several sessions without `ref` could not tell whose input was refused.
 */
export function sessionOf(raw: unknown): string | undefined {
  if (raw === null || typeof raw !== "object") return undefined;
  const session = (raw as { session?: unknown }).session;
  return typeof session === "string" && session.length > 0 && session.length <= 128 ? session : undefined;
}

/** An `event` frame, encoded once for every connection that gets it (output from its bytes: {@link OutputEntry.jsonUtf8}). */
export function eventFrame(session: string, entry: LogEntry): Buffer {
  const before = `{"op":"event","session":${JSON.stringify(session)},"event":`;
  return entry instanceof OutputEntry
    ? jsonFramePooled(entry.jsonPieces(before, "}"))
    : textFrame(`${before}${entry.json}}`);
}

/**
 * Frames of a run of one session's events (a catch-up batch, or live events held while the
 * socket was busy): consecutive events share an `events` frame, except that output of
 * {@link OWN_FRAME_BYTES} or more gets an `event` frame of its own — a flood's 64 KiB pieces
 * are then each written in a reused buffer (see FrameMemory) instead of a new buffer of
 * several per lagging connection.
 */
export function batchFrames(session: string, entries: readonly LogEntry[]): Frame[] {
  const frames: Frame[] = [];
  let from = 0;
  entries.forEach((e, i) => {
    if (!(e instanceof OutputEntry) || e.bytes.length < OWN_FRAME_BYTES) return;
    if (i > from) frames.push(eventsFrame(session, entries.slice(from, i)));
    frames.push(eventFrame(session, e));
    from = i + 1;
  });
  if (from < entries.length) frames.push(eventsFrame(session, from === 0 ? entries : entries.slice(from)));
  return frames;
}

/** An `events` frame of consecutive events. */
export function eventsFrame(session: string, entries: readonly LogEntry[]): Frame {
  const before = `{"op":"events","session":${JSON.stringify(session)},"events":[`;
  if (!entries.some((e) => e instanceof OutputEntry)) return `${before}${entries.map((e) => e.json).join(",")}]}`;
  // Written once into one buffer, output from its bytes (see OutputEntry.jsonPieces).
  const pieces: FramePiece[] = [before];
  entries.forEach((e, i) => {
    const comma = i === 0 ? "" : ",";
    if (e instanceof OutputEntry) pieces.push(...e.jsonPieces(comma, ""));
    else pieces.push(`${comma}${e.json}`);
  });
  pieces.push("]}");
  return jsonFramePooled(pieces);
}
