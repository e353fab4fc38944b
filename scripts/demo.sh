#!/usr/bin/env bash
# Filament two-node demo (what `make run` runs). Needs root, bin/ built.
#
#   fil-pod1                       fil-node1                  fil-node2                       fil-pod2
#   eth0, net1 --veths-- [dataplane + agent] fab1 ==veth== fab2 [dataplane + agent] --veths-- eth0, net1
#                          192.168.100.1                            192.168.100.2
#
# Each node is a network namespace running bin/filament-dataplane with only
# its fabric port (deploy/demo-agents/dataplane-nodeN.yaml) and
# bin/filament-agent in standalone mode (deploy/demo-agents/agent-nodeN.yaml),
# which programs two virtual networks into it: red (VRF 1, 10.10.0.0/16,
# VXLAN VNI 100) and blue (VRF 2, 10.20.0.0/16, MPLSoUDP label 200). The
# pods are attached as each node's kubelet would: by running
# bin/filament-cni with CNI_COMMAND=ADD (and DEL at the end) against the
# node's agent. Each pod gets eth0 on one network and net1 on the other; the
# pods ping each other over both, across the fabric. The fabric veths have
# no kernel address: the two vRouters find each other by ARP in the fast
# path, and each node's own stack has its underlay address on its host port
# (vhost0, a TAP the agent has the dataplane make, TF's vhost0), through
# which the node pings its pod, the other node's pod and the other node.
# When both dataplanes announce the "ipv6" capability, red is dual stack
# (fd00:10::/64): the pods get IPv6 addresses too and ping each other and
# their gateway over IPv6; otherwise the script leaves red's IPv6 lines out.
# With hugepages, a DPDK pod joins node2 on eth0's network (fil-dpdk2:
# dpdk-testpmd on a vhost-user attachment, virtio-user as the server,
# icmpecho answering ARP and ping) and pod1 pings it across the fabric.
#
# Environment: DEMO_ENCAP=vxlan|mplsoudp (default vxlan): the overlay of the
# pods' eth0 (red or blue), used for the path-MTU step and the TCP transfer;
# net1 gets the other one. DEMO_NO_HUGE=1 runs DPDK without hugepages even
# when there are some (it does anyway when there are none); DEMO_KEEP_LOGS=1
# keeps the run directory (logs, configs) even when the demo passes.
#
# deploy/demo/nodeN.yaml are no longer run: they are examples of a static
# dataplane configuration (ports, VRFs, tunnels and routes without an agent).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/bin
CTL=$BIN/filamentctl
ENCAP=${DEMO_ENCAP:-vxlan}
NAMESPACES=(fil-node1 fil-node2 fil-pod1 fil-pod2 fil-dpdk2)
PIDS=()     # processes this script started, stopped by PID at exit
DP_PIDS=()  # the two dataplanes' PIDs
declare -A AGENT_PID
RUN=""
FAILED=0

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

# alive PID: the process exists and is not a zombie waiting to be reaped.
alive() {
	local state
	state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$state" ] && [ "$state" != Z ]
}

# stop PID: SIGTERM, up to 15 s to exit, then SIGKILL; always reaped.
stop() {
	local pid=$1 i
	alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		echo "demo: PID $pid ignored SIGTERM for 15 s, killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# forget PID: stopped and reaped here, never to be signalled again (the
# number may belong to another process by the time cleanup runs).
forget() {
	local keep=() p
	for p in "${PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

cleanup() {
	local rc=$? pid ns f
	set +e
	trap - EXIT INT TERM
	# Agents first (they would log the dataplanes' going away), then the rest.
	for pid in "${AGENT_PID[@]}"; do
		stop "$pid"
	done
	for pid in "${PIDS[@]}"; do
		stop "$pid"
	done
	PIDS=()
	for ns in "${NAMESPACES[@]}"; do
		ip netns del "$ns" 2>/dev/null # the veths go with them
	done
	# DPDK leaves its runtime directory (the telemetry socket) behind.
	[ -z "$RUN" ] || rm -rf /var/run/dpdk/fil-node1 /var/run/dpdk/fil-node2 /var/run/dpdk/fil-dpdk2
	# The DPDK pod's hugepage files (--file-prefix fil-dpdk2).
	[ -z "$RUN" ] || rm -f /dev/hugepages/fil-dpdk2*
	if [ -n "$RUN" ]; then
		if [ "$rc" -ne 0 ]; then
			for f in "$RUN"/*.log; do
				[ -s "$f" ] || continue
				echo "---- last lines of $f ----" >&2
				tail -n 20 "$f" >&2
			done
			echo "demo: FAILED (exit $rc); logs and configs kept in $RUN" >&2
		elif [ "${DEMO_KEEP_LOGS:-0}" = 1 ]; then
			echo "demo: logs and configs kept in $RUN"
		else
			rm -rf "$RUN"
		fi
	fi
	exit "$rc"
}

# ---- checks ------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, DPDK): run it as root"
for b in filament-dataplane filament-agent filament-cni filamentctl; do
	[ -x "$BIN/$b" ] || die "$BIN/$b is missing: run make build first"
done
# eth0's network; net1 gets the other. TUN_MTU: the largest inner packet
# eth0's tunnel takes over the fabric's 1500 (the fast path's
# FP_VXLAN_OVERHEAD 50, FP_MPLSOUDP_OVERHEAD 32).
case $ENCAP in
vxlan) NET0=red NET1=blue TUN_MTU=1450 ;;
mplsoudp) NET0=blue NET1=red TUN_MTU=1468 ;;
*) die "DEMO_ENCAP=$ENCAP: must be vxlan or mplsoudp" ;;
esac
declare -A NET_NAME=([red]="red (VRF 1, VXLAN VNI 100)" [blue]="blue (VRF 2, MPLSoUDP label 200)")
declare -A NET_ENCAP=([red]=VXLAN [blue]=MPLSoUDP)
declare -A NET_GW=([red]=10.10.0.1 [blue]=10.20.0.1)
for tool in ip ping ethtool sysctl ss; do
	command -v "$tool" >/dev/null || die "$tool is missing: run make deps (scripts/deps.sh)"
done
for ns in "${NAMESPACES[@]}"; do
	if ip netns list | grep -qw "^$ns"; then
		pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
		[ -z "$pids" ] || die "namespace $ns of an earlier demo still has processes ($pids): stop them first"
		echo "demo: removing namespace $ns left by an earlier run"
		ip netns del "$ns"
	fi
done

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
RUN=$(mktemp -d /tmp/filament-demo.XXXXXX)

# Hugepages: both dataplanes take theirs privately (--in-memory), ~150 MiB
# each here. Without them, DPDK runs on ordinary memory (--no-huge).
hp_free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
hp_size=$(awk '/^Hugepagesize:/ {print $2}' /proc/meminfo)
hp_mib=$((${hp_free:-0} * ${hp_size:-0} / 1024))
if [ "${DEMO_NO_HUGE:-0}" = 1 ]; then
	NO_HUGE=true
	MEM_NAME="no hugepages (DEMO_NO_HUGE=1): --no-huge -m 512 (ordinary memory, slower)"
elif grep -qw hugetlbfs /proc/mounts && [ "$hp_mib" -ge 512 ]; then
	NO_HUGE=false
	MEM_NAME="hugepages ($hp_mib MiB free)"
else
	NO_HUGE=true
	MEM_NAME="no hugepages: --no-huge -m 512 (ordinary memory, slower)"
fi
# The DPDK pod (testpmd, 256 MiB) needs hugepages of its own: vhost-user
# shares the pod's memory with the vRouter through hugepage files.
DPDK_POD=false
if [ "$NO_HUGE" = false ] && [ "$hp_mib" -ge 1024 ] && command -v dpdk-testpmd >/dev/null; then
	DPDK_POD=true
fi

cat <<EOF

Filament two-node demo: dataplane + agent (standalone) per node, pods added by filament-cni;
eth0 on ${NET_NAME[$NET0]}, net1 on ${NET_NAME[$NET1]}; $MEM_NAME

  fil-pod1                          fil-node1                          fil-node2                          fil-pod2
  eth0, net1 --veths-- [filament-dataplane + filament-agent] fab1 ==veth== fab2 [filament-dataplane + filament-agent] --veths-- eth0, net1
                                  underlay 192.168.100.1             192.168.100.2

It shows:
  * each node's agent programs its dataplane (networks red and blue, tunnels to the
    other node, routes to its pod block) and answers filament-cni
  * kubelet's part: filament-cni ADD makes each pod's eth0 and net1, addresses from the agent
  * each pod's gateway (10.10.0.1 on red, 10.20.0.1 on blue) is its node's vRouter
  * pod1 <-> pod2 across the fabric over VXLAN (red) and MPLSoUDP (blue); the vRouters
    resolve each other's underlay MAC by ARP in the fast path (no kernel address on fab1/fab2)
  * red is dual stack when the dataplanes announce IPv6: pods get an IPv6 address too
    (fd00:10::/64) and ping each other and gateway6 fd00:10::1 over IPv6 across the fabric
  * each node's host port (vhost0, TF's vhost0) holds its underlay address: node1 pings
    pod1, pod2 (over the overlay) and node2; pod2 pings node1
  * with hugepages, a DPDK pod on node2 (testpmd on vhost-user, icmpecho) answers pod1's pings
  * a DF packet too big for eth0's tunnel: node1's vRouter answers ICMP
    "fragmentation needed" (mtu $TUN_MTU) from ${NET_GW[$NET0]}
  * a TCP transfer on eth0, node1's agent restarting under a running ping (no loss),
    node1's tables (filamentctl), filament-cni DEL, and every port's and drop counter
Run directory (configs, logs): $RUN
EOF

# ---- configs -----------------------------------------------------------------
say "node configs (deploy/demo-agents, sockets and state in the run directory)"
for n in 1 2; do
	mkdir -p "$RUN/node$n"
	sed "s/^  no_huge: false/  no_huge: $NO_HUGE/" "$ROOT/deploy/demo-agents/dataplane-node$n.yaml" >"$RUN/dataplane-node$n.yaml"
	sed -e "s|/run/filament/node$n|$RUN/node$n|g" -e "s|/var/lib/filament/node$n|$RUN/state-node$n|" \
		"$ROOT/deploy/demo-agents/agent-node$n.yaml" >"$RUN/agent-node$n.yaml"
	"$BIN/filament-dataplane" --check --config "$RUN/dataplane-node$n.yaml" --socket "$RUN/node$n/dataplane.sock" | sed "s/^/node$n: /"
	"$BIN/filament-agent" --check --config "$RUN/agent-node$n.yaml" | sed "s/^/node$n: /"
done

say "network namespaces: two nodes joined by a veth fabric, two empty pods"
for ns in "${NAMESPACES[@]}"; do
	ip netns add "$ns"
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
	ip -n "$ns" link set lo up
done
ip link add fab1 netns fil-node1 type veth peer name fab2 netns fil-node2
for n in 1 2; do
	ip -n "fil-node$n" link set "fab$n" address "02:fe:c0:a8:64:0$n" up
done

say "starting the dataplanes (fabric port only) and the agents (standalone)"
for n in 1 2; do
	ip netns exec "fil-node$n" "$BIN/filament-dataplane" --config "$RUN/dataplane-node$n.yaml" \
		--stats-interval 5s --socket "$RUN/node$n/dataplane.sock" >"$RUN/dataplane-node$n.log" 2>&1 &
	PIDS+=($!)
	DP_PIDS+=($!)
	echo "node$n: filament-dataplane PID $!"
done
start_agent() {
	local n=$1
	ip netns exec "fil-node$n" "$BIN/filament-agent" --config "$RUN/agent-node$n.yaml" >>"$RUN/agent-node$n.log" 2>&1 &
	PIDS+=($!)
	AGENT_PID[$n]=$!
	echo "node$n: filament-agent PID $!"
}
# netconf NODE NETWORK: kubelet's CNI configuration; args.cni.network picks the network.
netconf() {
	printf '{"cniVersion":"1.1.0","name":"filament","type":"filament-cni","filament":{"socket":"%s","log-file":"%s"},"args":{"cni":{"network":"%s"}}}' \
		"$RUN/node$1/cni.sock" "$RUN/cni.log" "$2"
}
cni() { # NODE COMMAND NETWORK IFNAME
	netconf "$1" "$3" | env -i PATH="$PATH" CNI_COMMAND="$2" CNI_CONTAINERID="demo-pod$1" \
		CNI_NETNS="/var/run/netns/fil-pod$1" CNI_IFNAME="$4" CNI_PATH="$BIN" \
		CNI_ARGS="K8S_POD_NAMESPACE=demo;K8S_POD_NAME=pod$1" "$BIN/filament-cni"
}
cni_dpdk() { # COMMAND: node2's DPDK pod, eth0 on NET0 in mode vhost-user
	printf '{"cniVersion":"1.1.0","name":"filament","type":"filament-cni","filament":{"socket":"%s","log-file":"%s","mode":"vhost-user"},"args":{"cni":{"network":"%s"}}}' \
		"$RUN/node2/cni.sock" "$RUN/cni.log" "$NET0" |
		env -i PATH="$PATH" CNI_COMMAND="$1" CNI_CONTAINERID="demo-dpdk2" CNI_NETNS="/var/run/netns/fil-dpdk2" \
			CNI_IFNAME=eth0 CNI_PATH="$BIN" CNI_ARGS="K8S_POD_NAMESPACE=demo;K8S_POD_NAME=dpdk2" "$BIN/filament-cni"
}
wait_ready() {
	local n=$1 i
	for ((i = 0; i < 300; i++)); do
		if cni "$n" STATUS "$NET0" eth0 >/dev/null 2>&1; then
			echo "node$n: agent ready (filament-cni STATUS)"
			return 0
		fi
		sleep 0.2
	done
	die "node$n's agent not ready after 60 s"
}
# Dual stack: network red carries IPv6 too (subnet6 in agent-nodeN.yaml)
# when both dataplanes announce the "ipv6" capability; otherwise the
# dual-stack lines are left out of the agents' configurations and red
# stays IPv4-only (an agent cannot program IPv6 into a dataplane without it).
IPV6=true
for n in 1 2; do
	v=""
	for ((i = 0; i < 300; i++)); do
		v=$("$CTL" --socket "$RUN/node$n/dataplane.sock" -o json version 2>/dev/null) && break
		sleep 0.2
	done
	[ -n "$v" ] || die "node$n's dataplane does not answer after 60 s"
	grep -q '"ipv6"' <<<"$v" || IPV6=false
done
if [ "$IPV6" = true ]; then
	echo "both dataplanes announce \"ipv6\": red is dual stack (fd00:10::/64)"
	IPV6_RESULT="ok"
else
	echo "a dataplane does not announce \"ipv6\": red stays IPv4-only (subnet6, pod_block6, pod_blocks6 left out)"
	for n in 1 2; do
		sed -i -E '/^ *(subnet6|gateway6|pod_block6|pod_blocks6):/d' "$RUN/agent-node$n.yaml"
		"$BIN/filament-agent" --check --config "$RUN/agent-node$n.yaml" | sed "s/^/node$n: /"
	done
	IPV6_RESULT="skipped (the dataplane does not announce the \"ipv6\" capability)"
fi
for n in 1 2; do start_agent "$n"; done
for n in 1 2; do wait_ready "$n"; done

say "kubelet's part: filament-cni ADD, eth0 on $NET0 and net1 on $NET1"
declare -A IP IP6
for n in 1 2; do
	for spec in "eth0:$NET0" "net1:$NET1"; do
		ifc=${spec%%:*} net=${spec#*:}
		out=$(cni "$n" ADD "$net" "$ifc") || die "filament-cni ADD $ifc for pod$n failed: $out"
		IP[$n,$net]=$(sed -n 's|.*"address": *"\([0-9.]*\)/.*|\1|p' <<<"$out" | head -1)
		[ -n "${IP[$n,$net]}" ] || die "filament-cni ADD $ifc for pod$n: no address"
		IP6[$n,$net]=$(sed -n 's|.*"address": *"\([0-9a-f]*:[0-9a-f:]*\)/.*|\1|p' <<<"$out" | head -1)
		if [ "$IPV6" = true ] && [ "$net" = red ] && [ -z "${IP6[$n,$net]}" ]; then
			die "filament-cni ADD $ifc for pod$n: no IPv6 address on dual-stack red: $out"
		fi
		echo "pod$n: $ifc ${IP[$n,$net]} ${IP6[$n,$net]:-} on ${NET_NAME[$net]}"
	done
done

# ---- traffic -----------------------------------------------------------------
declare -A RESULT
KEYS=()
ping_check() { # NAME NS ARGS...
	local name=$1 ns=$2 out rc=0 tx rx avg
	shift 2
	KEYS+=("$name")
	echo "\$ ip netns exec $ns ping $*"
	out=$(ip netns exec "$ns" ping "$@" 2>&1) || rc=$?
	echo "$out" | sed 's/^/  /'
	tx=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' <<<"$out")
	rx=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' <<<"$out")
	avg=$(sed -n 's|^rtt [^=]*= [0-9.]*/\([0-9.]*\)/.*|\1|p' <<<"$out")
	if [ "$rc" = 0 ]; then
		RESULT[$name]="ok   ${rx:-?}/${tx:-?} replies, rtt avg ${avg:-?} ms"
	else
		RESULT[$name]="FAIL ${rx:-0}/${tx:-?} replies"
		FAILED=1
	fi
}
for net in "$NET0" "$NET1"; do
	gw=${NET_GW[$net]} e=${NET_ENCAP[$net]}
	say "network $net: gateways, then pod1 <-> pod2 across the fabric ($e)"
	ping_check "pod1 -> gateway $gw ($net)" fil-pod1 -c 3 -i 0.2 -w 10 -I "${IP[1,$net]}" "$gw"
	for ((i = 1; i <= 10; i++)); do
		ip netns exec fil-pod1 ping -c 1 -W 1 -I "${IP[1,$net]}" "${IP[2,$net]}" >/dev/null 2>&1 && break
	done
	echo "underlay and tunnel up after $i probe(s)"
	ping_check "pod1 -> pod2 ${IP[2,$net]} ($e)" fil-pod1 -c 5 -i 0.2 -w 10 -I "${IP[1,$net]}" "${IP[2,$net]}"
	ping_check "pod2 -> pod1 ${IP[1,$net]} ($e)" fil-pod2 -c 5 -i 0.2 -w 10 -I "${IP[2,$net]}" "${IP[1,$net]}"
done

if [ "$IPV6" = true ]; then
	say "network red over IPv6: gateway6, then pod1 <-> pod2 across the fabric (VXLAN)"
	ip -n fil-pod1 -6 -o addr show scope global | sed 's/^/  /'
	ping_check "pod1 -> gateway6 fd00:10::1 (red)" fil-pod1 -c 3 -i 0.2 -w 10 -I "${IP6[1,red]}" fd00:10::1
	ping_check "pod1 -> pod2 ${IP6[2,red]} (VXLAN)" fil-pod1 -c 5 -i 0.2 -w 10 -I "${IP6[1,red]}" "${IP6[2,red]}"
	ping_check "pod2 -> pod1 ${IP6[1,red]} (VXLAN)" fil-pod2 -c 5 -i 0.2 -w 10 -I "${IP6[2,red]}" "${IP6[1,red]}"
fi

say "host ports: the nodes' own stacks (underlay address on vhost0) reach the pods through their vRouters"
echo "\$ ip -n fil-node1 -4 -o addr show dev vhost0; ip -n fil-node1 route show dev vhost0"
ip -n fil-node1 -4 -o addr show dev vhost0 | sed 's/^/  /'
ip -n fil-node1 route show dev vhost0 | sed 's/^/  /'
# A pod answers the node through its default route, which the last ADD
# (net1) set: the node pings the pods' addresses on that interface (a reply
# from eth0's address leaving by net1 would be dropped as spoof_ip).
defif=$(ip -n fil-pod1 route show default | sed -n 's/.* dev \([^ ]*\).*/\1/p')
case $defif in
eth0) HNET=$NET0 ;;
net1) HNET=$NET1 ;;
*) die "pod1 has no default route through eth0 or net1" ;;
esac
echo "the pods' default route is through $defif ($HNET): the node pings their $HNET addresses"
ping_check "node1 -> pod1 ${IP[1,$HNET]} (local)" fil-node1 -c 3 -i 0.2 -w 10 "${IP[1,$HNET]}"
ping_check "node1 -> pod2 ${IP[2,$HNET]} (${NET_ENCAP[$HNET]})" fil-node1 -c 3 -i 0.2 -w 10 "${IP[2,$HNET]}"
ping_check "pod2 -> node1 192.168.100.1 (overlay)" fil-pod2 -c 3 -i 0.2 -w 10 192.168.100.1
ping_check "node1 -> node2 192.168.100.2 (fabric)" fil-node1 -c 3 -i 0.2 -w 10 192.168.100.2

DPDK="skipped (needs 1 GiB of free hugepages and dpdk-testpmd)"
if [ "$DPDK_POD" = true ]; then
	say "a DPDK pod on node2: filament-cni ADD in mode vhost-user, dpdk-testpmd as the pod (icmpecho)"
	out=$(cni_dpdk ADD) || die "filament-cni ADD (vhost-user) for dpdk2 failed: $out"
	dip=$(sed -n 's|.*"address": *"\([0-9.]*\)/.*|\1|p' <<<"$out" | head -1)
	dmac=$(sed -n 's|.*"mac": *"\([0-9a-f:]*\)".*|\1|p' <<<"$out" | head -1)
	dsock=$(sed -n 's|.*"socketPath": *"\([^"]*\)".*|\1|p' <<<"$out" | head -1)
	[ -n "$dip" ] && [ -n "$dmac" ] && [ -n "$dsock" ] || die "filament-cni ADD (vhost-user): no address, MAC or socketPath: $out"
	echo "dpdk2: eth0 $dip MAC $dmac on ${NET_NAME[$NET0]}, vhost-user socket $dsock"
	echo "dpdk2: $(dirname "$dsock")/interface.json:"
	sed 's/^/  /' "$(dirname "$dsock")/interface.json"
	# The pod is the vhost-user server; node2's vRouter, the client,
	# connects within a second. Main and forwarding lcore on CPU 0: the
	# dataplanes' workers have CPU 1. --stats-period: testpmd runs until
	# SIGTERM instead of reading stdin.
	ip netns exec fil-dpdk2 dpdk-testpmd --lcores=0@0,1@0 --no-pci --file-prefix fil-dpdk2 \
		--single-file-segments -m 256 --log-level '*:notice' \
		--vdev="net_virtio_user0,path=$dsock,server=1,queues=1,mac=$dmac" \
		-- --forward-mode=icmpecho --total-num-mbufs=2048 --stats-period 60 </dev/null >"$RUN/testpmd-dpdk2.log" 2>&1 &
	tp_pid=$!
	PIDS+=($tp_pid)
	echo "dpdk2: dpdk-testpmd PID $tp_pid"
	for ((i = 1; i <= 20; i++)); do
		ip netns exec fil-pod1 ping -c 1 -W 1 -I "${IP[1,$NET0]}" "$dip" >/dev/null 2>&1 && break
	done
	echo "testpmd answering after $i probe(s)"
	key="pod1 -> dpdk2 $dip (vhost-user)"
	ping_check "$key" fil-pod1 -c 5 -i 0.2 -w 10 -I "${IP[1,$NET0]}" "$dip"
	DPDK="ok   attached, answered pings, deleted"
	[[ ${RESULT[$key]} == ok* ]] || DPDK="FAIL no answer"
	# Done with it: a forwarding lcore polls all the time, and the rest of
	# the demo has 2 cores.
	stop "$tp_pid"
	forget "$tp_pid"
	rm -f /dev/hugepages/fil-dpdk2*
	cni_dpdk DEL && echo "dpdk2: deleted (its socket directory too)" || { DPDK="FAIL DEL"; FAILED=1; }
	if [ -e "$(dirname "$dsock")" ]; then DPDK="FAIL socket directory survived DEL"; FAILED=1; fi
fi

say "pod1 -> pod2 on eth0 with DF, 1500 bytes: too big for the tunnel ($TUN_MTU), node1's vRouter says so"
peer_idx=$(ip -n fil-pod1 -o link show eth0 | sed -n 's/^[0-9]*: eth0@if\([0-9]*\):.*/\1/p')
p1h=$(ip -n fil-node1 -o link show | awk -F': ' -v i="$peer_idx" '$1 == i {sub(/@.*/, "", $2); print $2}')
p1h_mtu=$(ip -n fil-node1 -o link show "$p1h" | sed -n 's/.* mtu \([0-9]*\) .*/\1/p')
eth0_mtu=$(ip -n fil-pod1 -o link show eth0 | sed -n 's/.* mtu \([0-9]*\) .*/\1/p')
echo "pod1 eth0 MTU $eth0_mtu -> 1500 and its peer $p1h on node1 MTU $p1h_mtu -> 1500 for this step"
ip -n fil-node1 link set "$p1h" mtu 1500
ip -n fil-pod1 link set eth0 mtu 1500
echo "\$ ip netns exec fil-pod1 ping -M do -s 1472 -c 1 -w 5 ${IP[2,$NET0]}"
big=$(ip netns exec fil-pod1 ping -M do -s 1472 -c 1 -w 5 "${IP[2,$NET0]}" 2>&1) || true
echo "$big" | sed 's/^/  /'
ip -n fil-pod1 route get "${IP[2,$NET0]}" | sed 's/^/  /'
ip -n fil-pod1 link set eth0 mtu "$eth0_mtu"
ip -n fil-node1 link set "$p1h" mtu "$p1h_mtu"
if grep -q "^From ${NET_GW[$NET0]//./\\.} .*mtu = $TUN_MTU)" <<<"$big"; then
	RESULT[too big]="ok   ICMP frag needed, mtu $TUN_MTU"
else
	RESULT[too big]="FAIL no ICMP frag needed (mtu $TUN_MTU) from ${NET_GW[$NET0]}"
	FAILED=1
fi

TCP="skipped (iperf3 not installed: add it with make deps)"
if command -v iperf3 >/dev/null; then
	say "TCP pod1 -> pod2 on eth0 with iperf3 (3 s)"
	ip netns exec fil-pod2 iperf3 -s -1 -B "${IP[2,$NET0]}" -p 5201 >"$RUN/iperf3-server.log" 2>&1 &
	PIDS+=($!)
	iperf_pid=$!
	for ((i = 0; i < 50; i++)); do
		ip netns exec fil-pod2 ss -Hltn "sport = :5201" 2>/dev/null | grep -q . && break
		sleep 0.1
	done
	if ip netns exec fil-pod1 timeout 30 iperf3 -c "${IP[2,$NET0]}" -p 5201 -t 3 -f m \
		--connect-timeout 3000 >"$RUN/iperf3.log" 2>&1; then
		sed 's/^/  /' "$RUN/iperf3.log"
		TCP="ok   iperf3: $(awk '/receiver$/ {print $7, $8}' "$RUN/iperf3.log") received"
	else
		sed 's/^/  /' "$RUN/iperf3.log" 2>/dev/null || true
		TCP="FAIL iperf3 pod1 -> pod2"
		FAILED=1
	fi
	stop "$iperf_pid"
	forget "$iperf_pid"
fi

say "node1's agent restarts while pod1 pings pod2: no packet lost"
ip netns exec fil-pod1 ping -c 30 -i 0.1 -W 2 "${IP[2,$NET0]}" >"$RUN/restart-ping.out" 2>&1 &
ping_pid=$!
sleep 0.5
stop "${AGENT_PID[1]}"
forget "${AGENT_PID[1]}"
echo "node1: agent stopped (the dataplane keeps its tables)"
start_agent 1
wait_ready 1
wait "$ping_pid" || true
tail -n 2 "$RUN/restart-ping.out" | sed 's/^/  /'
if grep -q ' 0% packet loss' "$RUN/restart-ping.out"; then
	RESTART="ok   no packet lost"
else
	RESTART="FAIL packets lost"
	FAILED=1
fi

say "what node1's agent programmed, read over its dataplane's API socket with filamentctl"
for c in ports routes nexthops neighbors drops; do
	echo "\$ filamentctl --socket $RUN/node1/dataplane.sock $c"
	if ! "$CTL" --socket "$RUN/node1/dataplane.sock" "$c" | sed 's/^/  /'; then
		echo "FAIL filamentctl $c"
		FAILED=1
	fi
done

say "kubelet's part: filament-cni DEL for both pods' eth0 and net1"
DEL="ok   interfaces and routes gone"
for n in 1 2; do
	for spec in "eth0:$NET0" "net1:$NET1"; do
		ifc=${spec%%:*} net=${spec#*:}
		cni "$n" DEL "$net" "$ifc" && echo "pod$n: $ifc deleted" || { DEL="FAIL DEL"; FAILED=1; }
	done
done
if ip -n fil-pod1 link show eth0 >/dev/null 2>&1; then DEL="FAIL pod1's eth0 survived DEL"; FAILED=1; fi
if "$CTL" --socket "$RUN/node1/dataplane.sock" routes | grep -q "${IP[1,$NET0]}/32"; then
	DEL="FAIL pod1's route survived DEL"
	FAILED=1
fi

# ---- shutdown and summary ----------------------------------------------------
say "stopping the agents, then the dataplanes (SIGTERM: they log their final counters)"
for n in 1 2; do
	stop "${AGENT_PID[$n]}"
	forget "${AGENT_PID[$n]}"
	unset "AGENT_PID[$n]"
done
for n in 1 2; do
	pid=${DP_PIDS[$((n - 1))]}
	stop "$pid"
	forget "$pid"
	grep -q 'dataplane closed' "$RUN/dataplane-node$n.log" &&
		echo "node$n: PID $pid closed cleanly" || { echo "node$n: PID $pid did not close cleanly"; FAILED=1; }
done

say "summary: Filament demo, agents + filament-cni, eth0 on $NET0, net1 on $NET1, $MEM_NAME"
for k in "${KEYS[@]}"; do
	printf '  %-40s %s\n' "$k" "${RESULT[$k]}"
done
[ "$IPV6" = true ] || printf '  %-40s %s\n' "IPv6 on red (dual stack)" "$IPV6_RESULT"
printf '  %-40s %s\n' "DPDK pod on node2 (vhost-user, testpmd)" "$DPDK"
printf '  %-40s %s\n' "pod1 -> pod2 too big (DF, eth0)" "${RESULT[too big]}"
printf '  %-40s %s\n' "TCP pod1 -> pod2 (eth0)" "$TCP"
printf '  %-40s %s\n' "node1 agent restart under ping" "$RESTART"
printf '  %-40s %s\n' "filament-cni DEL" "$DEL"
for n in 1 2; do
	echo
	echo "  node$n dataplane, counters at shutdown:"
	awk -F'\t' '$3 ~ /^final (port|lcore) counters|^final drops/ {
		msg = $3; sub(/^final /, "", msg); f = $4; gsub(/[{}"]/, "", f); gsub(/, /, "  ", f)
		printf "    %-15s %s\n", msg, f }' "$RUN/dataplane-node$n.log"
done
echo
if [ "$FAILED" = 0 ]; then
	echo "demo: PASSED: agents attached pods on two nodes, which talk over VXLAN and MPLSoUDP"
else
	echo "demo: FAILED: see above"
	exit 1
fi
