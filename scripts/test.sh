#!/usr/bin/env bash
# `npm test`: the static checks (typecheck, eslint, prettier) run beside the test files, at the
# lowest priority so that they never slow a test; what they said is printed after the tests.
# SWITCHBOARD_TEST_CHECKS=done skips them (.ci/run starts them earlier, on the core its install
# leaves idle). Arguments go to vitest. Fails when either fails.
#
# With only `--option`s (no file or name filter, no --project), the files that mostly wait (the
# `quiet` project, vitest.config.ts) run in a second vitest beside the first: its output is
# printed after the first's, and its results join a JSON report given as --outputFile=FILE.
set -uo pipefail
cd "$(dirname "$0")/.."

beside=true
report=""
for arg in "$@"; do
  case $arg in
    --project*) beside=false ;;
    --outputFile=* | --outputFile.json=*) report=${arg#*=} ;;
    --*) ;;
    *) beside=false ;;
  esac
done

if [ "${SWITCHBOARD_TEST_CHECKS:-}" != done ]; then
  checks_out=$(mktemp)
  nice -n 19 npm run -s checks >"$checks_out" 2>&1 &
  checks=$!
fi

tests=0
if [ "$beside" = true ]; then
  quiet_dir=$(mktemp -d)
  # Both vitests build the SDK package in their set-up; built here first, theirs find nothing to do.
  node node_modules/typescript/bin/tsc -b packages/client/tsconfig.json || tests=1
  npx vitest run --project quiet --reporter=default --reporter=json \
    --outputFile="$quiet_dir/report.json" >"$quiet_dir/out" 2>&1 &
  quiet=$!
  npx vitest run --project suite --project shared --project alone "$@" || tests=$?
  wait "$quiet" || tests=1
  echo "--- the files that mostly wait (vitest --project quiet), run beside the others:"
  cat "$quiet_dir/out"
  if [ -n "$report" ] && [ -f "$report" ] && [ -f "$quiet_dir/report.json" ]; then
    node -e '
const fs = require("node:fs");
const [into, from] = process.argv.slice(1).map((f) => JSON.parse(fs.readFileSync(f, "utf8")));
for (const [key, value] of Object.entries(from)) if (key.startsWith("num")) into[key] += value;
into.success &&= from.success;
into.testResults.push(...from.testResults);
fs.writeFileSync(process.argv[1], JSON.stringify(into));
' "$report" "$quiet_dir/report.json" || tests=1
  fi
  rm -rf "$quiet_dir"
else
  npx vitest run "$@" || tests=$?
fi

[ "${SWITCHBOARD_TEST_CHECKS:-}" = done ] && exit "$tests"
wait "$checks"
checked=$?
echo "npm run checks (typecheck, eslint, prettier): exit $checked"
[ "$checked" -eq 0 ] || cat "$checks_out"
rm -f "$checks_out"
[ "$tests" -eq 0 ] && [ "$checked" -eq 0 ]
