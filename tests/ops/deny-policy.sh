#!/usr/bin/env bash
# The dependency policy refuses what it should: a throwaway crate that pulls
# in a GPL-3.0 dependency must fail deny.toml's licence check. Guards against
# a deny.toml edit that quietly allows everything.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/app/src" "$tmp/gpl/src"
cat > "$tmp/app/Cargo.toml" <<'TOML'
[package]
name = "policy-probe"
version = "0.1.0"
edition = "2021"
license = "Apache-2.0"
publish = false
[dependencies]
gpl-probe = { path = "../gpl", version = "0.1.0" }
TOML
cat > "$tmp/gpl/Cargo.toml" <<'TOML'
[package]
name = "gpl-probe"
version = "0.1.0"
edition = "2021"
license = "GPL-3.0-only"
TOML
echo 'fn main() {}' > "$tmp/app/src/main.rs"
: > "$tmp/gpl/src/lib.rs"
cp "$root/deny.toml" "$tmp/app/"
cd "$tmp/app"
cargo generate-lockfile --offline -q
if out=$(cargo deny --offline --log-level error check licenses 2>&1); then
  echo "deny-policy: a GPL-3.0 dependency was accepted by deny.toml" >&2
  exit 1
fi
grep -q "GPL-3.0-only" <<<"$out" || { echo "deny-policy: refused, but not for the licence:" >&2; echo "$out" >&2; exit 1; }
echo "   deny.toml refuses a GPL-3.0 dependency"
