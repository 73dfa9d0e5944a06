import { createRequire } from "node:module";

/**
 * The addon `name` that `npm run build` makes from native/ (scripts/build-native.mjs), or null
 * where it was not built: every caller has a way on without it. node-gyp writes it to
 * build/Release, two levels above src/<part> and dist/<part> alike.
 */
export function loadAddon<T>(name: string): T | null {
  try {
    return createRequire(import.meta.url)(`../../build/Release/${name}.node`) as T;
  } catch {
    return null;
  }
}
