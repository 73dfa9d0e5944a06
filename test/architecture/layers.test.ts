import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * docs/architecture.md, "Layers": each layer imports only the layers its row lists. The table is
 * the rule; this test reads it and every relative import (static, `import type`, dynamic) of
 * src and web/src, so a new upward import, or a new folder the table does not name, fails here.
 */
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const doc = readFileSync(join(REPO, "docs", "architecture.md"), "utf8");

interface Layer {
  name: string;
  /** A folder (`src/log`) or one file (`src/index.ts`), relative to the repository. */
  path: string;
  mayImport: Set<string>;
}

function layersOfDoc(): Layer[] {
  const start = doc.indexOf("## Layers");
  const section = doc.slice(start, doc.indexOf("\n## ", start + 1));
  return [...section.matchAll(/^\|\s*`([a-z]+)`\s*\|\s*`([^`]+)`\s*\|([^|]*)\|/gm)].map((m) => ({
    name: m[1]!,
    path: m[2]!,
    mayImport: new Set(
      m[3]!
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== "" && s !== "nothing"),
    ),
  }));
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|mjs)$/.test(name) && !name.endsWith(".d.mts") ? [path] : [];
  });
}

/** Relative specifiers of `from "…"`, `import "…"` and `import("…")`. */
function importsOf(source: string): string[] {
  const found = source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)["']/gm);
  return [...found].map((m) => m[1]!);
}

describe("docs/architecture.md, Layers", () => {
  const layers = layersOfDoc();
  const layerOf = (file: string): Layer | undefined => {
    const rel = relative(REPO, file);
    return layers.find((l) => rel === l.path || rel.startsWith(`${l.path}/`));
  };

  it("names every folder of src, and only layers the table defines in its import lists", () => {
    const names = new Set(layers.map((l) => l.name));
    expect(names.size).toBeGreaterThanOrEqual(14);
    for (const l of layers) for (const dep of l.mayImport) expect(names, `${l.name} may import ${dep}`).toContain(dep);
    for (const entry of readdirSync(join(REPO, "src"))) {
      expect(layerOf(join(REPO, "src", entry)), `src/${entry} has a row in the Layers table`).toBeDefined();
    }
  });

  it("finds static, type-only and dynamic relative imports", () => {
    const source = [
      'import { a } from "../core/clock.js";',
      'import type { B } from "../log/index.js";',
      'export { c } from "./c.js";',
      '  const { d } = await import("../mcp/index.js");',
      'import "./styles.css";',
      'import { e } from "node:fs";',
    ].join("\n");
    expect(importsOf(source)).toEqual([
      "../core/clock.js",
      "../log/index.js",
      "./c.js",
      "../mcp/index.js",
      "./styles.css",
    ]);
  });

  it("has every import of src and web/src within its layer or a layer its row lists", () => {
    const files = [...sourceFiles(join(REPO, "src")), ...sourceFiles(join(REPO, "web", "src"))];
    expect(files.length).toBeGreaterThan(200);
    const violations: string[] = [];
    for (const file of files) {
      const from = layerOf(file);
      if (!from) {
        violations.push(`${relative(REPO, file)} is in no layer`);
        continue;
      }
      for (const spec of importsOf(readFileSync(file, "utf8"))) {
        const to = layerOf(resolve(dirname(file), spec));
        if (!to) violations.push(`${relative(REPO, file)} imports ${spec}, which is in no layer`);
        else if (to !== from && !from.mayImport.has(to.name)) {
          violations.push(`${relative(REPO, file)} (${from.name}) imports ${spec} (${to.name})`);
        }
      }
    }
    expect(violations).toEqual([]);
  });
});

/**
 * docs/architecture.md, "Rooms of `src/server`": the same rule one level down. Every sub-folder of
 * src/server has a row, each room imports only the rooms its row lists (`every room` for the
 * gateway's assembly at the top), and the top holds at most {@link MAX_TOP_FILES} files.
 */
const MAX_TOP_FILES = 25;

interface Room {
  name: string;
  path: string;
  mayImport: Set<string> | "all";
}

function roomsOfDoc(): Room[] {
  const start = doc.indexOf("### Rooms of `src/server`");
  expect(start, "docs/architecture.md has a 'Rooms of `src/server`' section").toBeGreaterThan(0);
  const section = doc.slice(start, doc.indexOf("\n## ", start + 1));
  return [...section.matchAll(/^\|\s*`([a-z]+)`\s*\|\s*`([^`]+)`\s*\|([^|]*)\|/gm)].map((m) => {
    const list = m[3]!.trim();
    return {
      name: m[1]!,
      path: m[2]!,
      mayImport:
        list === "every room"
          ? "all"
          : new Set(
              list
                .split(",")
                .map((r) => r.trim())
                .filter((r) => r !== "" && r !== "nothing"),
            ),
    };
  });
}

describe("docs/architecture.md, Rooms of src/server", () => {
  const rooms = roomsOfDoc();
  const server = join(REPO, "src", "server");
  const top = rooms.find((r) => r.path === "src/server");
  /** The room of a file of src/server: the row of its sub-folder, or the top's. */
  const roomOf = (file: string): Room | undefined => {
    const parts = relative(server, file).split("/");
    return parts.length === 1 ? top : rooms.find((r) => r.path === `src/server/${parts[0]}`);
  };

  it("has a row for the top and for every sub-folder, and names only rooms it defines", () => {
    expect(top, "a row for src/server itself").toBeDefined();
    const names = new Set(rooms.map((r) => r.name));
    for (const r of rooms) {
      if (r.mayImport !== "all")
        for (const dep of r.mayImport) expect(names, `${r.name} may import ${dep}`).toContain(dep);
    }
    const folders = readdirSync(server).filter((n) => statSync(join(server, n)).isDirectory());
    expect(folders.length).toBeGreaterThanOrEqual(8);
    for (const folder of folders) {
      expect(
        rooms.map((r) => r.path),
        `src/server/${folder} has a row`,
      ).toContain(`src/server/${folder}`);
    }
  });

  it(`keeps at most ${MAX_TOP_FILES} files at the top of src/server`, () => {
    const files = readdirSync(server).filter((n) => statSync(join(server, n)).isFile());
    expect(files.length).toBeLessThanOrEqual(MAX_TOP_FILES);
  });

  it("has every import between rooms allowed by the importing room's row", () => {
    const violations: string[] = [];
    for (const file of sourceFiles(server)) {
      const from = roomOf(file)!;
      for (const spec of importsOf(readFileSync(file, "utf8"))) {
        const target = resolve(dirname(file), spec);
        if (!target.startsWith(`${server}/`)) continue;
        const to = roomOf(target);
        if (to === undefined || to === from || from.mayImport === "all") continue;
        if (!from.mayImport.has(to.name)) {
          violations.push(`${relative(REPO, file)} (${from.name}) imports ${spec} (${to.name})`);
        }
      }
    }
    expect(violations).toEqual([]);
  });
});
