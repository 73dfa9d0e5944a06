#!/usr/bin/env bash
# What the tests run for real besides Node: installs the missing Debian packages when it can
# (root with apt-get), and otherwise names them and the command that installs them.
#   tmux: CLI attach tests · chromium: web UI tests · redis-server, redis-sentinel: cluster tests
#   nginx-light: trusted-proxy tests · vim, htop, procps (top), less: screen tests
#   bubblewrap: Codex's default sandbox in the real-agent tests
set -euo pipefail

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
