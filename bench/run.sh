#!/usr/bin/env bash
# waypoint beside Kamailio under the shared SIPp harness (../shared/bench/run.sh), in one
# run, interleaved step by step; summary.md gives every figure with the ratio
# waypoint / Kamailio. Loopback only (ports 15000-15999).
#
#   bench/run.sh                          # every test: reg cps cpu regcpu mem
#   TESTS="cps cpu" ROUNDS=3 bench/run.sh
#   PERSISTENCE=both TESTS="reg regcpu" bench/run.sh   # waypoint with and without the
#                                         # SQLite bindings (target waypoint-memory) beside Kamailio
#   PERSISTENCE=off bench/run.sh          # waypoint without it only
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
[ -x "$SHARED/run.sh" ] || { echo "bench: $SHARED/run.sh not found (../shared beside the clone)" >&2; exit 1; }

need=()
for p in kamailio sip-tester time python3 iproute2 procps; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
	# Debian's service would take 5060 with its own config; the harness runs its own.
	systemctl disable --now kamailio >/dev/null 2>&1 || true
fi

cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release -DWAYPOINT_TESTS=OFF >/dev/null
cmake --build "$ROOT/build-bench" -j2 --target waypointd >/dev/null

PERSISTENCE=${PERSISTENCE:-on}
export OUT=${OUT:-$HERE/out/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
DAEMON="$ROOT/build-bench/src/app/waypointd"
# Each step starts a fresh proxy; the bindings file of the step before is removed first,
# so every step starts with no bindings, as Kamailio's in-memory usrloc does.
export WAYPOINT_CMD="sh -c 'rm -f /tmp/waypoint-bench-state/bindings.sqlite*; exec $DAEMON -c $HERE/waypoint-bench.yaml'"
export WAYPOINT_VERSION_CMD="$DAEMON --version"
sed -e 's/persistence: { enabled: true,/persistence: { enabled: false,/' -e 's/port: 15160/port: 15170/' \
	"$HERE/waypoint-bench.yaml" >"$OUT/waypoint-bench-memory.yaml"
export WAYPOINT_MEMORY_CMD="$DAEMON -c $OUT/waypoint-bench-memory.yaml"
export WAYPOINT_MEMORY_VERSION_CMD="$WAYPOINT_VERSION_CMD"
# Bindings, from the metrics file the daemon writes on SIGUSR1.
export WAYPOINT_STATS_CMD='kill -USR1 "$(cat "$PROXY_STATE_DIR/main.pid")" && sleep 0.3 &&
  sed -n "s/^waypoint_registrar_bindings /bindings=/p" /tmp/waypoint-bench-metrics.prom'
export WAYPOINT_MEMORY_STATS_CMD="$WAYPOINT_STATS_CMD"
export TESTS=${TESTS:-"reg cps cpu regcpu mem"}
# Kamailio with the same 4 MiB UDP receive buffer as waypoint-bench.yaml gives waypoint.
case "$PERSISTENCE" in
on) exec "$SHARED/run.sh" kamailio-bigbuf@127.0.0.1:15060 waypoint@127.0.0.1:15160 ;;
off | both)
	# The shared harness finds a target's controller by its name: a copy of it with a
	# controller for the second waypoint target (the generic one, under another name).
	HARNESS="$OUT/harness"
	cp -r "$SHARED" "$HARNESS"
	chmod -R u+w "$HARNESS"
	cp "$HARNESS/proxies/generic.sh" "$HARNESS/proxies/waypoint-memory.sh"
	if [ "$PERSISTENCE" = off ]; then
		exec "$HARNESS/run.sh" kamailio-bigbuf@127.0.0.1:15060 waypoint-memory@127.0.0.1:15170
	fi
	exec "$HARNESS/run.sh" kamailio-bigbuf@127.0.0.1:15060 waypoint@127.0.0.1:15160 \
		waypoint-memory@127.0.0.1:15170
	;;
*) echo "bench: PERSISTENCE must be on, off or both" >&2; exit 2 ;;
esac
