// docs/agents.md's "ACP coverage" tables name every method and `session/update` variant of the
// ACP schema the SDK speaks, read here from the SDK's own schema file: a method or variant a new
// SDK adds fails this test until the table (and, for a variant, the mapping) handles it.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { MAPPED_UPDATES } from "../../src/agents/acp-updates.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
/** The stable v1 schema: what `import "@agentclientprotocol/sdk"` (the gateway's import) speaks. */
const SCHEMA = path.join(ROOT, "node_modules/@agentclientprotocol/sdk/schema/v1/schema.json");

type Schema = { $defs: Record<string, Record<string, unknown>> };
const schema = JSON.parse(readFileSync(SCHEMA, "utf8")) as Schema;

/** Every `x-method` the schema's requests, responses and notifications name. */
function schemaMethods(): string[] {
  const methods = new Set<string>();
  for (const def of Object.values(schema.$defs)) if (typeof def["x-method"] === "string") methods.add(def["x-method"]);
  return [...methods].sort();
}

/** The `sessionUpdate` discriminator values of `SessionUpdate`. */
function schemaVariants(): string[] {
  const variants = (
    schema.$defs.SessionUpdate!.oneOf as Array<{ properties: { sessionUpdate: { const: string } } }>
  ).map((v) => v.properties.sessionUpdate.const);
  return variants.sort();
}

/** The rows of the docs table whose header starts with `firstHeader`: first cell (backquotes off) → cells. */
function docsTable(firstHeader: string): Map<string, string[]> {
  const docs = readFileSync(path.join(ROOT, "docs/agents.md"), "utf8");
  const section = docs.slice(docs.indexOf("### ACP coverage"));
  const lines = section.split("\n");
  const start = lines.findIndex((l) => l.startsWith(`| ${firstHeader}`));
  expect(start, `a table headed "${firstHeader}" under "### ACP coverage"`).toBeGreaterThanOrEqual(0);
  const rows = new Map<string, string[]>();
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith("|")) break;
    const cells = line
      .split("|")
      .slice(1, -1)
      .map((c) => c.trim());
    rows.set(cells[0]!.replace(/`/g, ""), cells);
  }
  return rows;
}

/** The test files a cell names exist. */
function citedTestsExist(cell: string): void {
  for (const [, file] of cell.matchAll(/`(test\/[^`]+)`/g)) expect(existsSync(path.join(ROOT, file!)), file).toBe(true);
}

describe("ACP coverage (docs/agents.md) against the SDK's schema", () => {
  it("has a row for every method of the schema, and none for a method it does not have", () => {
    const rows = docsTable("method");
    const methods = schemaMethods();
    expect(methods.length).toBeGreaterThan(20);
    expect([...rows.keys()].sort()).toEqual(methods);
    for (const [method, cells] of rows) {
      expect(["yes", "no"], method).toContain(cells[2]);
      if (cells[2] === "yes") expect(cells[4], `${method} names the test that proves it`).toMatch(/`test\//);
      citedTestsExist(cells[4]!);
    }
  });

  it("has a row for every session/update variant, each mapped by the adapter", () => {
    const rows = docsTable("`session/update` variant");
    const variants = schemaVariants();
    expect(variants).toContain("agent_message_chunk");
    expect([...rows.keys()].filter((k) => k !== "any other").sort()).toEqual(variants);
    expect([...MAPPED_UPDATES].sort()).toEqual(variants);
    for (const [variant, cells] of rows) {
      expect(cells[1], `${variant}: how it shows in a run`).not.toBe("");
      expect(cells[4], `${variant} names the test that proves it`).toMatch(/`test\//);
      citedTestsExist(cells[4]!);
    }
  });
});
