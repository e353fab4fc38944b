#!/usr/bin/env bash
# Install OVS-DPDK from Debian (openvswitch-switch-dpdk) for the suite's
# ovs-dpdk rows, idempotently, without starting the system's OVS: the suite
# runs its own ovsdb-server and ovs-vswitchd-dpdk under a temp dir, and a
# system vswitchd would take hugepages and a CPU from the measurements. The
# package's postinst starts openvswitch-switch through invoke-rc.d, which
# asks policy-rc.d first: a policy that says "no" (101) holds it off. System
# alternatives are left alone: the suite runs the DPDK binary by its path.
set -euo pipefail
pkg=openvswitch-switch-dpdk
bin=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" && [ -x "$bin" ]; then
	echo "ovs-dpdk: ok ($("$bin" --version | head -1))"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "ovs-dpdk: missing $pkg; run as root: scripts/ovs-dpdk.sh" >&2
	exit 1
fi
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# filament scripts/ovs-dpdk.sh: no service starts while it installs\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	trap 'rm -f "$policy"' EXIT
elif ! grep -q 'exit 101' "$policy"; then
	echo "ovs-dpdk: $policy exists and may let the system's OVS start; install $pkg by hand and stop openvswitch-switch" >&2
	exit 1
fi
echo "ovs-dpdk: installing $pkg"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
echo "ovs-dpdk: ok ($("$bin" --version | head -1))"
