import { constants } from "node:fs";
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { dirname } from "node:path";
import { SwitchboardError } from "../protocol/index.js";

export interface StateStoreLimits {
  /** Serialized size of the whole state. */
  stateBytes: number;
  stateKeyChars: number;
}

/**
 * A plugin's persisted key-value state, kept by the host in `<dataDir>/plugin-state/<id>.json`
 * — outside the folder the plugin itself may write, so the plugin reaches it only through the
 * runtime API and cannot swap the file for something else. Writes are whole-file, atomic
 * (temp file, fsync, rename) and serialized; a write that would exceed `stateBytes` is
 * refused with `PAYLOAD_TOO_LARGE` and changes nothing.
 */
export class StateStore {
  private data: Map<string, unknown> | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly file: string,
    private readonly limits: StateStoreLimits,
  ) {}

  get(key: string): Promise<unknown> {
    return this.serial(async () => {
      this.checkKey(key);
      return (await this.load()).get(key) ?? null;
    });
  }

  keys(): Promise<string[]> {
    return this.serial(async () => [...(await this.load()).keys()]);
  }

  set(key: string, value: unknown): Promise<void> {
    return this.serial(async () => {
      this.checkKey(key);
      if (value === undefined)
        throw new SwitchboardError("VALIDATION_FAILED", "state values must be JSON (not undefined)");
      const data = await this.load();
      const next = new Map(data);
      next.set(key, JSON.parse(JSON.stringify(value)) as unknown);
      await this.persist(next);
    });
  }

  delete(key: string): Promise<boolean> {
    return this.serial(async () => {
      this.checkKey(key);
      const data = await this.load();
      if (!data.has(key)) return false;
      const next = new Map(data);
      next.delete(key);
      await this.persist(next);
      return true;
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    // The queue only orders operations; each caller gets its own result or error.
    this.queue = run.catch(() => undefined);
    return run;
  }

  private checkKey(key: string): void {
    if (key.length > this.limits.stateKeyChars)
      throw new SwitchboardError("PAYLOAD_TOO_LARGE", `state keys are at most ${this.limits.stateKeyChars} characters`);
  }

  private async load(): Promise<Map<string, unknown>> {
    if (this.data) return this.data;
    let text: string;
    try {
      text = await readFile(this.file, { encoding: "utf8", flag: constants.O_RDONLY | constants.O_NOFOLLOW });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      // No file yet: the plugin has not stored anything.
      text = "{}";
    }
    const parsed = JSON.parse(text) as unknown;
    this.data = new Map(parsed !== null && typeof parsed === "object" ? Object.entries(parsed) : []);
    return this.data;
  }

  private async persist(next: Map<string, unknown>): Promise<void> {
    const text = JSON.stringify(Object.fromEntries(next));
    if (Buffer.byteLength(text) > this.limits.stateBytes)
      throw new SwitchboardError(
        "PAYLOAD_TOO_LARGE",
        `plugin state is limited to ${this.limits.stateBytes} bytes of JSON`,
      );
    await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    const handle = await open(tmp, "w", 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, this.file);
    this.data = next;
  }
}
