#!/usr/bin/env bash
# waypoint beside Kamailio under the shared SIPp harness (../shared/bench/run.sh), in one
# run, interleaved step by step; summary.md gives every figure with the ratio
# waypoint / Kamailio. Loopback only (ports 15000-15999).
#
#   bench/run.sh                          # every test: reg cps cpu regcpu mem
#   TESTS="cps cpu" ROUNDS=3 bench/run.sh
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

export WAYPOINT_CMD="$ROOT/build-bench/src/app/waypointd -c $HERE/waypoint-bench.yaml"
export WAYPOINT_VERSION_CMD="$ROOT/build-bench/src/app/waypointd --version"
# Bindings, from the metrics file the daemon writes on SIGUSR1.
export WAYPOINT_STATS_CMD='kill -USR1 "$(cat "$PROXY_STATE_DIR/main.pid")" && sleep 0.3 &&
  sed -n "s/^waypoint_registrar_bindings /bindings=/p" /tmp/waypoint-bench-metrics.prom'
export TESTS=${TESTS:-"reg cps cpu regcpu mem"}
export OUT=${OUT:-$HERE/out/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
# Kamailio with the same 4 MiB UDP receive buffer as waypoint-bench.yaml gives waypoint.
exec "$SHARED/run.sh" kamailio-bigbuf@127.0.0.1:15060 waypoint@127.0.0.1:15160
