#!/usr/bin/env bash
# The one test command (README, CI): installs what the tests drive, builds, lints, then runs every
# test: the fast unit project and the slow project that drives real OVN, stunnel and openssl.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then
  scripts/install-deps.sh test metadata build
else
  echo "test.sh: not root; skipping system package installation (real-daemon tests need root)" >&2
fi
npm ci --no-audit --no-fund --loglevel=error
npm run build
npm run lint
# The full run (no arguments) as root, or in CI, must execute every slow test: a skipped one fails it
# (test/reporters/skips.ts). A run narrowed by arguments only reports what it skipped.
if [ "$#" -eq 0 ] && { [ "$(id -u)" -eq 0 ] || [ -n "${CI:-}" ]; }; then
  export OVN_DEPLOY_REQUIRE_SLOW=1
fi
if [ "$#" -gt 0 ]; then
  exec npx vitest run "$@"
fi
# Two lanes at once: the compilers and packagers (slow-build: CPU-bound, no daemon) at a lower
# priority beside the unit tests and the daemon tests (slow: mostly waiting on elections, timeouts
# and SSH), so the builds take the cores the daemons leave idle. Each lane runs its files one at a
# time; the build lane's lines are prefixed. The run fails if either lane fails.
started=$(date +%s)
( set -o pipefail; nice -n 10 npx vitest run --project slow-build 2>&1 | sed -u 's/^/[slow-build] /' ) &
build_lane=$!
rc=0
npx vitest run --project unit --project slow || rc=$?
wait "$build_lane" || rc=$?
echo "test.sh: both lanes done in $(( $(date +%s) - started )) s (exit $rc)"
exit "$rc"
