#!/usr/bin/env bash
# Set up 2 MiB hugepages for DPDK where we can (root), idempotently.
# Usage: scripts/hugepages.sh [pages]   (default 1024 = 2 GiB)
# Prints "hugepages: <free> free" on success; exits 0 without changing
# anything when not root, so callers fall back to --no-huge and say so.
set -u
want=${1:-1024}
if [ "$(id -u)" != 0 ]; then
	echo "hugepages: not root, cannot set up (tests use --no-huge)" >&2
	exit 0
fi
cur=$(cat /proc/sys/vm/nr_hugepages)
if [ "$cur" -lt "$want" ]; then
	echo "$want" > /proc/sys/vm/nr_hugepages 2>/dev/null || true
fi
mkdir -p /dev/hugepages
if ! mountpoint -q /dev/hugepages; then
	mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null || {
		echo "hugepages: cannot mount hugetlbfs (tests use --no-huge)" >&2
		exit 0
	}
fi
free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
echo "hugepages: $free free of $(cat /proc/sys/vm/nr_hugepages)"
