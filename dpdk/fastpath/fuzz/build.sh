#!/usr/bin/env bash
# Build the fast path's libFuzzer harness: the fast path's C files and the
# harness with ASan and UBSan (any UBSan report aborts), against Debian's
# DPDK (not instrumented). Usage: build.sh OUT (default bin/fuzz-fastpath at
# the repository's root). Needs clang and libclang-rt-dev (scripts/deps.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fp=$(dirname "$here")
out=${1:-$(cd "$fp/../.." && pwd)/bin/fuzz-fastpath}
mkdir -p "$(dirname "$out")"
cc=${FUZZ_CC:-clang}
# The C core as cgo builds it (fastpath.go), bar the benchmark generator.
srcs=("$fp"/fp_init.c "$fp"/fp_port.c "$fp"/fp_tables.c "$fp"/fp_fib4.c "$fp"/fp_fib6.c "$fp"/fp_route6.c
      "$fp"/fp_worker.c "$fp"/fp_trace.c "$fp"/fp_trace_worker.c
      "$here"/harness/fuzz_fastpath.c "$here"/harness/fuzz_topology.c)
# shellcheck disable=SC2046 # pkg-config prints several words
exec "$cc" -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-Wall -Wno-address-of-packed-member -DALLOW_EXPERIMENTAL_API \
	$(pkg-config --cflags libdpdk) "${srcs[@]}" \
	$(pkg-config --libs libdpdk) -lrte_net_ring -o "$out"
