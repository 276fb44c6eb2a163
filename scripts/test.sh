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
# The build lane runs in a session of its own: with scheduler autogroups (Linux's default) nice
# only ranks processes of one session, and the daemon tests' hosts (podman containers) compete
# with each session as a whole; the session's own nice level (/proc/self/autogroup) is what
# yields to them.
started=$(date +%s)
lane_pid=$(mktemp)
# shellcheck disable=SC2016 # expanded by the inner shell
( set -o pipefail; setsid -w bash -c 'echo $$ > "$1"; echo 10 > /proc/self/autogroup 2>/dev/null; exec nice -n 10 npx vitest run --project slow-build' lane "$lane_pid" 2>&1 | sed -u 's/^/[slow-build] /' ) &
build_lane=$!
stop_build_lane() { [ -s "$lane_pid" ] && kill -- "-$(cat "$lane_pid")" 2>/dev/null; rm -f "$lane_pid"; }
trap 'stop_build_lane; exit 130' INT TERM
rc=0
npx vitest run --project unit --project slow || rc=$?
wait "$build_lane" || rc=$?
rm -f "$lane_pid"
echo "test.sh: both lanes done in $(( $(date +%s) - started )) s (exit $rc)"
exit "$rc"
