import type { GatewayCore } from "../context.js";
import type { Router } from "../http/router.js";
import { castRoutes } from "./cast.js";
import { changeRoutes } from "./changes.js";
import { deviceRoutes } from "./devices.js";
import { diskRoutes } from "./disk.js";
import { fileRoutes } from "./files.js";
import { messageRoutes } from "./messages.js";
import { miscRoutes } from "./misc.js";
import { pluginRoutes } from "./plugins.js";
import { pushRoutes } from "./push.js";
import { screenRoutes } from "./screen.js";
import { searchRoutes } from "./search.js";
import { sessionRoutes } from "./sessions.js";
import { turnRoutes } from "./turns.js";
import { shareRoutes } from "./shares.js";
import { streamRoutes } from "./stream.js";
import { worktreeRoutes } from "./worktree.js";

/** Registers every authenticated HTTP route. */
export function registerRoutes(router: Router, core: GatewayCore): void {
  sessionRoutes(router, core);
  shareRoutes(router, core);
  screenRoutes(router, core);
  searchRoutes(router, core);
  changeRoutes(router, core);
  turnRoutes(router, core);
  worktreeRoutes(router, core);
  fileRoutes(router, core);
  streamRoutes(router, core);
  castRoutes(router, core);
  diskRoutes(router, core);
  messageRoutes(router, core);
  pluginRoutes(router, core);
  miscRoutes(router, core);
  deviceRoutes(router, core);
  pushRoutes(router, core);
}
