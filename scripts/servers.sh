# PostgreSQL and Redis for the tests (sourced by scripts/test, after ensure_venv). In order:
# the servers the caller names (TEST_POSTGRES_URL, TEST_REDIS_URL), the machine's own on the
# usual ports, else throwaway ones started in a temporary folder on free loopback ports and
# stopped by stop_test_servers. TEST_SERVERS=throwaway skips the machine's own.
# shellcheck shell=bash

MACHINE_POSTGRES_URL="postgresql://postgres@127.0.0.1:5432/postgres"
MACHINE_REDIS_URL="redis://127.0.0.1:6379"
TEST_SERVERS_DIR=""

_free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

_postgres_answers() { # URL
  "$PY" - "$1" > /dev/null 2>&1 <<'PY'
import sys
from sqlalchemy import create_engine, text
with create_engine(sys.argv[1], connect_args={"connect_timeout": 3}).connect() as connection:
    connection.execute(text("SELECT 1"))
PY
}

_redis_answers() { # URL
  "$PY" -c 'import sys, redis; redis.Redis.from_url(sys.argv[1], socket_timeout=3).ping()' \
    "$1" > /dev/null 2>&1
}

_postgres_bin() {
  local bin
  bin="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)"
  [ -x "$bin/initdb" ] && echo "$bin"
}

# A PostgreSQL cluster of its own in DIR (created; its parent must be reachable by the
# `postgres` user when run as root, since PostgreSQL refuses to run as root). Prints its URL.
throwaway_postgres_start() { # DIR
  local dir="$1" bin port
  bin="$(_postgres_bin)" || { install_debian_package postgresql PostgreSQL "une minute environ" && bin="$(_postgres_bin)"; } || {
    echo "ERREUR : initdb est introuvable (/usr/lib/postgresql/*/bin) ; installez postgresql." >&2
    return 1
  }
  local as=()
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir"
    as=(runuser -u postgres --)
  fi
  port="$(_free_port)"
  "${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale --no-sync \
    > "$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
  "${as[@]}" "$bin/pg_ctl" start -w -D "$dir/data" -l "$dir/postgres.log" -o \
    "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    > /dev/null || { cat "$dir/postgres.log" >&2; return 1; }
  echo "postgresql://postgres@127.0.0.1:$port/postgres"
}

throwaway_postgres_stop() { # DIR
  local bin as=()
  [ -f "$1/data/postmaster.pid" ] || return 0
  bin="$(_postgres_bin)" || return 0
  [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
  "${as[@]}" "$bin/pg_ctl" stop -w -m fast -D "$1/data" > /dev/null 2>&1 || true
}

# A Redis server of its own, without persistence, working in DIR. Prints its URL.
throwaway_redis_start() { # DIR
  local dir="$1" port
  command -v redis-server > /dev/null || install_debian_package redis-server Redis "quelques secondes" || return 1
  mkdir -p "$dir"
  port="$(_free_port)"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" > /dev/null
  local tries=0
  until _redis_answers "redis://127.0.0.1:$port"; do
    tries=$((tries + 1))
    [ "$tries" -lt 50 ] || { echo "ERREUR : redis-server ne répond pas ($dir/redis.log)." >&2; return 1; }
    sleep 0.2
  done
  echo "redis://127.0.0.1:$port"
}

throwaway_redis_stop() { # DIR
  [ -f "$1/redis.pid" ] || return 0
  kill "$(cat "$1/redis.pid")" 2>/dev/null || true
}

_test_servers_dir() {
  if [ -z "$TEST_SERVERS_DIR" ]; then
    TEST_SERVERS_DIR="$(mktemp -d "${TMPDIR:-/tmp}/test-servers.XXXXXX")"
    chmod 711 "$TEST_SERVERS_DIR" # the postgres user must reach its folder inside
  fi
  echo "$TEST_SERVERS_DIR"
}

# Exports TEST_POSTGRES_URL and TEST_REDIS_URL for tests/conftest.py; says which servers.
ensure_test_servers() {
  _choose_test_server PostgreSQL TEST_POSTGRES_URL "$MACHINE_POSTGRES_URL" _postgres_answers \
    throwaway_postgres_start postgres &&
    _choose_test_server Redis TEST_REDIS_URL "$MACHINE_REDIS_URL" _redis_answers \
      throwaway_redis_start redis
}

# Exports VARIABLE: the caller's, else the machine's server when it answers, else a throwaway one.
_choose_test_server() { # label, VARIABLE, machine's URL, check function, start function, folder
  local label="$1" variable="$2" machine="$3" answers="$4" start="$5" folder="$6" url address
  if [ -n "${!variable:-}" ]; then
    "$answers" "${!variable}" ||
      echo "ATTENTION : $variable ne répond pas ; les tests qui l'utilisent échoueront." >&2
    echo "$label : $variable" >&2
  elif [ "${TEST_SERVERS:-}" != throwaway ] && "$answers" "$machine"; then
    export "$variable=$machine"
    address="${machine#*://}" address="${address#*@}"
    echo "$label : celui de la machine (${address%%/*})" >&2
  else
    _test_servers_dir > /dev/null
    url="$("$start" "$TEST_SERVERS_DIR/$folder")" || return 1
    export "$variable=$url"
    echo "$label : jetable, $url (arrêté à la fin)" >&2
  fi
}

stop_test_servers() {
  [ -n "$TEST_SERVERS_DIR" ] || return 0
  throwaway_redis_stop "$TEST_SERVERS_DIR/redis"
  throwaway_postgres_stop "$TEST_SERVERS_DIR/postgres"
  rm -rf "$TEST_SERVERS_DIR"
  TEST_SERVERS_DIR=""
}
