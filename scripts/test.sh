#!/usr/bin/env bash
# Runs every test of the workspace against real OpenBao dev servers, installing
# what they need first. Usage: bash scripts/test.sh [extra cargo test args]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
VAULT_BIN="$(bash scripts/install-openbao.sh | tail -n 1)"
# The JWT tests sign with the openssl CLI.
if ! command -v openssl >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq openssl >/dev/null
  else
    echo "test.sh: openssl is needed by the JWT tests: install it" >&2
    exit 1
  fi
fi
export VAULT_BIN
echo "test.sh: using $VAULT_BIN"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --lib --tests --examples "$@" 2>&1 | tee "$log" || status=$?
if [ "$status" -eq 0 ]; then
  cargo test --workspace --doc "$@" 2>&1 | tee -a "$log" || status=$?
fi
# One closing line over every test binary and doctest run above.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
