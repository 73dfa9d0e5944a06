// Writes test/durations.json (seconds per test file, for test/sequencer.ts) from a vitest JSON
// report: `npm test -- --reporter=json --outputFile=.ci-results.json`, then `npm run test:durations`.
import { readFileSync, writeFileSync } from "node:fs";
import { relative } from "node:path";

const report = JSON.parse(readFileSync(process.argv[2] ?? ".ci-results.json", "utf8"));
const durations = {};
for (const file of report.testResults.sort((a, b) => a.name.localeCompare(b.name))) {
  durations[relative(process.cwd(), file.name)] = Math.round((file.endTime - file.startTime) / 100) / 10;
}
writeFileSync("test/durations.json", `${JSON.stringify(durations, null, 2)}\n`);
console.log(`test/durations.json: ${Object.keys(durations).length} files`);
