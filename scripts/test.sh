#!/usr/bin/env bash
# `npm test`: the static checks (typecheck, eslint, prettier) run beside the test files, at the
# lowest priority so that they never slow a test; what they said is printed after the tests.
# SWITCHBOARD_TEST_CHECKS=done skips them (.ci/run starts them earlier, on the core its install
# leaves idle). Arguments go to vitest. Fails when either fails.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${SWITCHBOARD_TEST_CHECKS:-}" = done ]; then
  exec npx vitest run "$@"
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
nice -n 19 npm run -s checks >"$out" 2>&1 &
checks=$!
npx vitest run "$@"
tests=$?
wait "$checks"
checked=$?
echo "npm run checks (typecheck, eslint, prettier): exit $checked"
[ "$checked" -eq 0 ] || cat "$out"
[ "$tests" -eq 0 ] && [ "$checked" -eq 0 ]
