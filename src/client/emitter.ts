/**
 * A small typed event emitter that works the same in browsers and Node. A listener that
 * throws does not stop the others or the client that emits; its error is rethrown on a
 * fresh microtask so it still surfaces (as an uncaught error), never silently.
 */
export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<(value: never) => void>>();

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof Events>(name: K, listener: (value: Events[K]) => void): () => void {
    let set = this.listeners.get(name);
    if (!set) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(listener as (value: never) => void);
    return () => this.off(name, listener);
  }

  /** Like {@link on}, but the listener runs at most once. */
  once<K extends keyof Events>(name: K, listener: (value: Events[K]) => void): () => void {
    const off = this.on(name, (value) => {
      off();
      listener(value);
    });
    return off;
  }

  off<K extends keyof Events>(name: K, listener: (value: Events[K]) => void): void {
    this.listeners.get(name)?.delete(listener as (value: never) => void);
  }

  emit<K extends keyof Events>(name: K, value: Events[K]): void {
    const set = this.listeners.get(name);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as (value: Events[K]) => void)(value);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  /** Removes every listener (used by the owner's `close()`). */
  clear(): void {
    this.listeners.clear();
  }
}
