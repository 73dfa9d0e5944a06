import { LIMITS, ScreenFormat, SwitchboardError } from "../../protocol/index.js";
import { currentCopy, sessionFor } from "../identity/access.js";
import type { GatewayCore } from "../context.js";
import { intParam, queryParam, sendJson } from "../http/http.js";
import type { Router } from "../http/router.js";

/** The screen of a PTY session: what a terminal showing all its output shows now (docs/protocol.md, "Screen"). */
export function screenRoutes(router: Router, core: GatewayCore): void {
  router.add("GET", "/v1/sessions/:id/screen", async (ctx) => {
    const session = sessionFor(core.sessions, ctx.identity, ctx.params["id"]!, "see");
    await currentCopy(core.sessions, session);
    // A held session restored at start and not taken over yet is taken over first (adoption-queue.ts).
    session.demand();
    const format = ScreenFormat.safeParse(queryParam(ctx.url, "format") ?? "text");
    if (!format.success) throw new SwitchboardError("BAD_REQUEST", "format must be text or ansi");
    const cols = intParam(ctx.url, "cols", 0, LIMITS.MAX_COLS, 1);
    const rows = intParam(ctx.url, "rows", 0, LIMITS.MAX_ROWS, 1);
    // What the screen thread has not parsed yet is read from the log a page per catch-up turn.
    const screen = await core.screens.screen(
      session,
      { format: format.data, cols: cols === 0 ? undefined : cols, rows: rows === 0 ? undefined : rows },
      (bytes) => core.catchUp.scheduler.turn(bytes),
    );
    sendJson(ctx.res, 200, screen);
  });
}
