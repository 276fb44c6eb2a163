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
npx vitest run "$@"
