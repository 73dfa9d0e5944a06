import { describe, expect, it } from "vitest";
import { isInside } from "../../src/system/path-inside.js";

describe("isInside", () => {
  it("takes the root itself and what is below it, by whole path segments", () => {
    expect(isInside("/srv/work", "/srv/work")).toBe(true);
    expect(isInside("/srv/work", "/srv/work/a/b.txt")).toBe(true);
    expect(isInside("/srv/work/", "/srv/work/a")).toBe(true);
    expect(isInside("/", "/etc/passwd")).toBe(true);
  });

  it("refuses a sibling that shares the root's prefix, and what is above it", () => {
    expect(isInside("/srv/work", "/srv/work-other/a")).toBe(false);
    expect(isInside("/srv/work", "/srv/workx")).toBe(false);
    expect(isInside("/srv/work", "/srv")).toBe(false);
    expect(isInside("/srv/work", "/etc/passwd")).toBe(false);
  });

  it("takes a name inside that merely starts with two dots", () => {
    expect(isInside("/srv/work", "/srv/work/..hidden")).toBe(true);
  });
});
