#!/usr/bin/env bash
# Filament two-node demo with agents (make run-agents): each node runs
# filament-dataplane with only its fabric port (deploy/demo-agents/dataplane-nodeN.yaml)
# and filament-agent (deploy/demo-agents/agent-nodeN.yaml); the pods are attached
# by running filament-cni as kubelet does. Then: pings, TCP, an agent
# restart under a running ping (no packet lost), DEL. Everything it starts
# is stopped by PID and every namespace removed at exit. Needs root.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/bin
NAMESPACES=(fil-node1 fil-node2 fil-pod1 fil-pod2)
declare -A AGENT_PID
PIDS=()
RUN=""
FAILED=0

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo-agents: $*" >&2; exit 1; }
alive() { kill -0 "$1" 2>/dev/null && [ "$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]; }
stop() {
	local pid=$1 i
	alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do alive "$pid" || break; sleep 0.1; done
	alive "$pid" && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
}
cleanup() {
	local rc=$? p ns
	set +e
	trap - EXIT INT TERM
	for p in "${PIDS[@]}"; do stop "$p"; done
	for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null; done
	rm -rf /var/run/dpdk/fil-node1 /var/run/dpdk/fil-node2
	if [ -n "$RUN" ]; then
		if [ "$rc" -ne 0 ]; then
			for f in "$RUN"/*.log; do echo "---- $f ----" >&2; tail -n 15 "$f" >&2; done
			echo "demo-agents: FAILED (exit $rc); logs kept in $RUN" >&2
		else
			rm -rf "$RUN"
		fi
	fi
	exit "$rc"
}

[ "$(id -u)" = 0 ] || die "needs root"
for b in filament-dataplane filament-agent filament-cni filamentctl; do
	[ -x "$BIN/$b" ] || die "$BIN/$b is missing: run make build"
done
for ns in "${NAMESPACES[@]}"; do
	ip netns list | grep -qw "^$ns" && die "namespace $ns exists (an earlier demo?): remove it first"
done
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
RUN=$(mktemp -d /tmp/filament-demo-agents.XXXXXX)

NO_HUGE=false
hp_free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
hp_size=$(awk '/^Hugepagesize:/ {print $2}' /proc/meminfo)
if [ "${DEMO_NO_HUGE:-0}" = 1 ] || ! grep -qw hugetlbfs /proc/mounts || [ $((${hp_free:-0} * ${hp_size:-0} / 1024)) -lt 512 ]; then
	NO_HUGE=true
fi

say "namespaces: two nodes joined by a veth fabric, two empty pods"
for ns in "${NAMESPACES[@]}"; do
	ip netns add "$ns"
	ip -n "$ns" link set lo up
done
ip link add fab1 netns fil-node1 type veth peer name fab2 netns fil-node2
for n in 1 2; do
	ip netns exec "fil-node$n" sysctl -qw "net.ipv6.conf.fab$n.disable_ipv6=1" || true
	ip -n "fil-node$n" link set "fab$n" address "02:fe:c0:a8:64:0$n" up
done

say "starting the dataplanes (fabric port only) and the agents"
for n in 1 2; do
	sed "s/^  no_huge: false/  no_huge: $NO_HUGE/" "$ROOT/deploy/demo-agents/dataplane-node$n.yaml" >"$RUN/dataplane-node$n.yaml"
	sed -e "s|/run/filament/node$n|$RUN/node$n|" -e "s|/var/lib/filament/node$n|$RUN/state-node$n|" \
		"$ROOT/deploy/demo-agents/agent-node$n.yaml" >"$RUN/agent-node$n.yaml"
	mkdir -p "$RUN/node$n"
	"$BIN/filament-dataplane" --check --config "$RUN/dataplane-node$n.yaml" --socket "$RUN/node$n/dataplane.sock" | sed "s/^/node$n: /"
	"$BIN/filament-agent" --check --config "$RUN/agent-node$n.yaml" | sed "s/^/node$n: /"
	ip netns exec "fil-node$n" "$BIN/filament-dataplane" --config "$RUN/dataplane-node$n.yaml" \
		--socket "$RUN/node$n/dataplane.sock" >"$RUN/dataplane-node$n.log" 2>&1 &
	PIDS+=($!)
	echo "node$n: filament-dataplane PID $!"
done
start_agent() {
	local n=$1
	ip netns exec "fil-node$n" "$BIN/filament-agent" --config "$RUN/agent-node$n.yaml" >>"$RUN/agent-node$n.log" 2>&1 &
	PIDS+=($!)
	AGENT_PID[$n]=$!
	echo "node$n: filament-agent PID $!"
}
netconf() { # NODE COMMAND-specific extras are not needed here
	printf '{"cniVersion":"1.1.0","name":"filament","type":"filament-cni","filament":{"socket":"%s","log-file":"%s"}}' \
		"$RUN/node$1/cni.sock" "$RUN/cni.log"
}
cni() { # NODE COMMAND CONTAINERID NETNS
	netconf "$1" | env -i PATH="$PATH" CNI_COMMAND="$2" CNI_CONTAINERID="$3" CNI_NETNS="$4" CNI_IFNAME=eth0 \
		CNI_PATH="$BIN" CNI_ARGS="K8S_POD_NAMESPACE=demo;K8S_POD_NAME=pod$1" "$BIN/filament-cni"
}
wait_ready() {
	local n=$1 i
	for ((i = 0; i < 300; i++)); do
		cni "$n" STATUS "" "" >/dev/null 2>&1 && { echo "node$n: agent ready"; return 0; }
		sleep 0.2
	done
	die "node$n's agent not ready after 60 s"
}
for n in 1 2; do start_agent "$n"; done
for n in 1 2; do wait_ready "$n"; done

say "kubelet's part: filament-cni ADD for pod1 on node1 and pod2 on node2"
declare -A IP
for n in 1 2; do
	out=$(cni "$n" ADD "demo-pod$n" "/var/run/netns/fil-pod$n")
	IP[$n]=$(sed -n 's|.*"address": *"\([0-9.]*\)/.*|\1|p' <<<"$out" | head -1)
	echo "pod$n: ${IP[$n]}"
	echo "$out" | sed 's/^/  /'
done

check() { # NAME NS ARGS...
	local name=$1 ns=$2
	shift 2
	if ip netns exec "$ns" "$@" >"$RUN/check.out" 2>&1; then
		printf '  ok    %s\n' "$name"
	else
		printf '  FAIL  %s\n' "$name"
		sed 's/^/        /' "$RUN/check.out"
		FAILED=1
	fi
}
say "pings"
check "pod1 -> gateway 10.10.0.1" fil-pod1 ping -c 3 -i 0.2 -w 10 10.10.0.1
for i in 1 2 3 4 5; do ip netns exec fil-pod1 ping -c 1 -W 1 "${IP[2]}" >/dev/null 2>&1 && break; done
check "pod1 -> pod2 ${IP[2]} (VXLAN)" fil-pod1 ping -c 5 -i 0.2 -w 10 "${IP[2]}"
check "pod2 -> pod1 ${IP[1]} (VXLAN)" fil-pod2 ping -c 5 -i 0.2 -w 10 "${IP[1]}"

if command -v iperf3 >/dev/null; then
	say "TCP pod1 -> pod2 (iperf3, 2 s)"
	ip netns exec fil-pod2 iperf3 -s -1 -p 5201 >"$RUN/iperf3-server.log" 2>&1 &
	PIDS+=($!)
	sleep 0.5
	check "TCP pod1 -> pod2 (iperf3)" fil-pod1 timeout 30 iperf3 -c "${IP[2]}" -p 5201 -t 2 -f m --connect-timeout 3000
	awk '/receiver$/ {print "  " $7, $8, "received"}' "$RUN/check.out"
fi

say "node1's agent restarts while pod1 pings pod2: no packet lost"
ip netns exec fil-pod1 ping -c 30 -i 0.1 -W 2 "${IP[2]}" >"$RUN/restart-ping.out" 2>&1 &
ping_pid=$!
sleep 0.5
stop "${AGENT_PID[1]}"
echo "node1: agent stopped (exit on SIGTERM, the dataplane keeps its tables)"
start_agent 1
wait_ready 1
wait "$ping_pid" || true
tail -n 2 "$RUN/restart-ping.out" | sed 's/^/  /'
if grep -q ' 0% packet loss' "$RUN/restart-ping.out"; then echo "  ok    no packet lost"; else echo "  FAIL  packets lost"; FAILED=1; fi

say "what node1's agent programmed (filamentctl)"
for c in ports nexthops routes; do
	echo "\$ filamentctl $c"
	"$BIN/filamentctl" --socket "$RUN/node1/dataplane.sock" "$c" | sed 's/^/  /'
done

say "kubelet's part: filament-cni DEL for both pods"
for n in 1 2; do
	cni "$n" DEL "demo-pod$n" "/var/run/netns/fil-pod$n" && echo "pod$n: deleted"
done
if ip -n fil-pod1 link show eth0 >/dev/null 2>&1; then echo "  FAIL  pod1's eth0 survived DEL"; FAILED=1; fi
if "$BIN/filamentctl" --socket "$RUN/node1/dataplane.sock" routes | grep -q "${IP[1]}/32"; then
	echo "  FAIL  pod1's route survived DEL"
	FAILED=1
fi

echo
if [ "$FAILED" = 0 ]; then
	echo "demo-agents: PASSED: agents attached pods on two nodes over VXLAN and kept them forwarding across a restart"
else
	echo "demo-agents: FAILED: see above"
	exit 1
fi
