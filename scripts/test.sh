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
npx vitest run "$@"
