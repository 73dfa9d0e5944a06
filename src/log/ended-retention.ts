/** How long ended sessions (record and log) are kept: `retention.endedSessions` with its defaults. */
export interface EndedRetention {
  /** Removed once they ended this long ago; undefined: never for their age. */
  maxAgeMs: number | undefined;
  /** Only the newest this many are kept; undefined: any number. */
  maxCount: number | undefined;
  /** The oldest are removed while all ended sessions' logs take more than this; undefined: no cap. */
  maxTotalBytes: number | undefined;
}

/** A setting as config, environment or command line give it: null is "no limit", undefined "the next one says". */
export type EndedRetentionSetting = { [K in keyof EndedRetention]?: number | null | undefined };

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The defaults (docs/operations.md, "Disk"): ended sessions go 30 days after they ended, and
 * sooner, oldest first, while the logs of all of them take more than 4 GiB. The per-session
 * limits (`retention.maxBytes`, 256 MiB) still bound one session's log.
 */
export const DEFAULT_ENDED_RETENTION: EndedRetention = {
  maxAgeMs: 30 * DAY_MS,
  maxCount: undefined,
  maxTotalBytes: 4 * 1024 * 1024 * 1024,
};

/** The rule from settings in precedence order (command line, environment, config), then the defaults. */
export function resolveEndedRetention(...settings: (EndedRetentionSetting | undefined)[]): EndedRetention {
  const pick = (key: keyof EndedRetention): number | undefined => {
    for (const setting of settings) {
      const value = setting?.[key];
      if (value !== undefined) return value ?? undefined;
    }
    return DEFAULT_ENDED_RETENTION[key];
  };
  return { maxAgeMs: pick("maxAgeMs"), maxCount: pick("maxCount"), maxTotalBytes: pick("maxTotalBytes") };
}

/** An ended session as the rule sees it. */
export interface EndedEntry<T> {
  item: T;
  endedAt: number;
  /** What its log takes (its retained events' bytes). */
  bytes: number;
}

/**
 * Which of `ended` (oldest first) the rule removes at `now`: those older than `maxAgeMs`, those
 * beyond the newest `maxCount`, and of the rest, from the newest, each that would take the ones
 * kept past `maxTotalBytes` and all older (the newest is kept whatever its size).
 */
export function endedToRemove<T>(ended: readonly EndedEntry<T>[], rule: EndedRetention, now: number): T[] {
  const excess = rule.maxCount === undefined ? 0 : Math.max(0, ended.length - rule.maxCount);
  const doomed = ended.map((e, i) => i < excess || (rule.maxAgeMs !== undefined && now - e.endedAt >= rule.maxAgeMs));
  if (rule.maxTotalBytes !== undefined) {
    // From the newest: once one more would go over the cap, it and every older one go.
    let kept = 0;
    let keptAny = false;
    for (let i = ended.length - 1; i >= 0; i--) {
      if (doomed[i]) continue;
      if (keptAny && kept + ended[i]!.bytes > rule.maxTotalBytes) {
        for (let j = i; j >= 0; j--) doomed[j] = true;
        break;
      }
      kept += ended[i]!.bytes;
      keptAny = true;
    }
  }
  return ended.filter((_, i) => doomed[i]).map((e) => e.item);
}
