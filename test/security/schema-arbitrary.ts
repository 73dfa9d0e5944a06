/**
 * fast-check arbitraries derived from zod schemas by walking them: values of the schema's shape
 * (its objects with their keys, its unions' tags, its literals and enums) whose fields are,
 * each independently, plausible (in range, right type) or hostile — the wrong type, a boundary
 * just past a limit, nested deeper than `LIMITS.JSON_DEPTH`, megabytes long, a lone surrogate, a
 * prototype key. Encoded with {@link encodeFuzzValue}, which expands the {@link deepText}
 * markers into nesting too deep to build as a value (a frame of 5,000 `[`).
 */
import fc from "fast-check";
import type { z } from "zod";

/** Replaces a field's arbitrary by name, wherever the field is (session ids that exist, say). */
export type FieldOverrides = Readonly<Record<string, fc.Arbitrary<unknown>>>;

const DEEP_MARK = "\u0001deep:";

/** A marker {@link encodeFuzzValue} replaces with `depth` nested arrays in the JSON text. */
export function deepText(depth: number): string {
  return `${DEEP_MARK}${depth}\u0001`;
}

/** JSON text of a generated value, with {@link deepText} markers expanded. */
export function encodeFuzzValue(value: unknown): string {
  const text = JSON.stringify(value) ?? "null";
  return text.replace(/"\\u0001deep:(\d+)\\u0001"/g, (_m, n: string) => "[".repeat(Number(n)) + "]".repeat(Number(n)));
}

const nested = (depth: number): unknown => {
  let v: unknown = 0;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};

/** Values no field of any schema should accept unchecked, whatever its type. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 65, max: 20_000 }).map(deepText) },
  fc.constantFrom<unknown>(
    null,
    true,
    0,
    -1,
    -0,
    0.5,
    2 ** 53 + 2,
    -(2 ** 53) - 2,
    1e308,
    -1e308,
    "",
    " ",
    "\u0000",
    "\ud800",
    "\udfff\ud800",
    "\u202e\u0007\u001b[2J",
    "__proto__",
    "constructor",
    "../../../../etc/passwd",
    "%00%2e%2e%2f",
    "1e999",
    "NaN",
    [],
    {},
    { __proto__: { polluted: true } },
    JSON.parse('{"__proto__":{"polluted":true}}') as unknown,
    { constructor: { prototype: { polluted: true } } },
  ),
  fc.integer({ min: 65, max: 200 }).map(nested),
  fc.constantFrom(10_000, 200_000, 1_100_000).map((n) => "x".repeat(n)),
  fc.constantFrom(1000, 20_000).map((n) => Array.from({ length: n }, () => 0)),
  fc.constantFrom(1000, 5000).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]))),
  fc.string({ unit: "binary", maxLength: 64 }),
  fc.jsonValue({ maxDepth: 3 }),
);

interface Walk {
  overrides: FieldOverrides;
  /** A value of an object is all plausible one time in this many; otherwise one of its fields is hostile. */
  hostileOneIn: number;
  depth: number;
}

/**
 * Values shaped by `schema` with plausible and hostile fields (see the module comment).
 * `hostileOneIn`: an object keeps all its fields plausible one time in this many (default 4).
 */
export function fuzzValue(
  schema: z.ZodType,
  options: { overrides?: FieldOverrides; hostileOneIn?: number } = {},
): fc.Arbitrary<unknown> {
  return walk(schema, { overrides: options.overrides ?? {}, hostileOneIn: options.hostileOneIn ?? 4, depth: 0 });
}

type Def = { type: string; [key: string]: any };
const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

function walk(schema: z.ZodType, w: Walk): fc.Arbitrary<unknown> {
  if (w.depth > 8) return hostileValue;
  const inner = { ...w, depth: w.depth + 1 };
  const def = defOf(schema);
  const s = schema as unknown as Record<string, unknown>;
  switch (def.type) {
    case "object": {
      const shape = def["shape"] as Record<string, z.ZodType>;
      const plausible: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [key, field] of Object.entries(shape)) plausible[key] = w.overrides[key] ?? walk(field, inner);
      const keys = Object.keys(shape);
      const required = keys.filter((k) => !["optional", "default"].includes(defOf(shape[k]!).type));
      return fc
        .record({
          record: fc.record(plausible, { requiredKeys: required }),
          // Which field turns hostile: each in turn gets its share (a tag too, though rarely).
          hostile:
            keys.length === 0
              ? fc.constant(null)
              : fc.option(
                  fc.tuple(
                    fc.constantFrom(...keys, ...keys.filter((k) => defOf(shape[k]!).type !== "literal")),
                    hostileValue,
                  ),
                  { freq: w.hostileOneIn },
                ),
          // Now and then a key no schema has, a prototype key among them.
          extra: fc.oneof(
            { weight: 7, arbitrary: fc.constant(null) },
            {
              weight: 1,
              arbitrary: fc.tuple(fc.constantFrom("__proto__", "constructor", "extra", "", "\u0000"), hostileValue),
            },
          ),
        })
        .map(({ record, hostile, extra }) => {
          const copy: Record<string, unknown> = { ...record };
          // Defined as own keys, as JSON.parse would (an assignment to __proto__ would set the prototype).
          for (const pair of [hostile, extra]) {
            if (pair === null) continue;
            const [key, value] = pair;
            Object.defineProperty(copy, key, { value, enumerable: true, writable: true, configurable: true });
          }
          return copy;
        });
    }
    case "union": {
      const options = def["options"] as z.ZodType[];
      return fc.oneof(...options.map((o) => walk(o, inner)));
    }
    case "intersection":
      return walk(def["left"] as z.ZodType, inner);
    case "literal":
      return fc.constantFrom(...(def["values"] as unknown[]));
    case "enum":
      return fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(...Object.values(def["entries"] as Record<string, unknown>)) },
        { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
      );
    case "string": {
      const max = typeof s["maxLength"] === "number" ? (s["maxLength"] as number) : 64;
      const min = typeof s["minLength"] === "number" ? (s["minLength"] as number) : 0;
      return fc.oneof(
        { weight: 6, arbitrary: fc.string({ minLength: Math.min(min, 40), maxLength: Math.min(max, 40) }) },
        // Boundaries: exactly the limits, one past them.
        {
          weight: 1,
          arbitrary: fc
            .constantFrom(min, Math.max(0, min - 1), max, max + 1)
            .map((n) => "a".repeat(Math.min(n, 2_000_000))),
        },
      );
    }
    case "number": {
      const min =
        typeof s["minValue"] === "number" && Number.isFinite(s["minValue"]) ? (s["minValue"] as number) : -1e6;
      const max = typeof s["maxValue"] === "number" && Number.isFinite(s["maxValue"]) ? (s["maxValue"] as number) : 1e6;
      const lo = Math.max(min, -1e9);
      const hi = Math.min(max, 1e9);
      return fc.oneof(
        { weight: 6, arbitrary: fc.integer({ min: Math.ceil(lo), max: Math.max(Math.ceil(lo), Math.floor(hi)) }) },
        { weight: 1, arbitrary: fc.constantFrom(min - 1, max + 1, min + 0.5, -0, Number.MAX_SAFE_INTEGER + 2) },
      );
    }
    case "int":
      return fc.integer();
    case "boolean":
      return fc.boolean();
    case "null":
      return fc.constant(null);
    case "array": {
      const element = def["element"] as z.ZodType;
      return fc.oneof(
        { weight: 6, arbitrary: fc.array(walk(element, inner), { maxLength: 4 }) },
        { weight: 1, arbitrary: fc.array(walk(element, inner), { minLength: 65, maxLength: 70 }) },
      );
    }
    case "tuple":
      return fc.tuple(...(def["items"] as z.ZodType[]).map((i) => walk(i, inner)));
    case "record":
      return fc.dictionary(fc.string({ maxLength: 12 }), walk(def["valueType"] as z.ZodType, inner), { maxKeys: 4 });
    case "optional":
    case "nullable":
    case "default":
    case "prefault":
    case "readonly":
    case "catch":
    case "nonoptional":
      return walk(def["innerType"] as z.ZodType, inner);
    case "pipe":
      return walk(def["in"] as z.ZodType, inner);
    case "lazy":
      return walk((def["getter"] as () => z.ZodType)(), inner);
    case "transform":
    case "unknown":
    case "any":
    case "custom":
      return fc.jsonValue({ maxDepth: 3 });
    default:
      return hostileValue;
  }
}
