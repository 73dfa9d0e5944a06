import type { EventType, OutputStream } from "../protocol/index.js";
import { OutputEntry } from "../log/output-entry.js";
import type { PersistedSession, StoredEntry } from "../log/store.js";
import { jsonSize } from "../log/types.js";
import type { RedisClient } from "./redis-client.js";
import { NOTICE_ENTRIES_MAX_BYTES, digitsAt } from "./live-notice.js";
import { InternalError, SwitchboardError } from "../protocol/errors.js";

/** Arguments per entry of the append script (see APPEND). */
const ENTRY_ARGS = 7;
/** Arguments of the append script before its entries. */
const HEAD_ARGS = 8;

/**
 * Appends a session's entries under its fencing epoch, whole (docs/cluster.md). KEYS log, meta,
 * live channel; ARGV epoch, head (where the batch must end), first (0: no trim), outputBytes,
 * retainedBytes, record JSON ('' for none), createdAt, held ('1': copies wait for replicas), then
 * per entry seq, type, json, stream, ts, offset, bytes. Seqs at or below the stored head are
 * skipped (a retry whose answer was lost), a gap is refused. The notice carries a small append's
 * entries (live-notice.ts); a new record raises `recordRev` (see SharedStamp).
 */
const APPEND = `
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if epoch ~= ARGV[1] then
  return redis.error_reply('FENCED ' .. tostring(epoch or 'none') .. ' ' .. tostring(redis.call('HGET', KEYS[2], 'owner') or ''))
end
local head = tonumber(redis.call('HGET', KEYS[2], 'head') or '0')
local from = head + 1
local parts = {}
local size = 0
local carry = ARGV[8] ~= '1'
-- A batch that ends below the head was applied before (a retry after a later call in flight was
-- applied too): Redis holds it all, nothing is written again.
if tonumber(ARGV[2]) < head then return head end
for i = ${HEAD_ARGS + 1}, #ARGV, ${ENTRY_ARGS} do
  local seq = tonumber(ARGV[i])
  if seq > head then
    if seq ~= head + 1 then return redis.error_reply('GAP ' .. head .. ' ' .. seq) end
    if ARGV[i + 1] == 'output' then
      redis.call('XADD', KEYS[1], ARGV[i] .. '-0', 't', 'output', 's', ARGV[i + 3], 'ts', ARGV[i + 4], 'o', ARGV[i + 5], 'b', ARGV[i + 6], 'x', ARGV[i + 2])
    else
      redis.call('XADD', KEYS[1], ARGV[i] .. '-0', 't', ARGV[i + 1], 'j', ARGV[i + 2])
    end
    if carry then
      for k = i, i + ${ENTRY_ARGS - 1} do size = size + #ARGV[k] end
      carry = size <= ${NOTICE_ENTRIES_MAX_BYTES}
      if carry then
        for k = i, i + ${ENTRY_ARGS - 1} do parts[#parts + 1] = #ARGV[k] .. ':' .. ARGV[k] end
      end
    end
    head = seq
  end
end
if head ~= tonumber(ARGV[2]) then return redis.error_reply('GAP ' .. head .. ' ' .. ARGV[2]) end
if ARGV[3] ~= '0' then
  redis.call('XTRIM', KEYS[1], 'MINID', ARGV[3] .. '-0')
  redis.call('HSET', KEYS[2], 'first', ARGV[3])
end
redis.call('HSET', KEYS[2], 'head', head, 'outputBytes', ARGV[4], 'retainedBytes', ARGV[5])
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[2], 'record', ARGV[6], 'createdAt', ARGV[7])
  redis.call('HINCRBY', KEYS[2], 'recordRev', 1)
end
local notice = head .. ' ' .. tostring(redis.call('HGET', KEYS[2], 'first') or '1') .. ' ' .. epoch .. ' ' .. (ARGV[6] ~= '' and 'r' or '-')
if carry and #parts > 0 then notice = notice .. ' ' .. from .. '\\n' .. table.concat(parts) end
redis.call('SPUBLISH', KEYS[3], notice)
return head
`;

/**
 * Makes this node a session's owner under epoch 1 when the session is new to Redis; answers the
 * epoch and owner Redis holds either way (the caller owns it only if that owner is itself).
 */
const CLAIM = `
if redis.call('HSETNX', KEYS[1], 'epoch', '1') == 1 then
  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'head', '0', 'first', '1')
end
return {tonumber(redis.call('HGET', KEYS[1], 'epoch')), redis.call('HGET', KEYS[1], 'owner') or ''}
`;

/**
 * Raises the epoch and names the new owner in one step, only while `ARGV[2]` still owns it (a
 * takeover of a dead node never takes a session its owner came back for meanwhile); 0 otherwise.
 */
const BUMP = `if (redis.call('HGET', KEYS[1], 'owner') or '') ~= ARGV[2] then return 0 end
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
return epoch`;

/** Why an append was refused: another epoch is in force (the session was taken over; FENCED, `node` its owner). */
export class FencedError extends SwitchboardError {
  override readonly name: string = "FencedError";
  constructor(
    readonly sessionId: string,
    readonly heldEpoch: number,
    readonly foundEpoch: string,
    readonly owner: string,
  ) {
    super(
      "FENCED",
      `session ${sessionId} is fenced: this node appended under epoch ${heldEpoch}, Redis has epoch ${foundEpoch}${owner ? ` owned by ${owner}` : ""}`,
      { node: owner },
    );
  }
}

/** A session's log position as Redis holds it with each append. */
export interface RedisLogPosition {
  head: number;
  first: number;
  outputBytes: number;
  retainedBytes: number;
}

/** One append: the entries (contiguous, in seq order), the position after them, the record if it changed. */
export interface RedisAppend {
  entries: readonly StoredEntry[];
  position: RedisLogPosition;
  /** Set when the log was trimmed: the new first seq. */
  trimmedTo?: number;
  record?: PersistedSession;
  /** Copies show these entries only once replicas confirmed them (`cluster.waitReplicas`): the notice carries none. */
  held?: boolean;
}

/**
 * A session's keys: all under the hash tag of its id, so a Redis Cluster keeps them on one shard
 * (and one script may touch them all).
 */
export function sessionKeys(prefix: string, sessionId: string) {
  const tag = `${prefix}{${sessionId}}`;
  return { log: `${tag}:log`, meta: `${tag}:meta`, live: `${tag}:live` };
}

/** An entry as the append script's 7 arguments (see APPEND); a live notice carries them (live-notice.ts). */
export function entryArgs(entry: StoredEntry): Array<string | Buffer> {
  if (entry instanceof OutputEntry) {
    const bytes = entry.bytes;
    return [
      String(entry.seq),
      "output",
      entry.binary ? "1" : "0",
      entry.stream,
      String(entry.ts),
      String(entry.outStart),
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    ];
  }
  return [String(entry.seq), entry.type, entry.json, "", "", "", ""];
}

/** The first byte of each stream field's name (see APPEND): `t`, `j`, `s`, `ts`, `o`, `b`, `x`. */
const FIELD_T = 0x74;
const FIELD_J = 0x6a;
const FIELD_S = 0x73;
const FIELD_O = 0x6f;
const FIELD_B = 0x62;
const FIELD_X = 0x78;

/** The seq of a stream id `<seq>-0`, read from its digits (-1 if they are not a number). */
function seqOfId(id: Buffer): number {
  const dash = id.indexOf(0x2d);
  return digitsAt(id, 0, dash < 0 ? id.length : dash);
}

/**
 * A stream entry read back as the log's entry. One pass over the fields, names compared as
 * bytes: a copying node decodes every entry its owners append (bench/README.md, Cluster).
 */
export function decodeEntry(id: Buffer, fields: Buffer[]): StoredEntry {
  let type: Buffer | undefined;
  let json: Buffer | undefined;
  let stream: Buffer | undefined;
  let ts: Buffer | undefined;
  let offset: Buffer | undefined;
  let bytes: Buffer | undefined;
  let binary: Buffer | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (name.length === 2) {
      if (name[0] === FIELD_T && name[1] === FIELD_S) ts = value;
      continue;
    }
    if (name.length !== 1) continue;
    switch (name[0]) {
      case FIELD_T:
        type = value;
        break;
      case FIELD_J:
        json = value;
        break;
      case FIELD_S:
        stream = value;
        break;
      case FIELD_O:
        offset = value;
        break;
      case FIELD_B:
        bytes = value;
        break;
      case FIELD_X:
        binary = value;
        break;
    }
  }
  const seq = seqOfId(id);
  const typeName = type?.toString() as EventType | undefined;
  if (typeName === "output") {
    return new OutputEntry(
      seq,
      Number(ts?.toString("latin1")),
      stream?.toString("latin1") as OutputStream,
      Number(offset?.toString("latin1")),
      bytes ?? Buffer.alloc(0),
      binary?.length === 1 && binary[0] === 0x31,
    );
  }
  const text = json?.toString() ?? "null";
  return { seq, type: typeName ?? "custom", json: text, size: jsonSize(text) };
}

/** Whether `a` and `b` are the same event at the same seq (an entry read back from Redis and the one appended). */
export function sameEntry(a: StoredEntry, b: StoredEntry): boolean {
  if (a.seq !== b.seq || a.type !== b.type) return false;
  if (a instanceof OutputEntry || b instanceof OutputEntry) {
    return (
      a instanceof OutputEntry &&
      b instanceof OutputEntry &&
      a.outStart === b.outStart &&
      a.stream === b.stream &&
      Buffer.compare(Buffer.from(a.bytes), Buffer.from(b.bytes)) === 0
    );
  }
  return a.json === b.json;
}

/** The Redis side of the shared log: appends under the fence, reads, session records. */
export class RedisLog {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    /** Told each append's round trip (seconds), for metrics. */
    private readonly onAppended?: (seconds: number) => void,
  ) {}

  /** The key of the sorted set every node lists sessions from. */
  get sessionsKey(): string {
    return `${this.prefix}sessions`;
  }

  /** Makes `nodeId` the owner of a session new to Redis (epoch 1); returns the session's epoch and owner. */
  async claim(sessionId: string, nodeId: string): Promise<{ epoch: number; owner: string }> {
    const { meta } = sessionKeys(this.prefix, sessionId);
    const [epoch, owner] = (await this.redis.eval(CLAIM, 1, meta, nodeId)) as [number, string];
    return { epoch: Number(epoch), owner: String(owner) };
  }

  /**
   * Appends under `epoch`; resolves with the head Redis holds after it. Rejects with
   * {@link FencedError} when the session's epoch is another.
   */
  append(sessionId: string, epoch: number, batch: RedisAppend): Promise<number> {
    const keys = sessionKeys(this.prefix, sessionId);
    const p = batch.position;
    const record = batch.record;
    const args: Array<string | Buffer> = [
      String(epoch),
      String(p.head),
      String(batch.trimmedTo ?? 0),
      String(p.outputBytes),
      String(p.retainedBytes),
      record ? JSON.stringify(record) : "",
      record ? String(record.createdAt) : "",
      batch.held === true ? "1" : "0",
    ];
    for (const entry of batch.entries) args.push(...entryArgs(entry));
    const started = performance.now();
    // Not an async function: this runs for every append, and each await is a turn of the microtask queue.
    return this.redis.eval(APPEND, 3, keys.log, keys.meta, keys.live, ...args).then(
      (reply) => {
        this.onAppended?.((performance.now() - started) / 1000);
        const head = Number(reply);
        return record ? this.announce(sessionId, record.createdAt).then(() => head) : head;
      },
      (error: Error) => {
        const fenced = /^FENCED (\S+) ?(.*)$/.exec(error.message);
        throw fenced ? new FencedError(sessionId, epoch, fenced[1]!, fenced[2] ?? "") : error;
      },
    );
  }

  /** A session new to the list is announced, so that the other nodes show it at once. */
  private async announce(sessionId: string, createdAt: number): Promise<void> {
    if ((await this.redis.zadd(this.sessionsKey, createdAt, sessionId)) === 1)
      await this.redis.publish(this.sessionsKey, sessionId);
  }

  /** Entries with seq `from` to `to` (inclusive), at most `count`. */
  async read(sessionId: string, from: number, to: number | "+", count: number): Promise<StoredEntry[]> {
    const { log } = sessionKeys(this.prefix, sessionId);
    const rows = await this.redis.xrangeBuffer(log, `${from}-0`, to === "+" ? "+" : `${to}-0`, "COUNT", count);
    return rows.map(([id, fields]) => decodeEntry(id, fields));
  }

  /** The session's record and log position as Redis holds them (undefined: not in Redis). */
  async session(sessionId: string): Promise<SharedSession | undefined> {
    const { meta } = sessionKeys(this.prefix, sessionId);
    return sharedSession(await this.redis.hgetall(meta));
  }

  /**
   * {@link session} and the entries from seq `from` (at most `count`) in one round trip (`MULTI`,
   * so the entries end at the position read): what a copy needs on each notification.
   */
  async sessionFrom(
    sessionId: string,
    from: number,
    count: number,
  ): Promise<{ session: SharedSession | undefined; entries: StoredEntry[] }> {
    const { meta, log } = sessionKeys(this.prefix, sessionId);
    const results = await this.redis.multi().hgetall(meta).xrangeBuffer(log, `${from}-0`, "+", "COUNT", count).exec();
    const failed = results?.find(([error]) => error !== null)?.[0];
    if (results === null || failed) throw failed ?? new InternalError(`reading session ${sessionId} was aborted`);
    const rows = results[1]![1] as Array<[Buffer, Buffer[]]>;
    return {
      session: sharedSession(results[0]![1] as Record<string, string>),
      entries: rows.map(([id, fields]) => decodeEntry(id, fields)),
    };
  }

  /** The newest `count` entries of a session's log (up to seq `to`), oldest first. */
  async tail(sessionId: string, to: number, count: number): Promise<StoredEntry[]> {
    const { log } = sessionKeys(this.prefix, sessionId);
    const rows = await this.redis.xrevrangeBuffer(log, `${to}-0`, "-", "COUNT", count);
    return rows.reverse().map(([id, fields]) => decodeEntry(id, fields));
  }

  /** What {@link SharedStamp} compares of a session's meta, in one small read (undefined: not in Redis). */
  async stamp(sessionId: string): Promise<SharedStamp | undefined> {
    const { meta } = sessionKeys(this.prefix, sessionId);
    const [head, first, epoch, confirmed, recordRev] = await this.redis.hmget(meta, ...STAMP_FIELDS);
    if (epoch === null || epoch === undefined) return undefined;
    return {
      head: Number(head ?? 0),
      first: Number(first ?? 1),
      epoch: Number(epoch),
      confirmed: confirmed === null || confirmed === undefined ? undefined : Number(confirmed),
      recordRev: Number(recordRev ?? 0),
    };
  }

  /** Every session id, oldest first. */
  async sessionIds(): Promise<string[]> {
    return this.redis.zrange(this.sessionsKey, "0", "-1");
  }

  /** Removes a session's log and record. */
  async delete(sessionId: string): Promise<void> {
    const keys = sessionKeys(this.prefix, sessionId);
    await this.redis.zrem(this.sessionsKey, sessionId);
    await this.redis.del(keys.log, keys.meta);
  }

  /**
   * Raises a session's epoch and names `newOwner`, if `from` still owns it (taking a dead node's
   * session over, or a restarted node its own); returns the new epoch, undefined when `from` no
   * longer owns it.
   */
  async bumpEpoch(sessionId: string, newOwner: string, from: string): Promise<number | undefined> {
    const { meta } = sessionKeys(this.prefix, sessionId);
    const epoch = Number(await this.redis.eval(BUMP, 1, meta, newOwner, from));
    return epoch === 0 ? undefined : epoch;
  }
}

/** A session as Redis holds it: its record, fencing epoch, owner and log position. */
export interface SharedSession {
  record: PersistedSession;
  epoch: number;
  owner: string;
  position: RedisLogPosition;
  /** The newest seq `waitReplicas` replicas confirmed (see replica-wait.ts); absent when no owner waits. */
  confirmed?: number;
  /** Raised with each new record (see APPEND). */
  recordRev: number;
}

/**
 * The fields of a session's meta that every write of it moves: the append (head, first, and
 * recordRev for a record), the confirmation (confirmed) and the takeover (epoch, with the
 * owner). Two equal stamps read apart mean nothing was written between them.
 */
export interface SharedStamp {
  head: number;
  first: number;
  epoch: number;
  confirmed: number | undefined;
  recordRev: number;
}

const STAMP_FIELDS = ["head", "first", "epoch", "confirmed", "recordRev"] as const;

/** The stamp of what `shared` holds. */
export function stampOf(shared: SharedSession): SharedStamp {
  const { head, first } = shared.position;
  return { head, first, epoch: shared.epoch, confirmed: shared.confirmed, recordRev: shared.recordRev };
}

export function sameStamp(a: SharedStamp, b: SharedStamp): boolean {
  return (
    a.head === b.head &&
    a.first === b.first &&
    a.epoch === b.epoch &&
    a.confirmed === b.confirmed &&
    a.recordRev === b.recordRev
  );
}

function sharedSession(hash: Record<string, string>): SharedSession | undefined {
  if (hash["record"] === undefined) return undefined;
  return {
    record: JSON.parse(hash["record"]) as PersistedSession,
    epoch: Number(hash["epoch"]),
    owner: hash["owner"] ?? "",
    ...(hash["confirmed"] !== undefined ? { confirmed: Number(hash["confirmed"]) } : {}),
    recordRev: Number(hash["recordRev"] ?? 0),
    position: {
      head: Number(hash["head"] ?? 0),
      first: Number(hash["first"] ?? 1),
      outputBytes: Number(hash["outputBytes"] ?? 0),
      retainedBytes: Number(hash["retainedBytes"] ?? 0),
    },
  };
}
