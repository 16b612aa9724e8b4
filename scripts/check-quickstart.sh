#!/usr/bin/env bash
# Checks that session-fairing's README quick start ("4. Use the guard")
# compiles in a crate whose only dependencies are `rocket` and
# `session-fairing`, as the README promises (the doctests can also see
# session-fairing's dev-dependencies, so they cannot show that).
#
#   scripts/check-quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
crate="$(mktemp -d)"
trap 'rm -rf "$crate"' EXIT
mkdir "$crate/src"
cat >"$crate/Cargo.toml" <<TOML
[package]
name = "quickstart"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
rocket = { version = "0.5.2", default-features = false }
session-fairing = { path = "$root/session-fairing" }

[workspace]
TOML
# The first rust block after the "## 4. Use the guard" heading, as main.rs.
awk '/^## 4\. Use the guard/ { section = 1; next }
     section && /^```rust/ { inside = 1; next }
     inside && /^```$/ { exit }
     inside { print }' session-fairing/README.md >"$crate/src/main.rs"
grep -q 'Sessions::fairing()' "$crate/src/main.rs" || { echo "quick start not found in the README" >&2; exit 1; }
# The workspace's lock file, so the versions are the ones tested.
cp Cargo.lock "$crate/Cargo.lock"
cargo check --offline --quiet --manifest-path "$crate/Cargo.toml" \
    --target-dir "${CARGO_TARGET_DIR:-$root/target}"
echo "quick start compiles with only rocket and session-fairing"
