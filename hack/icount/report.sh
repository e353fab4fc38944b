#!/usr/bin/env bash
# docs/benchmarks/instructions.md: the fast path's instructions per packet
# on each main path (icount.sh, callgrind), this checkout against BASE,
# by default the commit of the last cycle figures (docs/benchmarks/perf.md).
# Exact and the same on any machine with this compiler and DPDK, where
# cycles move with the host: what a fast-path change did, between two
# runs of make bench on a machine fit for numbers.
# Usage: report.sh [BASE] > docs/benchmarks/instructions.md
# Needs a git checkout (BASE is checked out in a temporary worktree).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
base=${1:-$(git log -1 --format=%h -- docs/benchmarks/perf.md)}
base=$(git rev-parse --short "$base^{commit}")
head=$(git rev-parse --short HEAD)
dirty=$(git status --porcelain -- dpdk/fastpath | grep -q . && echo " (with uncommitted fast-path changes)" || true)
wt=$(mktemp -d)
trap 'git worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"' EXIT
git worktree add -q --detach "$wt" "$base"

# seed|what it exercises
paths=(
	"pod-to-pod|IPv4 pod -> VRF FIB -> pod: checks, TTL, MAC rewrite"
	"encap-vxlan|IPv4 pod -> FIB -> VXLAN tunnel (IPv4 underlay)"
	"decap-vxlan|VXLAN (IPv4 underlay) -> VNI -> VRF FIB -> pod"
	"encap-mplsoudp|IPv4 pod -> FIB -> MPLSoUDP tunnel"
	"decap-mplsoudp|MPLSoUDP -> label -> VRF FIB -> pod"
	"encap-ecmp-1|IPv4 pod -> FIB -> ECMP group of VXLAN tunnels"
	"ipv6-pod-to-pod|IPv6 pod -> VRF FIB -> pod"
	"ipv6-encap-vxlan|IPv6 pod -> FIB -> VXLAN tunnel (IPv4 underlay)"
	"u6-encap-vxlan|IPv4 pod -> VXLAN over the IPv6 underlay (UDP checksum summed)"
	"u6-decap-vxlan|VXLAN over the IPv6 underlay (UDP checksum verified) -> pod"
	"u6-encap-mplsogre|IPv4 pod -> MPLSoGRE over the IPv6 underlay"
)
seeds=()
for p in "${paths[@]}"; do seeds+=("${p%%|*}"); done

# seed, count and fate of each seed at a tree: icount.sh's "seed count
# instructions/packet (packets P rx R tx T drops D)", its fate as shares of
# P (the bursts' sizes differ between commits)
counts() {
	"$here/icount.sh" "$1" "${seeds[@]}" |
		awk '{ gsub(/[()]/, ""); printf "%s %s rx %.3f tx %.3f drops %.3f\n", $1, $2, $7 / $5, $9 / $5, $11 / $5 }'
}
declare -A bn bf hn hf
while read -r s n fate; do bn[$s]=$n; bf[$s]=$fate; done < <(counts "$wt")
while read -r s n fate; do hn[$s]=$n; hf[$s]=$fate; done < <(counts "$repo")
# (a process substitution's failure does not stop the script: its output does)
[ ${#bn[@]} -gt 0 ] || { echo "report: icount.sh counted nothing at $base" >&2; exit 1; }

dpdk=$(pkg-config --modversion libdpdk)
gccv=$(gcc -dumpfullversion)
cat <<EOF
# Fast path instructions per packet

Written by \`make bench-icount\` (\`hack/icount/report.sh\`) on $(date -u +%F), at $head$dirty against $base; DPDK $dpdk, gcc $gccv, x86-64.

What a packet costs the worker in instructions, from its RX burst to its TX burst, on each main path: the fuzzing harness's topology (\`dpdk/fastpath/fuzz/harness\`) on ring ports, 2,000 bursts of one corpus seed (\`dpdk/fastpath/fuzz/corpus\`, a small frame: 64 bytes on the wire for IPv4, 84 for IPv6, plus the outer headers for decapsulation), counted by callgrind and divided by the packets forwarded. Unlike cycles, the count is exact and the same on every run of every machine with this compiler and DPDK, so it shows what a fast-path change did while the host moves cycles by tens of percent from one run to the next (\`docs/perf.md\`). It is not a rate: memory and the ports (memif copies, cache lines crossing cores) are in cycles, not here. Baseline: $base, the commit the last cycle figures (\`docs/benchmarks/perf.md\`) were measured at, unless the command gave another.

| path (seed) | what | $base | $head | change |
|---|---|---:|---:|---:|
EOF
for p in "${paths[@]}"; do
	s=${p%%|*}
	what=${p#*|}
	h=${hn[$s]:-}
	b=${bn[$s]:-}
	if [ -z "$h" ]; then
		echo "report: no count for $s at $head" >&2
		exit 1
	fi
	# a baseline that did not forward the seed as HEAD does measured another path
	if [ -z "$b" ] || [ "${bf[$s]}" != "${hf[$s]}" ]; then
		printf '| %s | %s | - | %.2f | - |\n' "$s" "$what" "$h"
		continue
	fi
	awk -v s="$s" -v w="$what" -v b="$b" -v h="$h" \
		'BEGIN { printf "| %s | %s | %.2f | %.2f | %+.1f%% |\n", s, w, b, h, (h - b) / b * 100 }'
done
cat <<EOF

"-": the baseline did not send the seed's packets where this commit does (a path it lacked). Reproduce one count: \`hack/icount/icount.sh . encap-vxlan\`; against any commit: \`hack/icount/icount.sh /path/to/its/worktree encap-vxlan\`.
EOF
