#!/usr/bin/env bash
# Screenshot of the real inspector window: builds the app, seeds a temporary
# SQLite database, runs the app under Xvfb with the first session selected,
# captures the screen with ImageMagick and writes docs/inspector.png.
#
# Needs the Debian packages xvfb, xauth and imagemagick (.ci/run installs them).
# Usage: scripts/inspector-screenshot.sh [output.png]
set -euo pipefail
cd "$(dirname "$0")/.."

output="${1:-docs/inspector.png}"
target_dir="${CARGO_TARGET_DIR:-target}"
width=1440
height=880

cargo build -p session-inspector
bin="$target_dir/debug/session-inspector"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
db="$work/sessions.sqlite"
"$bin" seed --count 5000 --seed 4 --database-url "$db"

# A private HOME: no remembered window size or recent connections leak in.
HOME="$work" XDG_DATA_HOME="$work" xvfb-run -a -s "-screen 0 ${width}x${height}x24" \
    bash -c '
        "$1" --database-url "$2" --select-first &
        app=$!
        sleep "${SCREENSHOT_DELAY:-8}"
        /usr/bin/import -window root "$3"
        kill "$app"
        wait "$app" || true
    ' _ "$bin" "$db" "$work/screen.png"

mkdir -p "$(dirname "$output")"
/usr/bin/convert "$work/screen.png" -strip "$output"
echo "wrote $output"
