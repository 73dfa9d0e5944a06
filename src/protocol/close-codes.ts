/**
 * WebSocket close codes, in a module of their own without schemas: the CLI's client reads them
 * without loading zod (docs/cli.md, "Start time").
 */
/** WebSocket close codes the gateway uses. */
export const CLOSE_CODES = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL: 1011,
  /** The gateway stops while sessions keep running (under holders, or streams): reconnect and resume. */
  SERVICE_RESTART: 1012,
  /** `/ws/session`: control was taken over by someone else; do not reconnect into a fight. */
  CONTROL_LOST: 4001,
  /** The session was deleted or its log reset. */
  SESSION_GONE: 4004,
} as const;
