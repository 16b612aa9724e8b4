#!/usr/bin/env bash
# Screenshots of the real inspector window: builds the app, seeds a temporary
# SQLite database (plus a week of one user's audited history), runs the app
# under Xvfb with the first session selected, captures the screen with
# ImageMagick, then types a user into the filter, opens that user's history
# and captures again. Writes inspector.png and inspector-history.png.
#
# Needs the Debian packages xvfb, xauth, imagemagick and xdotool (.ci/run
# installs them).
# Usage: scripts/inspector-screenshot.sh [output directory, default docs]
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-docs}"
target_dir="${CARGO_TARGET_DIR:-target}"
width=1440
height=880

# --all-features: the same build as the test suite's, so CI compiles nothing new.
cargo build -q -p session-inspector --all-features
bin="$target_dir/debug/session-inspector"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
db="$work/sessions.sqlite"
"$bin" seed --count 5000 --seed 4 --database-url "$db" 2>/dev/null
# alice's devices and a week of their audit events (logins, a rotation, a
# revocation, admin edits), written through SessionManager with its clock.
INSPECTOR_SCREENSHOT_DB="$db" cargo test -q -p session-inspector --all-features --test app \
    history_screenshot_database -- --ignored >/dev/null

# A private HOME: no remembered window size or recent connections leak in.
# The pointer is parked in a corner so no tooltip shows; the clicks are on the
# "User id" field and the "User history" button of the filter bar.
HOME="$work" XDG_DATA_HOME="$work" xvfb-run -a -s "-screen 0 ${width}x${height}x24" \
    bash -c '
        set -e
        "$1" --database-url "$2" --select-first &
        app=$!
        sleep "${SCREENSHOT_DELAY:-8}"
        xdotool mousemove 1430 870
        sleep 2
        /usr/bin/import -window root "$3/main.png"
        # winit needs the pointer to arrive before the press, and a focused window.
        click() { xdotool mousemove "$1" "$2"; sleep 0.5; xdotool mousedown 1; sleep 0.1; xdotool mouseup 1; }
        window=$(xdotool search --sync --name "Session inspector" | head -1)
        xdotool windowfocus --sync "$window" || true
        click 242 73
        sleep 0.5
        xdotool type --delay 80 alice
        sleep 1.5
        click 357 73
        sleep 1
        xdotool mousemove 1430 870
        sleep 2
        /usr/bin/import -window root "$3/history.png"
        kill "$app"
        wait "$app" || true
    ' _ "$bin" "$db" "$work"

mkdir -p "$out"
/usr/bin/convert "$work/main.png" -strip "$out/inspector.png"
/usr/bin/convert "$work/history.png" -strip "$out/inspector-history.png"
echo "wrote $out/inspector.png and $out/inspector-history.png"
