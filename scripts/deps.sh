#!/usr/bin/env bash
# Install what building and testing Filament needs, idempotently: Debian
# packages only when one is missing (apt-get update at most once). Extra
# packages a target alone needs are arguments (make bench-icount: valgrind).
set -euo pipefail
# libclang-rt-dev: libFuzzer and the sanitizer runtimes of clang (only a
# Recommends of clang, which --no-install-recommends skips): make fuzz, make test.
pkgs=(dpdk dpdk-dev libdpdk-dev pkg-config gcc clang libclang-rt-dev iproute2 iputils-ping
      libpcap-dev tcpdump ethtool procps iperf3 "$@")
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "deps: missing ${missing[*]}; run as root: apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# OVS-DPDK, the suite's peer (perf/suite TestOVS runs it): its own script
# so that the system's OVS never starts.
"$(dirname "$0")/ovs-dpdk.sh"
pkg-config --exists libdpdk || { echo "deps: pkg-config cannot find libdpdk" >&2; exit 1; }
echo "deps: ok (DPDK $(pkg-config --modversion libdpdk), $(go version | cut -d' ' -f3))"
