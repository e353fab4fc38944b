#!/usr/bin/env bash
# Instructions per packet of the fast path's stages under callgrind, for
# seeds of dpdk/fastpath/fuzz/corpus: repeatable (the same count every
# run), where fpbench's cycles move by a few on a shared VM. Compare two
# commits by building the older in a worktree:
#   git worktree add /tmp/old-X X
#   hack/icount/icount.sh /tmp/old-X encap-vxlan decap-vxlan
#   hack/icount/icount.sh . encap-vxlan decap-vxlan
# Usage: icount.sh [TREE] [SEED...] (TREE: a checkout, default this one;
# seeds default encap-vxlan decap-vxlan pod-to-pod; seeds are read from
# this checkout's corpus, the C from TREE's). Needs gcc, valgrind and
# Debian's DPDK; builds with cgo's flags (fastpath.go: -O3). Starts DPDK
# on anonymous memory (--no-huge): run it under flock
# /tmp/filament-heavy.lock on a shared machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
tree=$(cd "${1:-$repo}" && pwd)
shift || true
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(encap-vxlan decap-vxlan pod-to-pod)
command -v valgrind >/dev/null || { echo "icount: need valgrind (apt-get install valgrind)" >&2; exit 1; }
fp=$tree/dpdk/fastpath
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
srcs=("$fp"/fp_init.c "$fp"/fp_port.c "$fp"/fp_tables.c "$fp"/fp_fib4.c "$fp"/fp_fib6.c
      "$fp"/fp_worker.c "$fp"/fp_trace.c "$fp"/fp_trace_worker.c "$fp"/fuzz/harness/fuzz_topology.c)
[ -f "$fp/fp_route6.c" ] && srcs+=("$fp/fp_route6.c")
# shellcheck disable=SC2046 # pkg-config prints several words
gcc -O3 -g -Wall -Wno-address-of-packed-member -DALLOW_EXPERIMENTAL_API -I"$fp" \
	$(pkg-config --cflags libdpdk) "$here/icount.c" "${srcs[@]}" \
	$(pkg-config --libs libdpdk) -lrte_net_ring -o "$out/icount"
bursts=2000
for s in "${seeds[@]}"; do
	valgrind --tool=callgrind --callgrind-out-file="$out/cg" --toggle-collect=icount_burst \
		"$out/icount" "$repo/dpdk/fastpath/fuzz/corpus/$s" "$bursts" >"$out/log" 2>&1 ||
		{ cat "$out/log" >&2; exit 1; }
	ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$out/cg")
	fate=$(grep '^packets' "$out/log")
	n=$(awk '/^packets/ {print $2}' "$out/log") # bursts * FP_BURST
	awk -v s="$s" -v ir="$ir" -v n="$n" -v f="$fate" \
		'BEGIN { printf "%-22s %8.2f instructions/packet (%s)\n", s, ir / n, f }'
done
