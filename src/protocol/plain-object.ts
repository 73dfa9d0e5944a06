/**
 * Whether `value` is an object as `JSON.parse` makes one (its prototype `Object.prototype`): what
 * the hand checks of the commonest frames take (`keystrokeFrame`, `appendFrame`, `customEvent`);
 * anything else they leave to the schemas.
 */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype;
}
