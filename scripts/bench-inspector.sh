#!/usr/bin/env bash
# The inspector at 1,000,000 sessions: export (time, peak RSS), a bulk expire
# of 100,000 matching rows while the app serves writes (time, the app's worst
# latency meanwhile), and the window's first page / filter timings.
#
#   scripts/bench-inspector.sh [rows, default 1000000]
#
# SQLite always; PostgreSQL too when SESSIONS_TEST_POSTGRES_URL is set. The
# window timings need xvfb-run (package xvfb) and run on SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
work="$(mktemp -d)"
app_pid=""
cleanup() { [ -n "$app_pid" ] && kill "$app_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
source scripts/bench-lib.sh
cargo build --release -q -p session-fairing --example bench_app "${features[@]}"
cargo build --release -q -p session-inspector --features bench "${features[@]}"
target="${CARGO_TARGET_DIR:-target}/release"
bin="$target/session-inspector"

# sql URL STATEMENT: runs one statement on the bench database.
sql() {
    case "$1" in
        postgres*) psql -q "${1%%\?*}" -c "SET search_path TO bench_inspector; $2" ;;
        *) python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()' "$1" "$2" ;;
    esac
}

bench() { # name url
    local name="$1" url="$2" started took
    started=$(date +%s.%N)
    "$bin" --database-url "$url" seed --count "$rows" --seed 1 >/dev/null 2>&1
    echo "$name: seeded $rows in $(python3 -c "print(f'{$(date +%s.%N) - $started:.0f}')") s" >&2

    for format in ndjson csv; do
        /usr/bin/time -f "%e %M" -o "$work/time" \
            "$bin" --database-url "$url" export --format "$format" --output "$work/export.$format" 2>/dev/null
        read -r secs rss_kb <"$work/time"
        echo "| $name | export $rows rows as $format | ${secs} s | $((rss_kb / 1024)) MiB | $(du -m "$work/export.$format" | cut -f1) MB file |"
        rm -f "$work/export.$format"
    done

    # 100,000 rows get one IP; the bulk expire selects them by IP (no index:
    # a scan, as any filter on the data or the client is).
    case "$url" in
        postgres*) sql "$url" "UPDATE sessions SET ip_address = '198.51.100.77' WHERE id IN (SELECT id FROM sessions ORDER BY md5(id) LIMIT 100000)" ;;
        *) sql "$url" "UPDATE sessions SET ip_address = '198.51.100.77' WHERE rowid IN (SELECT rowid FROM sessions ORDER BY random() LIMIT 100000)" ;;
    esac
    start_bench_app "$url"
    read -r _ base_max base_p99 <<<"$(wrk_round "$port")"
    started=$(date +%s.%N)
    "$bin" --database-url "$url" expire --ip 198.51.100.77 --yes >"$work/expire.out" 2>/dev/null &
    load_while $!
    took=$(python3 -c "print(f'{$(date +%s.%N) - $started:.1f}')")
    echo "| $name | $(cat "$work/expire.out") | ${took} s | app max / p99 before $base_max / $base_p99 | during: max $worst, p99 per 5 s round ${p99s[*]:-none} |"
    kill "$app_pid"; wait "$app_pid" 2>/dev/null || true; app_pid=""
}

echo "| backend | operation | time | peak RSS / app latency | |"
echo "|---|---|---:|---|---|"
bench SQLite "$work/bench.sqlite"
if [ -n "${SESSIONS_TEST_POSTGRES_URL:-}" ]; then
    psql -q "$SESSIONS_TEST_POSTGRES_URL" -c "DROP SCHEMA IF EXISTS bench_inspector CASCADE; CREATE SCHEMA bench_inspector;" 2>/dev/null
    bench PostgreSQL "$(postgres_schema_url bench_inspector)"
    psql -q "$SESSIONS_TEST_POSTGRES_URL" -c "DROP SCHEMA bench_inspector CASCADE;" 2>/dev/null
fi

# The window: launch to first page and two user filters, on a fresh SQLite copy.
if command -v xvfb-run >/dev/null; then
    "$bin" --database-url "$work/window.sqlite" seed --count "$rows" --seed 1 >/dev/null 2>&1
    for run in 1 2 3; do
        echo "window run $run (load average $(cut -d' ' -f1 /proc/loadavg)):"
        HOME="$work" xvfb-run -a -s "-screen 0 1440x880x24" \
            "$bin" --bench --bench-user user-000001 --bench-user user-050000 \
            --database-url "$work/window.sqlite"
    done
fi
