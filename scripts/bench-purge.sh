#!/usr/bin/env bash
# purge_expired on 1,000,000 expired sessions while the app serves writes:
# how long the purge takes, and the worst latency of app requests meanwhile.
#
#   scripts/bench-purge.sh [rows, default 1000000]
#
# BENCH_BACKENDS="SQLite MariaDB" runs only those (of SQLite, PostgreSQL,
# MariaDB; the server ones also need their URL).
#
# BENCH_BIN_DIR=DIR runs DIR/examples/bench_app and DIR/session-inspector
# instead of building them (another commit's build, measured by this script).
#
# The rows come from `session-inspector seed --expired`; the purge is
# `session-inspector purge` (batches of 1,000 rows, one statement each), a second
# process, as a cron job would run it. The app is session-fairing's bench_app;
# wrk sends POST /write rotating over 64 sessions (2 threads, 16 connections) in
# 5-second rounds: one round before the purge (baseline), then rounds until the
# purge ends; the last column is what reached storage meanwhile (the purge
# process's and the app's bytes written, and the server's log bytes and
# fsyncs: PostgreSQL's WAL, MariaDB's redo log). SQLite, PostgreSQL when
# SESSIONS_TEST_POSTGRES_URL is set, MariaDB/MySQL when SESSIONS_TEST_MYSQL_URL
# is (BENCH_BACKENDS narrows that, below).
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
work="$(mktemp -d)"
app_pid=""
cleanup() { [ -n "$app_pid" ] && kill "$app_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
source scripts/bench-lib.sh
if [ -n "${BENCH_BIN_DIR:-}" ]; then
    target="$BENCH_BIN_DIR"
else
    cargo build --release -q -p session-fairing --example bench_app "${features[@]}"
    cargo build --release -q -p session-inspector "${features[@]}"
    target="${CARGO_TARGET_DIR:-target}/release"
fi

# server_io NAME -> "bytes fsyncs" so far: PostgreSQL's WAL position and WAL
# fsyncs, MariaDB's redo log bytes and InnoDB fsyncs; "0 0" for SQLite.
server_io() {
    case "$1" in
        PostgreSQL) psql -qtA -F' ' "$SESSIONS_TEST_POSTGRES_URL" -c \
            "SELECT pg_current_wal_lsn() - '0/0', wal_sync FROM pg_stat_wal" ;;
        MariaDB) mysql_admin "SHOW GLOBAL STATUS WHERE Variable_name IN ('Innodb_os_log_written', 'Innodb_data_fsyncs')" \
            | awk '$1 == "Innodb_os_log_written" { b = $2 } $1 == "Innodb_data_fsyncs" { f = $2 } END { print b, f }' ;;
        *) echo "0 0" ;;
    esac
}

# write_bytes PID -> bytes the process has caused to be written to storage.
write_bytes() { awk '$1 == "write_bytes:" { print $2 }' "/proc/$1/io"; }

bench() { # name url
    local name="$1" url="$2"
    local started seeded
    started=$(date +%s.%N)
    "$target/session-inspector" --database-url "$url" seed --count "$rows" --expired >/dev/null
    seeded=$(python3 -c "print(f'{$(date +%s.%N) - $started:.0f}')")
    start_bench_app "$url"
    local before_app before_bytes before_syncs
    before_app="$(write_bytes "$app_pid")"
    read -r before_bytes before_syncs <<<"$(server_io "$name")"
    read -r base_n base_max base_p99 <<<"$(wrk_round "$port")"
    # The 5-second round before the purge: what the app's load alone writes.
    local base_io after_bytes after_syncs
    read -r after_bytes after_syncs <<<"$(server_io "$name")"
    base_io="$(($(write_bytes "$app_pid") - before_app)) $((after_bytes - before_bytes)) $((after_syncs - before_syncs))"

    local app_written server_bytes server_syncs
    app_written="$(write_bytes "$app_pid")"
    read -r server_bytes server_syncs <<<"$(server_io "$name")"
    started=$(date +%s.%N)
    # The purge's own bytes written to storage (its SQLite commits and
    # checkpoints) come from its rusage, reported by this wrapper.
    python3 -c 'import resource, subprocess, sys, time
started = time.monotonic()
done = subprocess.run(sys.argv[2:], stdout=open(sys.argv[1], "w"))
took = time.monotonic() - started
print(f"{took:.2f}", resource.getrusage(resource.RUSAGE_CHILDREN).ru_oublock * 512, file=sys.stderr)
sys.exit(done.returncode)' "$work/purge.out" "$target/session-inspector" --database-url "$url" purge 2>"$work/purge.io" &
    load_while $! || { echo "the purge failed:" >&2; cat "$work/purge.out" "$work/purge.io" >&2; exit 1; }
    local took io purge_took purge_written
    took=$(python3 -c "print(f'{$(date +%s.%N) - $started:.1f}')")
    read -r purge_took purge_written <<<"$(tail -1 "$work/purge.io")"
    read -r after_bytes after_syncs <<<"$(server_io "$name")"
    server_bytes=$((after_bytes - server_bytes))
    server_syncs=$((after_syncs - server_syncs))
    io="$(python3 - "$rows" "$took" "$purge_written" "$(($(write_bytes "$app_pid") - app_written))" "$server_bytes" "$server_syncs" $base_io <<'PY'
import sys
rows, purge, app, server, syncs, base_app, base_server, base_syncs = (int(x) for x in sys.argv[1:2] + sys.argv[3:])
took = float(sys.argv[2])
mb = lambda n, s: f"{n / s / 1e6:,.1f} MB/s"
parts = [f"purge process {purge / rows:,.0f} B/row", f"app {mb(app, took)} ({mb(base_app, 5)} before)"]
if server or syncs:
    parts.append(f"server log {mb(server, took)} ({mb(base_server, 5)} before), {syncs / took:,.0f} fsyncs/s ({base_syncs / 5:,.0f} before)")
print("; ".join(parts))
PY
)"
    echo "| $name | $rows | ${seeded} s | $(cat "$work/purge.out") | ${purge_took} s | $(python3 -c "print(f'{$rows / $purge_took:,.0f}')") | $base_max / $base_p99 | $worst / ${p99s[*]:-none} | $total in $rounds × 5 s | $io |"
    kill "$app_pid"; wait "$app_pid" 2>/dev/null || true; app_pid=""
}

echo "| backend | rows | seed | purge output | purge time | rows/s | app max / p99 before | app max / p99s during | app requests during | written during the purge rounds |"
echo "|---|---:|---:|---|---:|---:|---|---|---|---|"
backends="${BENCH_BACKENDS:-SQLite PostgreSQL MariaDB}"
for backend in $backends; do
    case "$backend" in
        SQLite | PostgreSQL | MariaDB) ;;
        *) echo "BENCH_BACKENDS: unknown backend $backend (SQLite, PostgreSQL, MariaDB)" >&2; exit 2 ;;
    esac
done
wanted() { [[ " $backends " == *" $1 "* ]]; }
if wanted SQLite; then
    bench SQLite "$work/purge.sqlite"
fi
if [ -n "${SESSIONS_TEST_POSTGRES_URL:-}" ] && wanted PostgreSQL; then
    psql -q "$SESSIONS_TEST_POSTGRES_URL" -c "DROP SCHEMA IF EXISTS bench_purge CASCADE; CREATE SCHEMA bench_purge;" 2>/dev/null
    bench PostgreSQL "$(postgres_schema_url bench_purge)"
    psql -q "$SESSIONS_TEST_POSTGRES_URL" -c "DROP SCHEMA bench_purge CASCADE;" 2>/dev/null
fi
if [ -n "${SESSIONS_TEST_MYSQL_URL:-}" ] && wanted MariaDB; then
    bench MariaDB "$(mysql_scratch_url bench_purge)"
    mysql_admin "DROP DATABASE bench_purge;"
fi
