/**
 * `npm run bench`: runs every benchmark module in one process, one after the other, and
 * writes docs/benchmarks.md. `npm run bench -- log routing` runs only the named modules.
 */
import { existsSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { renderNotes, renderSection } from "./report.js";
import type { BenchModule, BenchSection } from "./types.js";

const MODULES = [
  "log",
  "pty",
  "holders",
  "delivery",
  "echo-hops",
  "client",
  "agents",
  "agent-state",
  "routing",
  "plugins",
  "web",
  "ui-stream",
  "slow-link",
  "screen",
  "screen-lag",
  "search",
  "isolation",
  "cluster",
  "cluster-rpc",
  "cluster-failover",
  "cluster-idle",
  "cluster-peers",
  "cluster-copy-storm",
  "session-list",
  "scale",
];
const only = process.argv.slice(2);
const sections: BenchSection[] = [];

for (const name of MODULES) {
  if (only.length > 0 && !only.includes(name)) continue;
  const file = new URL(`./${name}.ts`, import.meta.url);
  if (!existsSync(file)) continue;
  const started = performance.now();
  process.stderr.write(`bench: ${name} ...\n`);
  try {
    const mod = (await import(file.href)) as BenchModule;
    const section = await mod.run();
    sections.push(section);
    process.stderr.write(`bench: ${name} done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  } catch (error) {
    process.stderr.write(`bench: ${name} failed: ${(error as Error).stack ?? String(error)}\n`);
    sections.push({ title: name, markdown: `The benchmark failed: \`${(error as Error).message}\`` });
    process.exitCode = 1;
  }
}

const header = [
  "# Benchmarks",
  "",
  `Measured by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}: Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB.`,
  "Every figure is measured side by side with its baseline in the same process and run; ratios are Switchboard ÷ baseline.",
  "Each section is a results table and a short method note; each run's figures are in [Notes](#notes) at the end,",
  "and the investigations behind the design (dated) in bench/README.md. A goal not met is marked **not met**.",
  "",
].join("\n");
const notes = renderNotes(sections);
const body = sections.map((s) => `## ${s.title}\n\n${renderSection(s)}\n`).join("\n") + (notes ? `\n${notes}` : "");
if (only.length === 0) writeFileSync(new URL("../docs/benchmarks.md", import.meta.url), `${header}\n${body}`);
else process.stdout.write(`${header}\n${body}`);
