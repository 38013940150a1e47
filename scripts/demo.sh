#!/usr/bin/env bash
# The main job, on a fresh machine: installs OpenBao if needed, starts a local
# dev server, writes sample secrets shaped like agenticverz/database and
# agenticverz/app-prod, and loads them through vault-config.
# Usage: bash scripts/demo.sh [demo|derive|rotation|dynamic|aion|health|tls]
#   demo: the provider; derive: #[derive(VaultConfig)]; rotation: hot reload, with a
#   secret rotated by `bao kv put` while the example runs.
#   dynamic: PostgreSQL credentials leased from the database engine, swapped in a pool.
#   aion: the AION-OS layout, with secret paths chosen by AION_*_SECRET_PATH at deploy time.
#   health: a service serving /api/v1/health and /metrics; curls both through a
#   rotation and an outage (HEALTH_PORT, default 18280).
#   tls: an HTTPS server whose certificate Vault's PKI engine issues (12 s at most
#   here) and issues again while it runs; curl shows the serial change (TLS_PORT,
#   default 18443).
set -euo pipefail
example="${1:-demo}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bin="$(bash scripts/install-openbao.sh | tail -n 1)"
# Compile first, with cargo's progress shown: a first run builds for a minute or two.
target="$example"
[ "$example" = dynamic ] && target=dynamic_db
[ "$example" = aion ] && target=aion_service
features=()
[ "$example" = health ] && target=health_server && features=(--features metrics)
[ "$example" = tls ] && target=tls_server && features=(--features rustls)
echo "demo: building crates/vault-config/examples/$target.rs (the first build takes a few minutes)"
cargo build --example "$target" ${features[@]+"${features[@]}"}
port="${DEMO_PORT:-18200}"
busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if busy "$port"; then
  echo "demo: port $port on 127.0.0.1 is in use; choose another with DEMO_PORT=<port> bash scripts/demo.sh $example" >&2
  exit 1
fi
token="demo-root-$$"
home="$(mktemp -d)"
HOME="$home" "$bin" server -dev -dev-root-token-id="$token" -dev-listen-address="127.0.0.1:$port" >"$home/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$home"' EXIT
export VAULT_ADDR="http://127.0.0.1:$port" VAULT_TOKEN="$token" BAO_ADDR="http://127.0.0.1:$port" BAO_TOKEN="$token"
for _ in $(seq 1 200); do
  if HOME="$home" "$bin" status >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then
    cat "$home/server.log" >&2
    echo "demo: the dev server did not start (above: its log); if port $port is taken, set DEMO_PORT" >&2
    exit 1
  fi
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
echo "demo: OpenBao dev server at $VAULT_ADDR"
export VAULT_KV_MOUNT=agenticverz
# Not in Vault: read from env as the fallback.
export LOG_LEVEL=info
if [ "$example" = aion ]; then
  # The seed's contract: AION_VAULT_*, a kv mount, and paths chosen by env.
  HOME="$home" "$bin" secrets enable -path=kv kv-v2 >/dev/null
  for db in db-main db-replica; do
    # JSON from stdin, so the port is the number 5432, as the seed stores it.
    printf '{"username":"aionos","password":"demo-%s-password","host":"%s.internal","port":5432,"database":"aionos"}' "$db" "$db" |
      HOME="$home" "$bin" kv put -mount=kv "aionos/$db" - >/dev/null
  done
  HOME="$home" "$bin" kv put -mount=kv aionos/minio endpoint=http://minio:9000 access_key=aion \
    secret_key=demo-minio-secret >/dev/null
  echo '{"public_keys": ["-----BEGIN PUBLIC KEY-----demo-----END PUBLIC KEY-----"]}' |
    HOME="$home" "$bin" kv put -mount=kv aionos/jwt - >/dev/null
  HOME="$home" "$bin" kv put -mount=kv aionos/gateway-api-keys console=demo-console-key \
    billing=demo-billing-key >/dev/null
  HOME="$home" "$bin" kv put -mount=kv aionos/admin-token token=demo-admin-token >/dev/null
  echo "demo: the operator moves the database to the replica: AION_DB_SECRET_PATH=aionos/db-replica"
  AION_VAULT_ADDR="$VAULT_ADDR" AION_VAULT_TOKEN="$VAULT_TOKEN" AION_VAULT_KV_MOUNT=kv \
    AION_DB_SECRET_PATH=aionos/db-replica cargo run --quiet --example aion_service
elif [ "$example" = dynamic ]; then
  # A throwaway PostgreSQL cluster on loopback, run as the postgres user when root.
  pgbin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$pgbin" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  fi
  pgdir="$home/pg"; mkdir -p "$pgdir"
  as_pg=()
  if [ "$(id -u)" = 0 ]; then chown postgres "$pgdir" "$home"; as_pg=(runuser -u postgres --); fi
  pgport="${DEMO_PG_PORT:-15432}"
  if busy "$pgport"; then
    echo "demo: port $pgport on 127.0.0.1 is in use; choose another with DEMO_PG_PORT=<port>" >&2
    exit 1
  fi
  "${as_pg[@]}" "$pgbin/initdb" -D "$pgdir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -o "-p $pgport -k $pgdir -c listen_addresses=127.0.0.1" -l "$pgdir/log" -w start >/dev/null
  trap '"${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate stop >/dev/null 2>&1; kill "$server" 2>/dev/null || true; rm -rf "$home"' EXIT
  "${as_pg[@]}" "$pgbin/psql" -h "$pgdir" -p "$pgport" -U postgres -qc "CREATE ROLE vaultadmin WITH LOGIN SUPERUSER PASSWORD 'demo-admin'"
  HOME="$home" "$bin" secrets enable database >/dev/null
  HOME="$home" "$bin" write database/config/pg plugin_name=postgresql-database-plugin allowed_roles='*' \
    connection_url="postgresql://{{username}}:{{password}}@127.0.0.1:$pgport/postgres?sslmode=disable" \
    username=vaultadmin password=demo-admin >/dev/null
  HOME="$home" "$bin" write database/roles/app db_name=pg default_ttl=4s max_ttl=4s \
    creation_statements="CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';" >/dev/null
  HOME="$home" "$bin" kv put -mount=secret backend/database host=127.0.0.1 port="$pgport" >/dev/null
  echo "demo: PostgreSQL on 127.0.0.1:$pgport; database/creds/app leases last 4 s"
  unset VAULT_KV_MOUNT
  SWAPS=2 cargo run --quiet --example dynamic_db
elif [ "$example" = health ]; then
  hport="${HEALTH_PORT:-18280}"
  if busy "$hport"; then
    echo "demo: port $hport on 127.0.0.1 is in use; choose another with HEALTH_PORT=<port>" >&2
    exit 1
  fi
  HEALTH_ADDR="127.0.0.1:$hport" WATCH_INTERVAL_MS=500 cargo run --quiet --example health_server --features metrics &
  service=$!
  trap 'kill "$service" 2>/dev/null || true; kill "$server" 2>/dev/null || true; rm -rf "$home"' EXIT
  for _ in $(seq 1 100); do busy "$hport" && break; kill -0 "$service" 2>/dev/null || exit 1; sleep 0.1; done
  show() {
    echo "--- $1"
    echo "\$ curl -s http://127.0.0.1:$hport/api/v1/health"
    curl -s "http://127.0.0.1:$hport/api/v1/health"; echo
    echo "\$ curl -s http://127.0.0.1:$hport/metrics | grep -E '^vault_config_(loads|polls|reloads|requests)_total|last_success'"
    curl -s "http://127.0.0.1:$hport/metrics" | grep -E '^vault_config_(loads|polls|reloads|requests)_total|last_success' || true
  }
  show "started"
  echo "demo: operator rotates agenticverz/app-prod#AOS_API_KEY"
  HOME="$home" "$bin" kv patch -mount=agenticverz app-prod AOS_API_KEY=rotated-api-key >/dev/null
  sleep 1.5
  show "after the rotation: reloads_total 1"
  echo "demo: Vault stops"
  kill "$server"; wait "$server" 2>/dev/null || true
  sleep 2
  show "during the outage: vault_connected false, polls fail as unavailable, the service keeps its config"
  kill "$service"; wait "$service" 2>/dev/null || true
elif [ "$example" = tls ]; then
  command -v curl >/dev/null || { echo "demo: tls needs curl (apt-get install curl)" >&2; exit 1; }
  tport="${TLS_PORT:-18443}"
  if busy "$tport"; then
    echo "demo: port $tport on 127.0.0.1 is in use; choose another with TLS_PORT=<port>" >&2
    exit 1
  fi
  # A PKI engine with a root CA made here, and a role issuing for localhost
  # for 12 s at most, so the server has to get new certificates as it runs.
  HOME="$home" "$bin" secrets enable pki >/dev/null
  HOME="$home" "$bin" secrets tune -max-lease-ttl=87600h pki >/dev/null
  HOME="$home" "$bin" write -field=certificate pki/root/generate/internal \
    common_name="vault-config demo CA" ttl=87600h 2>/dev/null >"$home/ca.pem"
  HOME="$home" "$bin" write pki/roles/web allowed_domains=localhost allow_bare_domains=true \
    allow_localhost=true allow_ip_sans=true max_ttl=12s >/dev/null
  echo "demo: PKI role pki/roles/web issues certificates for localhost, valid 12 s"
  TLS_ADDR="127.0.0.1:$tport" EXIT_AFTER_RELOADS=3 cargo run --quiet --example tls_server --features rustls &
  service=$!
  trap 'kill "$service" 2>/dev/null || true; kill "$server" 2>/dev/null || true; rm -rf "$home"' EXIT
  for _ in $(seq 1 100); do busy "$tport" && break; kill -0 "$service" 2>/dev/null || exit 1; sleep 0.1; done
  for round in 1 2 3; do
    echo "--- request $round"
    echo "\$ curl --cacert ca.pem https://localhost:$tport/"
    curl -sS --cacert "$home/ca.pem" -v "https://localhost:$tport/" 2>&1 |
      grep -E '^\* +(subject|expire date):|serial' || true
    [ "$round" = 3 ] || sleep 9
  done
  wait "$service" || true
elif [ "$example" = rotation ]; then
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
