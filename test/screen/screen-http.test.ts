import headless from "@xterm/headless";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { SCREEN_CHECKPOINT_BYTES } from "../../src/screen/screen-service.js";
import { TEST_TOKEN, api, testGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait-for.js";

const { Terminal } = headless;

/** A TUI's last frame after much earlier output: scrolled lines, then the alternate screen with a title. */
const TUI = [
  "seq 1 3000",
  "printf '\\033]2;the-editor\\007\\033[?1049h\\033[2J\\033[5;10Hcentre \\033[31mred\\033[0m \\346\\274\\242\\345\\255\\227'",
  "printf '\\033[24;1H-- INSERT --\\033[3;4H'",
  "sleep 30",
].join("; ");

/** The text of the screen of a terminal of `cols`×`rows` that saw all of `bytes` (trailing blanks trimmed, as tmux captures). */
async function screenOf(bytes: Uint8Array, cols: number, rows: number): Promise<string> {
  const term = new Terminal({ cols, rows, allowProposedApi: true });
  await new Promise<void>((resolve) => term.write(bytes, resolve));
  const buffer = term.buffer.active;
  const lines: string[] = [];
  for (let y = 0; y < rows; y++)
    lines.push(
      buffer
        .getLine(buffer.viewportY + y)!
        .translateToString(true)
        .trimEnd(),
    );
  term.dispose();
  while (lines.at(-1) === "") lines.pop();
  return lines.join("\n");
}

async function startTui(http: ReturnType<typeof api>): Promise<string> {
  const { json } = await http.post("/v1/sessions", { command: ["sh", "-c", TUI], pty: true, cols: 80, rows: 24 });
  await waitFor(async () => (await http.get(`/v1/sessions/${json.id}/output`)).text.includes("INSERT"), 10_000, "TUI");
  return json.id as string;
}

describe("GET /v1/sessions/:id/screen", () => {
  it("shows the screen a terminal that saw all the output shows, with the offset it reflects", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const id = await startTui(http);
    const out = await fetch(`${gw.url}/v1/sessions/${id}/output`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    const bytes = new Uint8Array(await out.arrayBuffer());
    const r = await http.get(`/v1/sessions/${id}/screen`);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ alternate: true, title: "the-editor", cols: 80, rows: 24, offset: bytes.length });
    expect(r.json.cursor).toEqual({ x: 3, y: 2, visible: true });
    expect(r.json.screen).toBe(await screenOf(bytes, 80, 24));
    expect(r.json.screen.split("\n")[4]).toBe("         centre red 漢字");
    // ANSI at the PTY's size redraws it: written into a fresh terminal it shows the same text.
    const ansi = await http.get(`/v1/sessions/${id}/screen?format=ansi`);
    expect(await screenOf(Buffer.from(ansi.json.screen), 80, 24)).toBe(r.json.screen);
  });

  it("shows a viewer of another size the screen clipped or padded, not rewrapped", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const id = await startTui(http);
    const full = (await http.get(`/v1/sessions/${id}/screen`)).json;
    // 21 columns cut 漢 (columns 20-21) in half at the right edge; 6 rows around the cursor (row 2): rows 0-5.
    const small = (await http.get(`/v1/sessions/${id}/screen?cols=21&rows=6`)).json;
    expect(small).toMatchObject({ cols: 21, rows: 6, cursor: { x: 3, y: 2, visible: true } });
    expect(small.screen.split("\n")).toEqual(["", "", "", "", "         centre red"]);
    const ansi = (await http.get(`/v1/sessions/${id}/screen?cols=21&rows=6&format=ansi`)).json;
    expect(await screenOf(Buffer.from(ansi.screen), 21, 6)).toBe(small.screen);
    // A bigger viewer sees the whole screen, padded.
    const big = (await http.get(`/v1/sessions/${id}/screen?cols=120&rows=40`)).json;
    expect(big.screen).toBe(full.screen);
    expect(big.cursor).toEqual(full.cursor);
  });

  it("refuses sessions without a PTY and sizes out of range", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const { json } = await http.post("/v1/sessions", { command: ["sh", "-c", "echo hi"] });
    const r = await http.get(`/v1/sessions/${json.id}/screen`);
    expect(r.status).toBe(409);
    expect(r.json.error.code).toBe("WRONG_SESSION_KIND");
    const id = await startTui(http);
    for (const q of ["cols=0", "rows=1001", "format=html"]) {
      const bad = await http.get(`/v1/sessions/${id}/screen?${q}`);
      expect(bad.status, q).toBe(400);
      expect(bad.json.error.code, q).toBe("BAD_REQUEST");
    }
    expect((await api(gw.url, "wrong-token-0123456789abcdef0123").get(`/v1/sessions/${id}/screen`)).status).toBe(401);
  });

  it("serves the screen of a session lost in a restart from the log", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const id = await startTui(http);
    const before = (await http.get(`/v1/sessions/${id}/screen`)).json;
    await gw.close();
    const again = await testGateway({ dataDir: gw.dataDir });
    const after = await api(again.url).get(`/v1/sessions/${id}/screen`);
    expect(after.status).toBe(200);
    expect(after.json).toEqual(before);
  });

  it("saves a checkpoint every 4 MiB of output parsed, and a restart goes on from it to the same screen", async () => {
    const gw = await testGateway();
    const http = api(gw.url);
    const script = "yes 'the quick brown fox' | head -c 6000000; printf '\\033[?1049h\\033[2;2Hdone'; sleep 30";
    const { json } = await http.post("/v1/sessions", { command: ["sh", "-c", script], pty: true, cols: 80, rows: 24 });
    await waitFor(
      async () => (await http.get(`/v1/sessions/${json.id}/screen`)).json.screen.includes("done"),
      60_000,
      "done",
    );
    const before = (await http.get(`/v1/sessions/${json.id}/screen`)).json;
    // Checkpoints are saved by the screen thread after it parsed the output, so wait for the row.
    const checkpointOf = (): { offset: number } | undefined => {
      const db = new Database(join(gw.dataDir, "screens.db"), { readonly: true });
      try {
        return db
          .prepare("SELECT seq, output_offset AS offset FROM screen_checkpoints WHERE session_id = ?")
          .get(json.id) as { offset: number } | undefined;
      } finally {
        db.close();
      }
    };
    await waitFor(async () => (checkpointOf()?.offset ?? 0) >= SCREEN_CHECKPOINT_BYTES, 30_000, "a checkpoint");
    const saved = checkpointOf()!;
    // The PTY turns each \n into \r\n: about 6.25 MB of output, past one checkpoint's worth.
    expect(saved.offset).toBeGreaterThanOrEqual(SCREEN_CHECKPOINT_BYTES);
    expect(saved.offset).toBeLessThanOrEqual(before.offset);
    await gw.close();
    const again = await testGateway({ dataDir: gw.dataDir });
    expect((await api(again.url).get(`/v1/sessions/${json.id}/screen`)).json).toEqual(before);
  });
});
