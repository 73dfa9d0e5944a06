/**
 * Why a session's screen is quarantined: no longer kept (`SCREEN_UNAVAILABLE` until the gateway
 * restarts), because its output broke it. `emulator_error`: xterm threw while parsing it (the
 * thread goes on without it); `out_of_memory`: the screen thread ran out of heap while parsing it;
 * `thread_stopped`: the thread stopped otherwise while parsing it. In the last two the thread is
 * started again once, without that session's output: the others are rebuilt from checkpoints.
 */
export const SCREEN_QUARANTINE_REASONS = ["emulator_error", "out_of_memory", "thread_stopped"] as const;

export type ScreenQuarantineReason = (typeof SCREEN_QUARANTINE_REASONS)[number];
