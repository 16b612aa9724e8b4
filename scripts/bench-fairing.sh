#!/usr/bin/env bash
# Requests/s and latency over real HTTP of the same routes with and without the
# sessions fairing, plus database statements per request, on SQLite, on
# PostgreSQL (when SESSIONS_TEST_POSTGRES_URL is set; also with
# `durable_commits = false`) and on MariaDB/MySQL (when SESSIONS_TEST_MYSQL_URL
# is set). Prints a Markdown table.
#
#   scripts/bench-fairing.sh [seconds per run, default 10]
#
# BENCH_BIN_DIR=DIR runs DIR/examples/bench_app instead of building one (to
# measure another commit's build with this script: copy its
# target/release/examples/bench_app there).
#
# BENCH_SESSION_EXTRA adds keys to the sessions apps' `session` section, e.g.
# BENCH_SESSION_EXTRA='audit=true,record_client=true' (client metadata is on by
# default; the audit log is not).
#
# Peak memory is each app's VmHWM after its runs. The CPU columns are the
# app's and the database server's CPU time (user + system, from /proc) over
# the run, divided by its requests; wrk's own is not counted.
#
# Routes (session-fairing/examples/bench_app.rs): GET /read reads one session
# value; POST /write increments it; GET /plain is a route of the sessions app
# without the guard, requested with a valid session cookie (lazy loading: it
# should cost what the bare route costs). The read run uses one session; the
# write run rotates over 64 sessions, one per simulated client. wrk: 2 threads,
# 32 connections.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
work="$(mktemp -d)"
# The apps' pids are in $work/pid-PORT (`start` runs in a command substitution,
# a subshell, so it cannot add to an array of this shell).
stop_apps() {
    local file pid
    for file in "$work"/pid-*; do
        [ -e "$file" ] || continue
        pid="$(cat "$file")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$file"
    done
}
cleanup() { stop_apps; rm -rf "$work"; }
trap cleanup EXIT
source scripts/bench-lib.sh
if [ -n "${BENCH_BIN_DIR:-}" ]; then
    app="$BENCH_BIN_DIR/examples/bench_app"
else
    cargo build --release -q -p session-fairing --example bench_app "${features[@]}"
    app="${CARGO_TARGET_DIR:-target}/release/examples/bench_app"
fi

# peak RSS (VmHWM) of the app listening on PORT, in MiB
peak_mib() {
    local pid
    pid="$(cat "$work/pid-$1")"
    awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status"
}

# start MODE DATABASE_URL [count] -> prints the port once the app answers
start() {
    local mode="$1" url="$2" count="${3:-false}" port
    port="$(free_port)"
    BENCH_MODE="$mode" BENCH_COUNT_STATEMENTS="$count" ROCKET_PORT="$port" ROCKET_ADDRESS=127.0.0.1 ROCKET_LOG_LEVEL=off \
        ROCKET_SESSION="{timeout_minutes=30,database_url=\"$url\",cookie_secure=false,purge_interval_seconds=0${BENCH_SESSION_EXTRA:+,$BENCH_SESSION_EXTRA}}" \
        "$app" >"$work/$mode-$port.log" 2>&1 &
    echo $! >"$work/pid-$port"
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$port/read" >/dev/null 2>&1 && { echo "$port"; return; }
        sleep 0.1
    done
    echo "app ($mode) did not start:" >&2; cat "$work/$mode-$port.log" >&2; exit 1
}

statements() { curl -fs "http://127.0.0.1:$1/statements"; }

# cpu_ticks PORT -> "app server": CPU time so far (user + system, in µs) of
# the app on PORT and of every database server process on this machine
# (PostgreSQL's backends and workers, mariadbd; approximate: other clients of
# the same servers count too, and a backend that exits mid-run is lost).
cpu_ticks() {
    python3 - "$(cat "$work/pid-$1")" <<'PY'
import os, subprocess, sys
def ticks(pid):
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1_000_000 // os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return 0
servers = subprocess.run(["pgrep", "-f", "^postgres: |mariadbd|mysqld"], capture_output=True, text=True).stdout.split()
print(ticks(sys.argv[1]), sum(ticks(pid) for pid in servers))
PY
}
# Only the counting app serves real numbers; the others have counting off.

# run NAME PORT METHOD PATH [session-ids-file] -> "rps p50 p99 requests
# non2xx app-cpu db-cpu", the CPU columns in µs per request
run() {
    local port="$2" method="$3" path="$4" ids="${5:-}"
    local out app0 db0 app1 db1
    read -r app0 db0 <<<"$(cpu_ticks "$port")"
    if [ -n "$ids" ]; then
        out="$(SESSION_IDS="$ids" WRK_METHOD="$method" wrk -t2 -c32 -d"${duration}s" --latency -s "$work/rotate.lua" "http://127.0.0.1:$port$path")"
    else
        out="$(wrk -t2 -c32 -d"${duration}s" --latency "http://127.0.0.1:$port$path")"
    fi
    local rps p50 p99 requests non2xx
    rps="$(awk '/Requests\/sec/ { print $2 }' <<<"$out")"
    p50="$(awk '$1 == "50%" { print $2 }' <<<"$out")"
    p99="$(awk '$1 == "99%" { print $2 }' <<<"$out")"
    requests="$(awk '/requests in/ { print $1 }' <<<"$out")"
    non2xx="$(awk '/Non-2xx/ { print $4 }' <<<"$out")"
    read -r app1 db1 <<<"$(cpu_ticks "$port")"
    echo "$rps $p50 $p99 $requests ${non2xx:-0} $(python3 -c "print(f'{($app1 - $app0) / $requests:.1f} {($db1 - $db0) / $requests:.1f}')")"
}

# The median by requests/s of run lines on stdin.
median() { grep -v '^$' | sort -g -k1,1 | awk '{ lines[NR] = $0 } END { print lines[int((NR + 1) / 2)] }'; }

per_request() { # before after requests field
    python3 -c "import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); n=int(sys.argv[3]); print(f'{(b[sys.argv[4]]-a[sys.argv[4]])/n:.2f}')" "$1" "$2" "$3" "$4"
}

echo "| backend | route | requests/s | vs bare | p50 | p99 | SELECT/req | writes/req | errors | app CPU/req | server CPU/req |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"

# Throughput runs use an app without statement counting (it renders each
# statement's SQL); a second app on the same database counts statements in a
# short run of the same load.
bench_backend() { # name url
    local name="$1" url="$2"
    local bare sessions counted
    bare="$(start bare "$url")"
    sessions="$(start sessions "$url")"
    counted="$(start sessions "$url" true)"
    new_session "$sessions" >"$work/one.ids"
    # The bare route and the sessions app's route without the guard alternate,
    # five runs each, and each row shows its median run: two runs of the same
    # app differ by up to ~10% on this machine.
    local bare_runs="" plain_runs=""
    for _ in 1 2 3 4 5; do
        bare_runs+="$(run bare "$bare" GET /read)"$'\n'
        plain_runs+="$(run sessions "$sessions" GET /plain "$work/one.ids")"$'\n'
    done
    read -r bare_rps bare_p50 bare_p99 _ _ bare_app bare_db <<<"$(median <<<"$bare_runs")"
    spreads+=("$name: bare GET /read $(awk 'NF { printf "%s%.0f", sep, $1; sep = " / " }' <<<"$bare_runs"), GET /plain with a cookie $(awk 'NF { printf "%s%.0f", sep, $1; sep = " / " }' <<<"$plain_runs") requests/s")
    echo "| $name | bare GET /read (median of 5) | $bare_rps | 100% | $bare_p50 | $bare_p99 | 0 | 0 | 0 | $bare_app µs | $bare_db µs |"
    read -r hop_rps hop_p50 hop_p99 _ _ hop_app hop_db <<<"$(run bare "$bare" GET /hop)"
    echo "| $name | bare GET /hop (one spawn_blocking, no database) | $hop_rps | $(python3 -c "print(f'{$hop_rps/$bare_rps*100:.0f}%')") | $hop_p50 | $hop_p99 | 0 | 0 | 0 | $hop_app µs | $hop_db µs |"
    local before after n app db
    read -r rps p50 p99 _ errors app db <<<"$(median <<<"$plain_runs")"
    before="$(statements "$counted")"
    read -r _ _ _ n _ <<<"$(duration=2 run sessions "$counted" GET /plain "$work/one.ids")"
    after="$(statements "$counted")"
    echo "| $name | sessions app, GET /plain without the guard, with a valid cookie (median of 5) | $rps | $(python3 -c "print(f'{$rps/$bare_rps*100:.0f}%')") | $p50 | $p99 | $(per_request "$before" "$after" "$n" reads) | $(per_request "$before" "$after" "$n" writes) | $errors | $app µs | $db µs |"
    read -r rps p50 p99 _ errors app db <<<"$(run sessions "$sessions" GET /read "$work/one.ids")"
    before="$(statements "$counted")"
    read -r _ _ _ n _ <<<"$(duration=2 run sessions "$counted" GET /read "$work/one.ids")"
    after="$(statements "$counted")"
    echo "| $name | session GET /read | $rps | $(python3 -c "print(f'{$rps/$bare_rps*100:.0f}%')") | $p50 | $p99 | $(per_request "$before" "$after" "$n" reads) | $(per_request "$before" "$after" "$n" writes) | $errors | $app µs | $db µs |"
    read -r wb_rps wb_p50 wb_p99 _ _ app db <<<"$(run bare "$bare" POST /write "$work/one.ids")"
    echo "| $name | bare POST /write | $wb_rps | 100% | $wb_p50 | $wb_p99 | 0 | 0 | 0 | $app µs | $db µs |"
    : >"$work/many.ids"
    for _ in $(seq 64); do new_session "$sessions" >>"$work/many.ids"; done
    read -r rps p50 p99 _ errors app db <<<"$(run sessions "$sessions" POST /write "$work/many.ids")"
    before="$(statements "$counted")"
    read -r _ _ _ n _ <<<"$(duration=2 run sessions "$counted" POST /write "$work/many.ids")"
    after="$(statements "$counted")"
    echo "| $name | session POST /write (64 sessions) | $rps | $(python3 -c "print(f'{$rps/$wb_rps*100:.0f}%')") | $p50 | $p99 | $(per_request "$before" "$after" "$n" reads) | $(per_request "$before" "$after" "$n" writes) | $errors | $app µs | $db µs |"
    peaks+=("$name: bare app $(peak_mib "$bare") MiB, sessions app $(peak_mib "$sessions") MiB")
    # Wait for the apps to exit, so the next backend's runs share the CPUs
    # with nothing left over from this one.
    stop_apps
}

peaks=()
spreads=()
bench_backend SQLite "$work/bench.sqlite"
if [ -n "${SESSIONS_TEST_POSTGRES_URL:-}" ]; then
    psql -q "$SESSIONS_TEST_POSTGRES_URL" -c "DROP SCHEMA IF EXISTS bench_fairing CASCADE; CREATE SCHEMA bench_fairing;"
    bench_backend PostgreSQL "$(postgres_schema_url bench_fairing)"
    BENCH_SESSION_EXTRA="durable_commits=false${BENCH_SESSION_EXTRA:+,$BENCH_SESSION_EXTRA}" \
        bench_backend "PostgreSQL, durable_commits = false" "$(postgres_schema_url bench_fairing)"
    psql -q "$SESSIONS_TEST_POSTGRES_URL" -c "DROP SCHEMA bench_fairing CASCADE;"
fi
if [ -n "${SESSIONS_TEST_MYSQL_URL:-}" ]; then
    bench_backend MariaDB "$(mysql_scratch_url bench_fairing)"
    mysql_admin "DROP DATABASE bench_fairing;"
fi

echo
echo "Peak RSS (VmHWM) after the runs: ${peaks[*]/%/;}"
echo
echo "The alternating runs, in order: ${spreads[*]/%/;}"
