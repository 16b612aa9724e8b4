# Shared by the bench-*.sh scripts (sourced, not run). Expects $work to be a
# scratch directory.

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }

# Cargo features for the backends whose server URL is set.
features=()
[ -n "${SESSIONS_TEST_POSTGRES_URL:-}" ] && features+=(--features postgres)
[ -n "${SESSIONS_TEST_MYSQL_URL:-}" ] && features+=(--features mysql)

# A TCP port nobody listens on right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A new session on the bench app at PORT (POST /write); prints its id.
new_session() { curl -fs -X POST -c - "http://127.0.0.1:$1/write" | awk '$6 == "session_id" { print $7 }'; }

# `$SESSIONS_TEST_POSTGRES_URL` with its search_path set to SCHEMA.
postgres_schema_url() {
    local sep='?'
    [[ "$SESSIONS_TEST_POSTGRES_URL" == *\?* ]] && sep='&'
    echo "${SESSIONS_TEST_POSTGRES_URL}${sep}options=-csearch_path%3D$1"
}

# mysql_admin SQL: runs SQL with the `mysql` client as the user, password
# (through MYSQL_PWD, not the command line), host and port of
# `$SESSIONS_TEST_MYSQL_URL`.
mysql_admin() {
    local args password
    password="$(python3 -c 'import sys; from urllib.parse import unquote, urlsplit; print(unquote(urlsplit(sys.argv[1]).password or ""))' "$SESSIONS_TEST_MYSQL_URL")"
    mapfile -t args < <(python3 - "$SESSIONS_TEST_MYSQL_URL" <<'PY'
import sys
from urllib.parse import unquote, urlsplit
url = urlsplit(sys.argv[1])
print(f"--user={unquote(url.username or 'root')}")
print(f"--host={url.hostname or '127.0.0.1'}")
print(f"--port={url.port or 3306}")
print("--protocol=tcp")
PY
)
    MYSQL_PWD="$password" mysql "${args[@]}" -e "$1"
}

# `$SESSIONS_TEST_MYSQL_URL` naming the database NAME instead, created empty.
mysql_scratch_url() {
    mysql_admin "DROP DATABASE IF EXISTS $1; CREATE DATABASE $1;"
    echo "${SESSIONS_TEST_MYSQL_URL%/*}/$1"
}

# wrk_round PORT -> "requests max p99": one 5-second round of POST /write
# rotating over the session ids in $work/ids.
wrk_round() {
    local out
    out="$(SESSION_IDS="$work/ids" WRK_METHOD=POST wrk -t2 -c16 -d5s --latency -s "$work/rotate.lua" "http://127.0.0.1:$1/write")"
    echo "$(awk '/requests in/ { print $1 }' <<<"$out") $(awk '$1 == "Latency" { print $4 }' <<<"$out") $(awk '$1 == "99%" { print $2 }' <<<"$out")"
}

# slower A B -> the larger of two wrk latencies ("850.00us", "12.3ms", "1.2s").
slower() {
    python3 - "$1" "$2" <<'PY'
import sys
def ms(v):
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * f
    return float(v)
a, b = sys.argv[1], sys.argv[2]
print(a if ms(a) >= ms(b) else b)
PY
}

# load_while PID: 5-second wrk rounds against the bench app on $port until
# PID exits (then waits for it); sets $worst (the slowest request), $p99s
# (each round's p99), $total (requests) and $rounds.
load_while() {
    worst="0ms"; p99s=(); total=0; rounds=0
    local n max p99
    while kill -0 "$1" 2>/dev/null; do
        read -r n max p99 <<<"$(wrk_round "$port")"
        total=$((total + n)); rounds=$((rounds + 1)); p99s+=("$p99")
        worst="$(slower "$worst" "$max")"
    done
    wait "$1"
}

# start_bench_app URL: the session-fairing bench app on a free port, writing
# to URL, with 64 sessions in $work/ids; sets $app_pid and $port.
start_bench_app() {
    port="$(free_port)"
    BENCH_MODE=sessions ROCKET_PORT="$port" ROCKET_ADDRESS=127.0.0.1 ROCKET_LOG_LEVEL=off \
        ROCKET_SESSION="{timeout_minutes=30,database_url=\"$1\",cookie_secure=false,purge_interval_seconds=0}" \
        "$target/examples/bench_app" >"$work/app.log" 2>&1 &
    app_pid=$!
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/read" >/dev/null 2>&1 && break; sleep 0.1; done
    : >"$work/ids"
    for _ in $(seq 64); do new_session "$port" >>"$work/ids"; done
}

# wrk script: each request carries the next session id from the file
# $SESSION_IDS, with method $WRK_METHOD (default GET).
cat >"$work/rotate.lua" <<'LUA'
local ids = {}
for line in io.lines(os.getenv("SESSION_IDS")) do ids[#ids + 1] = line end
local n = 0
request = function()
  n = n + 1
  local headers = { ["Cookie"] = "session_id=" .. ids[(n % #ids) + 1] }
  return wrk.format(os.getenv("WRK_METHOD") or "GET", nil, headers, nil)
end
LUA
