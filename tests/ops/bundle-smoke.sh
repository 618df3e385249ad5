#!/usr/bin/env bash
# Linux installers, built and smoke-tested the way hospital IT meets them (issue 16):
# `tauri build --bundles deb,rpm`, then the packages' metadata and files, then the
# binary as the .deb installs it, run from a throwaway root (`dpkg -x`): --version,
# a decode, a headless gateway that records readings and stops cleanly on SIGTERM, and
# the desktop app opening its window under Xvfb.
#
#   tests/ops/bundle-smoke.sh --debug     the dev profile (./dev test: reuses its build)
#   tests/ops/bundle-smoke.sh --release   the release profile (release workflow, ./dev bundle)
#   add --no-build to check the bundles already in $CARGO_TARGET_DIR
#
# The Tauri CLI checks all of tauri.conf.json against its schema before it builds, so
# the Windows and macOS sections (built only by the release workflow) are checked here too.
# Prints each bundle's size and how long the bundle step took. Needs dpkg-deb, rpm and
# desktop-file-validate, xvfb-run and xdotool (.ci/setup installs them).
# The whole script is one function, read before it runs: bash reads a script as it
# goes, so editing this file during a long release build would otherwise run a mix.
main() {
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vigil-target}"

profile="" build=1
for a in "$@"; do
  case "$a" in
    --debug) profile=debug ;;
    --release) profile=release ;;
    --no-build) build=0 ;;
    *) echo "usage: $0 --debug|--release [--no-build]" >&2; exit 2 ;;
  esac
done
[ -n "$profile" ] || { echo "usage: $0 --debug|--release [--no-build]" >&2; exit 2; }

fails=0
ok() { echo "  ok   $*"; }
bad() { echo "  FAIL $*" >&2; fails=$((fails + 1)); }
check() { # check <what> <command...>
  local what="$1"; shift
  if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi
}

version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' tauri.conf.json)
bundles="$CARGO_TARGET_DIR/$profile/bundle"
deb="$bundles/deb/Vigil_${version}_amd64.deb"
rpm="$bundles/rpm/Vigil-${version}-1.x86_64.rpm"

if [ "$build" = 1 ]; then
  # Old packages must not pass for new ones.
  rm -f "$bundles"/deb/*.deb "$bundles"/rpm/*.rpm
  flag=(); [ "$profile" = debug ] && flag=(--debug)
  # Updater artifacts (.sig) need the release signing key, which only the
  # release workflow has; without it the packages are built unsigned.
  if [ -z "${TAURI_SIGNING_PRIVATE_KEY:-}" ]; then
    flag+=(--config '{"bundle":{"createUpdaterArtifacts":false}}')
  fi
  echo "== Bundle: tauri build ${flag[*]} --bundles deb,rpm"
  t0=$(date +%s)
  ui/node_modules/.bin/tauri build "${flag[@]}" --bundles deb,rpm
  bundle_secs=$(( $(date +%s) - t0 ))
fi
for f in "$deb" "$rpm"; do
  [ -f "$f" ] || { echo "FAIL: no bundle at $f" >&2; exit 1; }
done

work=$(mktemp -d)
gw_pid=""
cleanup() {
  # Only the gateway this script started.
  [ -n "$gw_pid" ] && kill "$gw_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# What an installed Vigil must have: the program, its menu entry and icon (freedesktop
# Desktop Entry and Icon Theme specifications: applications/*.desktop, hicolor/<size>/apps),
# and the licence (Debian policy 12.5: /usr/share/doc/<package>/copyright; Fedora:
# /usr/share/licenses/<package>/).
files_common=(
  usr/bin/vigil
  usr/share/applications/Vigil.desktop
  usr/share/icons/hicolor/32x32/apps/vigil.png
  usr/share/icons/hicolor/128x128/apps/vigil.png
  usr/share/icons/hicolor/512x512/apps/vigil.png
)

echo "== .deb: control fields ($(basename "$deb"))"
dpkg-deb -I "$deb" >"$work/deb-info"
field() { sed -n "s/^ $1: //p" "$work/deb-info"; }
[ "$(field Package)" = vigil ] && ok "Package: vigil" || bad "Package: $(field Package)"
[ "$(field Version)" = "$version" ] && ok "Version: $version" || bad "Version: $(field Version), config says $version"
[ "$(field Architecture)" = amd64 ] && ok "Architecture: amd64" || bad "Architecture: $(field Architecture)"
[ -n "$(field Maintainer)" ] && ok "Maintainer: $(field Maintainer)" || bad "no Maintainer"
grep -q "^ Description: ." "$work/deb-info" && ok "Description" || bad "no Description"
# The runtime libraries the binary links (readelf NEEDED) and the webview.
depends=$(field Depends)
for lib in libwebkit2gtk-4.1-0 libgtk-3-0 libjavascriptcoregtk-4.1-0 libsoup-3.0-0 libglib2.0-0 libdbus-1-3; do
  [[ ", $depends," == *", $lib,"* ]] && ok "Depends: $lib" || bad "Depends lacks $lib ($depends)"
done

echo "== .deb: files"
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./||' >"$work/deb-files"
for f in "${files_common[@]}" usr/share/doc/vigil/copyright; do
  grep -qx "$f" "$work/deb-files" && ok "$f" || bad "missing $f"
done

echo "== .deb: unpacked into a throwaway root (dpkg -x)"
root="$work/root"
dpkg -x "$deb" "$root"
vigil="$root/usr/bin/vigil"
check "usr/bin/vigil is executable" test -x "$vigil"
check "copyright is the Apache-2.0 LICENSE" cmp "$root/usr/share/doc/vigil/copyright" LICENSE
desktop="$root/usr/share/applications/Vigil.desktop"
if desktop-file-validate "$desktop" >"$work/dfv" 2>&1; then ok "Vigil.desktop validates"; else bad "Vigil.desktop: $(cat "$work/dfv")"; fi
exec_name=$(sed -n 's/^Exec=\([^ ]*\).*/\1/p' "$desktop")
icon_name=$(sed -n 's/^Icon=//p' "$desktop")
check "Exec=$exec_name is the installed program" test -x "$root/usr/bin/$exec_name"
check "Icon=$icon_name is in the hicolor theme" test -f "$root/usr/share/icons/hicolor/128x128/apps/$icon_name.png"
check "Categories name Medical" grep -q '^Categories=.*MedicalSoftware' "$desktop"

echo "== the installed binary"
out=$("$vigil" --version)
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
[[ "$out" == "vigil $version (commit $commit, built "* ]] && ok "--version: $out" || bad "--version: '$out', expected version $version and commit $commit"
out=$("$vigil" gateway --version)
[[ "$out" == "vigil-gateway $version (commit "* || "$out" == "vigil $version (commit "* ]] && ok "gateway --version: $out" || bad "gateway --version: '$out'"
# Heart Rate Measurement (Bluetooth GATT 0x2A37): flags 0x00 (8-bit value), 72 /min.
out=$("$vigil" decode 2A37 0048)
[[ "$out" == '{"characteristic":"2a37","measurements":[{"mdc":147842,"value":72.0,"unit":"/min"}]'* ]] \
  && ok "decode 2A37 0048: 72 /min (MDC_PULS_RATE)" || bad "decode 2A37 0048: $out"

echo "== gateway: simulated 'stable' ward for 5 s with a key file, then SIGTERM"
data="$work/data" key="$work/site.key"
mkdir -p "$data" "$work/counter"
# The store's rollback-counter mirror goes with the throwaway store, not into this
# user's config directory.
export VIGIL_STORE_COUNTER_DIR="$work/counter"
"$vigil" key new "$key" 2>"$work/key.err" && ok "key new" || bad "key new: $(cat "$work/key.err")"
[ "$(stat -c %a "$key")" = 600 ] && ok "key file mode 0600" || bad "key file mode $(stat -c %a "$key")"
# An admin to read the store back with the same binary afterwards.
pw="bundle-smoke-admin-pw"
VIGIL_USER_PASSWORD="$pw" "$vigil" user add smoke --role admin --data-dir "$data" --key-file "$key" \
  >"$work/user.out" 2>&1 && ok "user add (first admin)" || bad "user add: $(cat "$work/user.out")"
"$vigil" gateway --simulate stable --status-every 1 --data-dir "$data" --key-file "$key" 2>"$work/gateway.err" &
gw_pid=$!
sleep 5
t0=$(date +%s%N)
kill -TERM "$gw_pid"
rc=0
wait "$gw_pid" || rc=$?
gw_pid=""
stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$rc" = 0 ] && ok "exit status 0 after SIGTERM (stopped in ${stop_ms} ms)" || bad "exit status $rc after SIGTERM: $(tail -5 "$work/gateway.err")"
check "said SIGTERM received" grep -q "SIGTERM received" "$work/gateway.err"
check "stopped cleanly" grep -q "stopped cleanly" "$work/gateway.err"
check "used the key file" grep -q "unlocked with key file" "$work/gateway.err"
check "labelled SIMULATED" grep -q "SIMULATED" "$work/gateway.err"
last=$(grep "readings [0-9]*, stored" "$work/gateway.err" | tail -1 || true)
readings=$(sed -n 's/.*readings \([0-9]*\),.*/\1/p' <<<"$last")
stored=$(sed -n 's/.*stored \([0-9]*\),.*/\1/p' <<<"$last")
if [ -n "$readings" ] && [ "${stored:-0}" -gt 0 ] && [ "$readings" = "$stored" ]; then
  ok "stored every reading received: $stored"
else
  bad "readings '$readings', stored '$stored': $last"
fi
out=$(VIGIL_USER_PASSWORD="$pw" "$vigil" --user smoke store verify --data-dir "$data" --key-file "$key" 2>&1) \
  && [[ "$out" == *": OK"* ]] && ok "store verify: $out" || bad "store verify: $out"

echo "== the desktop app from the installed binary opens its window (Xvfb)"
# What the menu entry starts, on the store the gateway just wrote. Its screen is
# tested end to end elsewhere (tests/e2e); here: it starts from where it is installed.
cat >"$work/app.sh" <<'EOS'
"$1" --simulate stable --data-dir "$2" --key-file "$3" >"$4" 2>&1 &
pid=$!
found=1
for _ in $(seq 1 60); do
  kill -0 "$pid" 2>/dev/null || break
  # The window, and the store open behind it (logged once unlocked).
  if xdotool search --name "^Vigil — patient monitor$" >/dev/null 2>&1 &&
    grep -q "store unlocked key=key file" "$4"; then found=0; break; fi
  sleep 0.5
done
kill -TERM "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
exit "$found"
EOS
if xvfb-run -a -s "-screen 0 1280x800x24" bash "$work/app.sh" "$vigil" "$data" "$key" "$work/app.log"; then
  ok "window 'Vigil — patient monitor' shown, store unlocked with the key file"
else
  bad "no app window with the store unlocked within 30 s: $(tail -3 "$work/app.log")"
fi

echo "== .rpm ($(basename "$rpm"))"
rpm -qp --qf '%{NAME} %{VERSION} %{LICENSE}\n' "$rpm" >"$work/rpm-info" 2>/dev/null
[ "$(cat "$work/rpm-info")" = "vigil $version Apache-2.0" ] && ok "name, version, licence: $(cat "$work/rpm-info")" || bad "rpm header: $(cat "$work/rpm-info")"
rpm -qpl "$rpm" 2>/dev/null | sed 's|^/||' >"$work/rpm-files"
for f in "${files_common[@]}" usr/share/licenses/vigil/LICENSE; do
  grep -qx "$f" "$work/rpm-files" && ok "$f" || bad "missing $f"
done
rpm -qpR "$rpm" 2>/dev/null >"$work/rpm-requires"
for lib in webkit2gtk4.1 gtk3 libsoup3 dbus-libs; do
  grep -qx "$lib" "$work/rpm-requires" && ok "Requires: $lib" || bad "Requires lacks $lib"
done
check "header and payload digests (rpm -K)" rpm -K "$rpm"
# Its program is the same as the .deb's. Tauri's rpm writer leaves out the archive size
# tag, so rpm2cpio (4.18) exits 1 after writing the whole payload: cpio reading it to
# its trailer is the check that it is complete.
rpm2cpio "$rpm" >"$work/payload.cpio" 2>/dev/null || true
mkdir -p "$work/rpmroot"
if (cd "$work/rpmroot" && cpio -id --quiet ./usr/bin/vigil <"$work/payload.cpio"); then
  # Not byte-equal: Tauri patches each copy with its bundle type (for the updater).
  out=$("$work/rpmroot/usr/bin/vigil" --version 2>&1) || true
  [ "$out" = "$("$vigil" --version)" ] && ok "the .rpm's usr/bin/vigil runs: $out" || bad "the .rpm's usr/bin/vigil --version: $out"
else
  bad "the .rpm's cpio payload does not unpack"
fi
rm -f "$work/payload.cpio"

mb() { echo "scale=1; $(stat -c %s "$1") / 1048576" | bc; }
echo "== sizes ($profile): .deb $(mb "$deb") MB, .rpm $(mb "$rpm") MB, installed binary $(mb "$vigil") MB"
[ -n "${bundle_secs:-}" ] && echo "== tauri build --bundles deb,rpm ($profile) took ${bundle_secs} s"
if [ "$fails" -gt 0 ]; then
  echo "bundle smoke test: $fails check(s) failed" >&2
  exit 1
fi
echo "== bundle smoke test passed"
}
main "$@"
