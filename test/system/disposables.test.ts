import { describe, expect, it } from "vitest";
import { Disposables } from "../../src/system/disposables.js";
import { TimerSet } from "../../src/system/timer-set.js";

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("Disposables", () => {
  it("releases what it holds once, newest first, and at once what comes after dispose", () => {
    const owned = new Disposables();
    const released: string[] = [];
    owned.add(() => released.push("listener"));
    owned.add({ dispose: () => released.push("watcher") });
    owned.dispose();
    owned.dispose();
    expect(released).toEqual(["watcher", "listener"]);
    expect(owned.disposed).toBe(true);
    owned.add(() => released.push("late"));
    expect(released).toEqual(["watcher", "listener", "late"]);
  });

  it("clears its timers on dispose, and a timer started after dispose never fires", async () => {
    const owned = new Disposables();
    let fired = 0;
    const timers = owned.timers({ poll: { after: 5, fire: () => fired++ }, other: { after: 5, fire: () => fired++ } });
    timers.start("poll");
    timers.start("other");
    expect(timers.isPending("poll")).toBe(true);
    owned.dispose();
    expect(timers.isPending("poll")).toBe(false);
    timers.start("poll");
    expect(timers.isPending("poll")).toBe(false);
    await tick(30);
    expect(fired).toBe(0);
  });

  it("leaves a timer set that is only stopped (not disposed) free to start again", async () => {
    let fired = 0;
    const timers = new TimerSet({ once: { after: 1, fire: () => fired++ } });
    timers.start("once");
    timers.stopAll();
    timers.start("once");
    await tick(20);
    expect(fired).toBe(1);
    timers.dispose();
  });
});
