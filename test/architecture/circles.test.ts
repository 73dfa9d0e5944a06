import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * docs/architecture.md, "Layers": no import circle between the files of these folders. Every
 * relative import counts, `import type` included: a circle of types is still two files that
 * cannot be read one before the other. Shared names go in a leaf module (`http/http-constants.ts`,
 * `identity/identity.ts`, `sessions/process-transport.ts`) or a narrow interface on the importer's side.
 */
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const FOLDERS = ["src/server", "src/sessions", "src/log"] as const;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts)$/.test(name) ? [path] : [];
  });
}

/** Relative specifiers of `from "…"`, `import "…"` and `import("…")`. */
function importsOf(source: string): string[] {
  const found = source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)["']/gm);
  return [...found].map((m) => m[1]!);
}

/** The strongly connected components of more than one file (Tarjan), each sorted: the circles. */
function circlesOf(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const circles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1) circles.push(component.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return circles;
}

function importGraph(folder: string): Map<string, string[]> {
  const files = sourceFiles(join(REPO, folder));
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const targets = importsOf(readFileSync(file, "utf8"))
      .map((spec) => resolve(dirname(file), spec).replace(/\.js$/, ".ts"))
      .filter((target) => known.has(target));
    graph.set(
      relative(join(REPO, folder), file),
      [...new Set(targets)].map((t) => relative(join(REPO, folder), t)),
    );
  }
  return graph;
}

describe("import circles", () => {
  it("finds a circle of three files and ignores a chain", () => {
    const graph = new Map([
      ["a.ts", ["b.ts"]],
      ["b.ts", ["c.ts"]],
      ["c.ts", ["a.ts", "d.ts"]],
      ["d.ts", ["e.ts"]],
      ["e.ts", []],
    ]);
    expect(circlesOf(graph)).toEqual([["a.ts", "b.ts", "c.ts"]]);
  });

  for (const folder of FOLDERS) {
    it(`has none between the files of ${folder}`, () => {
      const graph = importGraph(folder);
      expect(graph.size).toBeGreaterThan(20);
      expect(circlesOf(graph).map((c) => c.join(" → "))).toEqual([]);
    });
  }
});
