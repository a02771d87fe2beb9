#!/bin/sh
# Runs an end-to-end test ("$@") in a private network namespace whose only interface is
# loopback (127.0.0.1, ::1), so that a regression that sends to a Contact's private or
# public address cannot reach any network: the packet has no route. Needs root (unshare -n)
# or unprivileged user namespaces (unshare -r -n); without either the test runs in the
# host's network as before and says why. WAYPOINT_E2E_NETNS=0 turns it off.
if [ "${WAYPOINT_E2E_NETNS:-1}" = 0 ]; then
  echo "private_network.sh: WAYPOINT_E2E_NETNS=0: running in the host's network" >&2
  exec "$@"
fi
for flags in "-n" "-r -n"; do
  # shellcheck disable=SC2086 # the flags are two words on purpose
  if why=$(unshare $flags sh -c 'ip link set lo up' 2>&1); then
    # shellcheck disable=SC2086
    exec unshare $flags sh -c 'ip link set lo up && exec "$@"' sh "$@"
  fi
done
echo "private_network.sh: no private network namespace (unshare: ${why:-failed});" \
  "running in the host's network" >&2
exec "$@"
