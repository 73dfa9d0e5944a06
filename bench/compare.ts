/**
 * `npm run bench:compare -- <dir> <module…>`: runs `npm run bench -- <module>` in `dir` (a
 * checkout of an earlier commit, with its node_modules) and in this checkout, in alternating
 * rounds (`BENCH_ROUNDS`, default 3; the side that goes first turns). Each run's results table
 * gives Switchboard ÷ its baseline, measured in that run; this prints, per measure, each side's
 * ratios (median and range over the rounds) and where this checkout's median falls against the
 * earlier one's range: a change is visible only when it leaves the spread of the runs (whether
 * above is worse depends on the measure: a time's ratio, or a throughput's). `BENCH_SAVE=<dir>`
 * keeps each run's whole report there (`<module>-<round>-<side>.md`, with the load average at its
 * start and end), for the figures behind the ratios.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";

const [beforeDir, ...modules] = process.argv.slice(2);
if (beforeDir === undefined || modules.length === 0) {
  process.stderr.write("usage: npm run bench:compare -- <dir of the earlier checkout> <module…>\n");
  process.exit(2);
}
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 3);
const SAVE = process.env["BENCH_SAVE"];
if (SAVE !== undefined) mkdirSync(SAVE, { recursive: true });
const sides = { before: resolve(beforeDir), after: process.cwd() } as const;
type Side = keyof typeof sides;

/** measure → side → the ratios of its rounds. */
const ratios = new Map<string, Record<Side, number[]>>();

/** The rows of the first results table in `markdown`: measure and ratio (rows without one are skipped). */
function parseRatios(markdown: string): Array<[string, number]> {
  const rows: Array<[string, number]> = [];
  for (const line of markdown.split("\n")) {
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
    if (cells.length < 7 || cells[1] === "measure" || cells[1]!.startsWith("---")) continue;
    const ratio = Number.parseFloat(cells[4]!);
    if (Number.isFinite(ratio)) rows.push([cells[1]!, ratio]);
  }
  return rows;
}

for (let round = 0; round < ROUNDS; round++) {
  const order: Side[] = round % 2 === 0 ? ["before", "after"] : ["after", "before"];
  for (const module of modules) {
    for (const side of order) {
      const started = performance.now();
      const loadBefore = loadavg()[0]!.toFixed(1);
      const run = spawnSync(process.execPath, ["--expose-gc", "--import", "tsx", "bench/run.ts", module], {
        cwd: sides[side],
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
      });
      const seconds = ((performance.now() - started) / 1000).toFixed(0);
      process.stderr.write(`round ${round + 1}/${ROUNDS} ${module} ${side}: exit ${run.status} in ${seconds} s\n`);
      if (SAVE !== undefined) {
        const load = `Load average (1 min) at the run's start and end: ${loadBefore} and ${loadavg()[0]!.toFixed(1)}.\n\n`;
        writeFileSync(join(SAVE, `${module}-${round + 1}-${side}.md`), load + run.stdout + run.stderr);
      }
      for (const [measure, ratio] of parseRatios(run.stdout)) {
        const key = `${module}: ${measure}`;
        if (!ratios.has(key)) ratios.set(key, { before: [], after: [] });
        ratios.get(key)![side].push(ratio);
      }
    }
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const spread = (xs: number[]): string =>
  xs.length === 0 ? "–" : `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;

/** Where this checkout's median falls against the earlier checkout's rounds. */
function against(r: Record<Side, number[]>): string {
  if (r.before.length === 0 || r.after.length === 0) return "–";
  const m = median(r.after);
  if (m < Math.min(...r.before)) return "**below**";
  if (m > Math.max(...r.before)) return "**above**";
  return "within";
}

const lines = [
  "| measure (ratio to its baseline) | before: median (range) | after: median (range) | after's median vs before's range |",
  "| --- | --- | --- | --- |",
];
for (const [measure, r] of ratios)
  lines.push(`| ${measure} | ${spread(r.before)} | ${spread(r.after)} | ${against(r)} |`);
process.stdout.write(`${lines.join("\n")}\n`);
