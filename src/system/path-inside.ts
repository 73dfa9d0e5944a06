import path from "node:path";

/**
 * Whether `p` is `root` or inside it, both absolute and normalized (real paths where symlinks
 * matter: the caller resolves them). By prefix and separator, so `/a/b-c` is not inside `/a/b`,
 * and a name that starts with `..` (`/a/b/..x`) is.
 */
export function isInside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}
