#!/usr/bin/env bash
# The README's first command: install snapstore, then run its main job on the embedded
# default (an SQLite agent, a local repository): snapshot, change the agent, snapshot again.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
# An editable install: later code changes need no reinstall (delete .venv to start afresh).
[ -x .venv/bin/snapstore ] || .venv/bin/pip install -q -e . >/dev/null
export PATH="$PWD/.venv/bin:$PATH"
work="${DEMO_DIR:-$(mktemp -d /tmp/snapstore-demo.XXXXXX)}"
echo "== working in $work"
snapstore sample-agent "$work/agent" --scale "${DEMO_SCALE:-20}" --seed 1
export SNAPSTORE_REPO="$work/repo"
snapstore init
snapstore backup --config "$work/agent/mirix.yaml" --include-logs --tag first
snapstore backup --config "$work/agent/mirix.yaml" --include-logs --tag unchanged
snapstore sample-agent "$work/agent" --mutate 0.01 --seed 2
snapstore backup --config "$work/agent/mirix.yaml" --include-logs --tag after-a-day
snapstore snapshots
snapstore ls latest
echo "== repository: $SNAPSTORE_REPO ($(du -sh "$SNAPSTORE_REPO" | cut -f1)); agent database: $(du -sh "$work/agent/sqlite.db" | cut -f1)"
echo "== the demo's files are left in $work ($(du -sh "$work" | cut -f1) in all, agent/ and repo/) to explore;"
echo "   remove them with: rm -rf $work   (set DEMO_DIR=PATH to choose the place)"
