/**
 * A PTY flood's pieces are taken from pools and given back once the log and every viewer are
 * done with them (src/core/buffer-pool.ts): full 64 KiB ones of a fast flood, and smaller ones
 * of a slower one. Viewers that stop reading while far more than the log's hot ring passes by,
 * and read again after the session ended, still get every byte exactly, and so do the ones
 * that kept reading.
 */
import WebSocket from "ws";
import { describe, expect, it, onTestFinished } from "vitest";
import { piecePool, piecePools } from "../../src/core/buffer-pool.js";
import { HOT_RING_MAX_BYTES } from "../../src/log/hot-ring.js";
import { readBinaryOutput } from "../../src/protocol/index.js";
import type { Gateway } from "../../src/server/gateway.js";
import { authHeaders, decodeData, opened, rawSocket, startTestGateway, wsUrl } from "./helpers.js";
import type { Defer } from "./helpers.js";
import { createSession } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";

const defer: Defer = (fn) => onTestFinished(async () => void (await fn()));

/** `seq 1 LINES` in a PTY: every line "<n>\r\n", about 17 MB — four hot rings and more. */
const LINES = 2_000_000;
/** The slower flood's lines: about 12 MB, three hot rings. */
const PACED_LINES = 1_500_000;

function expectedOutput(lines: number): Buffer {
  const parts: string[] = [];
  for (let n = 1; n <= lines; n++) parts.push(`${n}\r\n`);
  return Buffer.from(parts.join(""), "latin1");
}

/**
 * The same lines, written 3–50 KB at a time with 5 ms between writes: slower than a full piece
 * per interval, so the pieces are of every size (copied into pooled buffers of their size).
 */
const PACED_SCRIPT = `
let n = 1, k = 0;
const sizes = [3000, 7000, 12000, 25000, 50000];
(function tick() {
  let s = "";
  const target = sizes[k++ % sizes.length];
  while (s.length < target && n <= ${PACED_LINES}) s += n++ + "\\n";
  process.stdout.write(s);
  if (n <= ${PACED_LINES}) setTimeout(tick, 5);
})();`;

const FLOODS = [
  { name: "a fast flood (full pieces)", command: ["sh", "-c", "sleep 0.3; seq 1 " + LINES], lines: LINES },
  {
    name: "a slower flood (pieces of every size)",
    command: ["sh", "-c", `sleep 0.3; exec "$0" -e "$1"`, process.execPath, PACED_SCRIPT],
    lines: PACED_LINES,
  },
];

/** How many buffers were reused, in all the piece pools and in those smaller than a full piece. */
function piecesReused(): { all: number; smaller: number } {
  const smaller = piecePools.pools.filter((p) => p !== piecePool).reduce((n, p) => n + p.reused, 0);
  return { all: smaller + piecePool.reused, smaller };
}

/** A /ws/session viewer that collects the output from byte 0 and checks that every frame continues it. */
class Viewer {
  readonly chunks: Buffer[] = [];
  readonly errors: string[] = [];
  position = 0;
  exited = false;
  readonly ws: WebSocket;

  constructor(gw: Gateway, id: string, binary: boolean) {
    this.ws = new WebSocket(wsUrl(gw, `/ws/session/${id}?since=0${binary ? "&output=binary" : ""}`), {
      headers: authHeaders(gw),
    });
    defer(() => this.ws.terminate());
    this.ws.on("message", (raw, isBinary) => {
      const data = raw as Buffer;
      if (isBinary) {
        const out = readBinaryOutput(data);
        if (out === null) this.errors.push("a binary frame that is not output");
        else this.add(out.offset, Buffer.from(out.bytes), out.kind);
        return;
      }
      const f = JSON.parse(data.toString()) as { type: string; data?: string; enc?: string; offset?: number };
      if (f.type === "replay" || f.type === "stdout") {
        const bytes = decodeData(f.data!, f.enc);
        // A JSON replay frame's offset is where it ends; a stdout frame's where it starts.
        this.add(f.type === "replay" ? f.offset! - bytes.length : f.offset!, bytes, f.type);
      } else if (f.type === "exit") {
        this.exited = true;
      } else if (f.type !== "connected") {
        this.errors.push(`unexpected ${data.toString().slice(0, 200)}`);
      }
    });
  }

  private add(offset: number, bytes: Buffer, kind: string): void {
    if (offset !== this.position) this.errors.push(`${kind} at ${offset} with ${this.position} bytes`);
    this.chunks.push(bytes);
    this.position = offset + bytes.length;
  }

  output(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

describe("reused output buffers", () => {
  it.each(FLOODS)(
    "viewers that stop reading through $name much larger than the hot ring still get every byte",
    async ({ command, lines }) => {
      const gw = await startTestGateway(defer);
      const reusedBefore = piecesReused();
      const { id } = await createSession(gw, { command, pty: true });
      const stalled = [new Viewer(gw, id, true), new Viewer(gw, id, false)];
      const reading = new Viewer(gw, id, false);
      // The stalled ones stop reading as soon as they are connected: what is queued for them
      // (events held while the socket is busy) outlives its place in the hot ring.
      for (const v of stalled) v.ws.once("upgrade", (res) => res.socket.pause());
      await Promise.all([...stalled, reading].map((v) => opened(v.ws)));
      await gw.core.sessions.get(id)!.ended();
      await waitFor(() => reading.exited, 30_000, "the reading viewer's exit");
      for (const v of stalled) rawSocket(v.ws).resume();
      await waitFor(() => stalled.every((v) => v.exited), 30_000, "the stalled viewers' exit");

      const expected = expectedOutput(lines);
      expect(expected.length).toBeGreaterThan(2.5 * HOT_RING_MAX_BYTES);
      for (const v of [...stalled, reading]) {
        expect(v.errors).toEqual([]);
        const got = v.output();
        expect(got.length).toBe(expected.length);
        expect(got.equals(expected)).toBe(true);
      }
      // The flood's pieces went back to the pool and were taken again (fewer than without the
      // stalled viewers: what is held for them, up to a budget each, is not back yet).
      const reused = piecesReused();
      expect(reused.all - reusedBefore.all).toBeGreaterThan(32);
      if (lines === PACED_LINES) expect(reused.smaller - reusedBefore.smaller).toBeGreaterThan(32);
    },
    90_000,
  );
});
