#!/usr/bin/env bash
# purge_expired on 1,000,000 expired sessions while the app serves writes:
# how long the purge takes, and the worst latency of app requests meanwhile.
#
#   scripts/bench-purge.sh [rows, default 1000000]
#
# The rows come from `session-inspector seed --expired`; the purge is
# `session-inspector purge` (batches of 1,000 rows, one statement each), a second
# process, as a cron job would run it. The app is session-fairing's bench_app;
# wrk sends POST /write rotating over 64 sessions (2 threads, 16 connections) in
# 5-second rounds: one round before the purge (baseline), then rounds until the
# purge ends. SQLite always; PostgreSQL too when SESSIONS_TEST_POSTGRES_URL is set,
# MariaDB/MySQL when SESSIONS_TEST_MYSQL_URL is.
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
work="$(mktemp -d)"
app_pid=""
cleanup() { [ -n "$app_pid" ] && kill "$app_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
source scripts/bench-lib.sh
cargo build --release -q -p session-fairing --example bench_app "${features[@]}"
cargo build --release -q -p session-inspector "${features[@]}"
target="${CARGO_TARGET_DIR:-target}/release"

bench() { # name url
    local name="$1" url="$2"
    local started seeded
    started=$(date +%s.%N)
    "$target/session-inspector" --database-url "$url" seed --count "$rows" --expired >/dev/null
    seeded=$(python3 -c "print(f'{$(date +%s.%N) - $started:.0f}')")
    start_bench_app "$url"
    read -r base_n base_max base_p99 <<<"$(wrk_round "$port")"

    started=$(date +%s.%N)
    "$target/session-inspector" --database-url "$url" purge >"$work/purge.out" &
    load_while $!
    local took
    took=$(python3 -c "print(f'{$(date +%s.%N) - $started:.1f}')")
    echo "| $name | $rows | ${seeded} s | $(cat "$work/purge.out") | ${took} s | $base_max / $base_p99 | $worst / ${p99s[*]:-none} | $total in $rounds × 5 s |"
    kill "$app_pid"; wait "$app_pid" 2>/dev/null || true; app_pid=""
}

echo "| backend | rows | seed | purge output | purge time | app max / p99 before | app max / p99s during | app requests during |"
echo "|---|---:|---:|---|---:|---|---|---|"
bench SQLite "$work/purge.sqlite"
if [ -n "${SESSIONS_TEST_POSTGRES_URL:-}" ]; then
    psql -q "$SESSIONS_TEST_POSTGRES_URL" -c "DROP SCHEMA IF EXISTS bench_purge CASCADE; CREATE SCHEMA bench_purge;" 2>/dev/null
    bench PostgreSQL "$(postgres_schema_url bench_purge)"
    psql -q "$SESSIONS_TEST_POSTGRES_URL" -c "DROP SCHEMA bench_purge CASCADE;" 2>/dev/null
fi
if [ -n "${SESSIONS_TEST_MYSQL_URL:-}" ]; then
    bench MariaDB "$(mysql_scratch_url bench_purge)"
    mysql_admin "DROP DATABASE bench_purge;"
fi
