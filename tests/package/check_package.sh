#!/usr/bin/env bash
# Builds the .deb from a built tree and checks its contents and metadata, then verifies
# the systemd unit with systemd-analyze (pointed at the built binaries, since verify
# needs ExecStart's binary to exist) and prints its security exposure.
#   check_package.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
readonly build="$1" source="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fail() { printf 'check_package: %s\n' "$*" >&2; exit 1; }

(cd "$build" && cpack -G DEB -B "$work/out" >"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log"; fail "cpack -G DEB failed"; }
deb="$(ls "$work"/out/waypoint_*.deb)"

contents="$(dpkg-deb -c "$deb")"
for path in ./usr/bin/waypointd ./usr/bin/waypointctl ./usr/lib/systemd/system/waypointd.service \
  ./etc/waypoint/waypoint.yaml ./etc/waypoint/users.txt ./usr/share/doc/waypoint/README.md \
  ./usr/share/doc/waypoint/configuration.md; do
  grep -q " $path\$" <<<"$contents" || fail "$deb lacks $path"
done

grep -q '^-rw-r----- .* ./etc/waypoint/users.txt$' <<<"$contents" ||
  fail "the users file (password hashes) is not mode 0640 in the package"
grep -q '^-rw-r--r-- .* ./etc/waypoint/waypoint.yaml$' <<<"$contents" ||
  fail "waypoint.yaml is not mode 0644 in the package"

# A tree install keeps a file the operator edited (no conffiles there).
mkdir -p "$work/stage/etc/waypoint"
echo "# edited by the operator" >"$work/stage/etc/waypoint/waypoint.yaml"
DESTDIR="$work/stage" cmake --install "$build" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "cmake --install failed"; }
grep -qx "# edited by the operator" "$work/stage/etc/waypoint/waypoint.yaml" ||
  fail "cmake --install replaced an edited /etc/waypoint/waypoint.yaml"
[[ "$(stat -c %a "$work/stage/etc/waypoint/users.txt")" == 640 ]] ||
  fail "cmake --install left users.txt readable by everyone"

info="$(dpkg-deb -I "$deb")"
for field in "Package: waypoint" "Version: $(sed -n 's/^project(waypoint VERSION \([0-9.]*\).*/\1/p' "$source/CMakeLists.txt")" \
  "Section: net" "Depends: adduser" "libsofia-sip-ua0"; do
  grep -q "$field" <<<"$info" || fail "dpkg-deb -I lacks '$field'"
done
for script in postinst prerm postrm conffiles; do
  grep -q " $script" <<<"$info" || fail "the package has no $script"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./postinst | grep -q 'chgrp waypoint /etc/waypoint/users.txt' ||
  fail "postinst does not give the users file to the waypoint group"
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/waypoint/waypoint.yaml ||
  fail "/etc/waypoint/waypoint.yaml is not a conffile"

mkdir "$work/root"
dpkg-deb -x "$deb" "$work/root"
unit="$work/root/usr/lib/systemd/system/waypointd.service"
grep -q '^ExecStart=/usr/bin/waypointd ' "$unit" || fail "the packaged unit does not start /usr/bin/waypointd"
grep -q '^ExecReload=/usr/bin/waypointctl -c /etc/waypoint/waypoint.yaml reload$' "$unit" || fail "the packaged unit does not reload with waypointctl"
grep -q '^User=waypoint$' "$unit" || fail "the packaged unit does not run as the waypoint user"
"$work/root/usr/bin/waypointd" --check-config -c "$work/root/etc/waypoint/waypoint.yaml" ||
  fail "the packaged config does not pass --check-config"

if ! command -v systemd-analyze >/dev/null; then
  fail "systemd-analyze is missing (Debian package systemd)"
fi
sed "s#/usr/local/bin/#$build/src/app/#g" "$source/systemd/waypointd.service" \
  >"$work/waypointd.service"
systemd-analyze verify "$work/waypointd.service" || fail "systemd-analyze verify refused the unit"
systemd-analyze security --offline=yes "$work/waypointd.service" | tail -n 1
echo "check_package: OK ($deb)"
