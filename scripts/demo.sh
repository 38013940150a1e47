#!/usr/bin/env bash
# The main job, on a fresh machine: installs OpenBao if needed, starts a local
# dev server, writes sample secrets shaped like agenticverz/database and
# agenticverz/app-prod, and loads them through vault-config.
# Usage: bash scripts/demo.sh [demo|derive|rotation]
#   demo: the provider; derive: #[derive(VaultConfig)]; rotation: hot reload, with a
#   secret rotated by `bao kv put` while the example runs.
set -euo pipefail
example="${1:-demo}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bin="$(bash scripts/install-openbao.sh | tail -n 1)"
port="${DEMO_PORT:-18200}"
token="demo-root-$$"
home="$(mktemp -d)"
HOME="$home" "$bin" server -dev -dev-root-token-id="$token" -dev-listen-address="127.0.0.1:$port" >"$home/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$home"' EXIT
export VAULT_ADDR="http://127.0.0.1:$port" VAULT_TOKEN="$token" BAO_ADDR="http://127.0.0.1:$port" BAO_TOKEN="$token"
for _ in $(seq 1 200); do
  if HOME="$home" "$bin" status >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then cat "$home/server.log" >&2; exit 1; fi
  sleep 0.1
done
HOME="$home" "$bin" secrets enable -path=agenticverz kv-v2 >/dev/null
HOME="$home" "$bin" kv put -mount=agenticverz database \
  POSTGRES_USER=aos POSTGRES_PASSWORD=demo-db-password port=5432 \
  DATABASE_URL=postgres://aos:demo-db-password@127.0.0.1:5432/aos >/dev/null
HOME="$home" "$bin" kv put -mount=agenticverz app-prod \
  AOS_API_KEY=demo-aos-api-key MACHINE_SECRET_TOKEN=demo-machine-token >/dev/null
HOME="$home" "$bin" kv put -mount=agenticverz keycloak-admin \
  KEYCLOAK_ADMIN=admin KEYCLOAK_ADMIN_PASSWORD=demo-keycloak-password >/dev/null
echo "demo: OpenBao dev server at $VAULT_ADDR with agenticverz/database, agenticverz/app-prod and agenticverz/keycloak-admin"
export VAULT_KV_MOUNT=agenticverz
# Not in Vault: read from env as the fallback.
export LOG_LEVEL=info
if [ "$example" = rotation ]; then
  cargo build --quiet --example rotation
  WATCH_INTERVAL_SECS=1 EXIT_AFTER_RELOADS=1 cargo run --quiet --example rotation &
  service=$!
  sleep 3
  echo "demo: operator rotates agenticverz/database#DATABASE_URL"
  HOME="$home" "$bin" kv put -mount=agenticverz database \
    POSTGRES_USER=aos POSTGRES_PASSWORD=demo-db-password port=5432 \
    DATABASE_URL=postgres://aos:rotated-password@127.0.0.1:5432/aos >/dev/null
  wait "$service"
else
  cargo run --quiet --example "$example"
fi
