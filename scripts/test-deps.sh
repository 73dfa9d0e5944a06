#!/usr/bin/env bash
# What the tests run for real besides the project's node_modules:
# - the published agent adapters of the real-agent tests (Claude Code's, Gemini CLI, Codex's),
#   a package of their own in test/agents/packages with its own lockfile, so that `npm ci` of the
#   project does not install them (some 680 MB): `npm ci` there when its node_modules is missing
#   or older than its lockfile, its output in a log printed only on failure;
# - the Debian packages, installed when it can (root with apt-get), otherwise named with the
#   command that installs them.
#   tmux: CLI attach tests · chromium: web UI tests · redis-server, redis-sentinel: cluster tests
#   nginx-light: trusted-proxy tests · vim, htop, procps (top), less: screen tests
#   bubblewrap: Codex's default sandbox in the real-agent tests
#   faketime (libfaketime): a resumed Gemini CLI's clock a minute on, in the real-agent loop
set -euo pipefail
cd "$(dirname "$0")/.."

agents=test/agents/packages
if [ ! -f "$agents/node_modules/.package-lock.json" ] || [ "$agents/package-lock.json" -nt "$agents/node_modules/.package-lock.json" ]; then
  log=$(mktemp)
  echo "test-deps: installing the real-agent tests' agents (npm ci in $agents)" >&2
  # claude-agent-acp declares Node >= 22 and runs on 20 (docs/agents.md, "Real agents"): its
  # EBADENGINE warning is expected here, so npm says only errors.
  if ! npm ci --prefix "$agents" --no-audit --no-fund --loglevel=error >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "test-deps: npm ci in $agents failed" >&2
    exit 1
  fi
  rm -f "$log"
fi

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have vim || need+=(vim)
have htop || need+=(htop)
have top || need+=(procps)
have less || need+=(less)
have tmux || need+=(tmux)
have chromium || need+=(chromium)
have redis-server || need+=(redis-server)
have redis-sentinel || need+=(redis-sentinel)
have bwrap || need+=(bubblewrap)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ -f /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || have faketime || need+=(faketime)
[ "${#need[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && have apt-get; then
  echo "test-deps: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
  exit 0
fi
echo "test-deps: the tests need ${need[*]}; install them with: sudo apt-get install -y ${need[*]}" >&2
exit 1
