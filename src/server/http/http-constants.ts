/*
 * Names the HTTP server, the routes and the reload share. A leaf: it imports nothing, so the routes
 * and the server it dispatches to never import each other for a constant.
 */

/**
 * On an answer whose events the log could not write yet (a full disk): the request was applied,
 * and its events are written once the disk recovers. Its value is the store's error code.
 */
export const LOG_PENDING_HEADER = "switchboard-log-pending";

/** How HTTP callers hold a control lease: by principal (`http:token:alice`), across their requests. */
export const HTTP_HOLDER_PREFIX = "http:";
