#!/usr/bin/env node
/**
 * Readability figures for the acceptance of "docs a newcomer can read": the median and longest
 * paragraph (in words) of each doc, and the longest comment blocks in src/ and web/src (in lines,
 * module headers apart). Run `node scripts/doc-stats.mjs [--top N]`; it reads, never writes.
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const topArg = process.argv.indexOf("--top");
const TOP = topArg > 0 ? Number(process.argv[topArg + 1]) : 15;
const longArg = process.argv.indexOf("--long");
/** With `--long N`, every paragraph over N words is listed (doc, line, words). */
const LONG = longArg > 0 ? Number(process.argv[longArg + 1]) : undefined;

function walk(dir, keep) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...walk(path, keep));
    else if (keep(name)) out.push(path);
  }
  return out;
}

/**
 * The prose paragraphs of a Markdown file ({text, line}): runs of non-blank lines, each list
 * item its own paragraph; headings, tables and fenced code are not prose and are left out.
 */
export function paragraphs(markdown) {
  const out = [];
  let current = [];
  let start = 0;
  let fenced = false;
  const flush = () => {
    if (current.length > 0) out.push({ text: current.join(" "), line: start });
    current = [];
  };
  for (const [i, line] of markdown.split("\n").entries()) {
    if (/^\s*(```|~~~)/.test(line)) {
      flush();
      fenced = !fenced;
      continue;
    }
    if (fenced) continue;
    if (line.trim() === "" || /^\s*#/.test(line) || /^\s*\|/.test(line)) {
      flush();
      continue;
    }
    if (/^\s*([-*+]|\d+[.)])\s/.test(line)) flush();
    if (current.length === 0) start = i + 1;
    current.push(line.trim());
  }
  flush();
  return out;
}

const words = (text) => text.split(/\s+/).filter(Boolean).length;

/** The cells of a Markdown file's table rows (separator rows apart), in words. */
function tableCellWords(markdown) {
  return markdown
    .split("\n")
    .filter((line) => /^\s*\|/.test(line) && !/^\s*\|[\s|:-]+\|\s*$/.test(line))
    .flatMap((line) => line.split(/(?<!\\)\|/).map(words));
}

function median(values) {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const docs = [join(root, "README.md"), ...walk(join(root, "docs"), (n) => n.endsWith(".md")).sort()];
const rows = docs.map((path) => {
  const counts = paragraphs(readFileSync(path, "utf8")).map((p) => words(p.text));
  return {
    doc: relative(root, path),
    paragraphs: counts.length,
    median: median(counts),
    longest: Math.max(0, ...counts),
    over150: counts.filter((c) => c > 150).length,
    cell: Math.max(0, ...tableCellWords(readFileSync(path, "utf8"))),
  };
});
const all = docs.flatMap((path) => paragraphs(readFileSync(path, "utf8")).map((p) => words(p.text)));

console.log("## Paragraph length (words)\n");
console.log("| doc | paragraphs | median | longest | over 150 | longest table cell |");
console.log("|---|--:|--:|--:|--:|--:|");
for (const r of rows) {
  console.log(`| ${r.doc} | ${r.paragraphs} | ${r.median} | ${r.longest} | ${r.over150} | ${r.cell} |`);
}
const cells = Math.max(...rows.map((r) => r.cell));
console.log(
  `| all | ${all.length} | ${median(all)} | ${Math.max(...all)} | ${all.filter((c) => c > 150).length} | ${cells} |`,
);
if (LONG !== undefined) {
  console.log(`\nParagraphs over ${LONG} words:\n`);
  for (const path of docs) {
    for (const p of paragraphs(readFileSync(path, "utf8"))) {
      const n = words(p.text);
      if (n > LONG) console.log(`${relative(root, path)}:${p.line} ${n} words`);
    }
  }
}

/**
 * Comment blocks: consecutive lines that are all comment (`//`, a block comment's lines). A block that
 * starts the file (before any code) is the module header and is reported apart.
 */
function commentBlocks(source) {
  const blocks = [];
  let start = -1;
  let sawCode = false;
  let inBlock = false;
  const lines = source.split("\n");
  const close = (end) => {
    if (start >= 0) blocks.push({ line: start + 1, lines: end - start, header: !sawCode });
    start = -1;
  };
  lines.forEach((raw, i) => {
    const line = raw.trim();
    const isComment = inBlock || line.startsWith("//") || line.startsWith("/*");
    if (line.startsWith("/*") && !line.includes("*/")) inBlock = true;
    else if (inBlock && line.includes("*/")) inBlock = false;
    if (isComment) {
      if (start < 0) start = i;
    } else {
      close(i);
      if (line !== "") sawCode = true;
    }
  });
  close(lines.length);
  return blocks;
}

const sources = [
  ...walk(join(root, "src"), (n) => /\.(ts|mts|mjs)$/.test(n)),
  ...walk(join(root, "web", "src"), (n) => n.endsWith(".ts")),
];
const blocks = sources.flatMap((path) =>
  commentBlocks(readFileSync(path, "utf8")).map((b) => ({ ...b, file: relative(root, path) })),
);
const inner = blocks.filter((b) => !b.header).sort((a, b) => b.lines - a.lines);
console.log(`\n## Comment blocks in src and web/src (module headers apart)\n`);
console.log(`${inner.length} blocks; ${inner.filter((b) => b.lines > 8).length} longer than 8 lines. Longest:\n`);
console.log("| lines | where |");
console.log("|--:|---|");
for (const b of inner.slice(0, TOP)) console.log(`| ${b.lines} | ${b.file}:${b.line} |`);
