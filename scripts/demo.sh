#!/usr/bin/env bash
# Filament two-node demo (what `make run` runs). Needs root, bin/ built.
#
#   fil-pod1                 fil-node1            fil-node2                 fil-pod2
#   eth0 10.10.1.2 --veth-- p1h [dataplane] fab1 ==veth== fab2 [dataplane] p2h --veth-- eth0 10.10.2.2
#                                192.168.100.1   (VXLAN)   192.168.100.2
#
# Each node is a network namespace running bin/filament-dataplane with
# deploy/demo/nodeN.yaml; the dataplane polls the veths with net_af_packet.
# The underlay addresses exist only in the dataplanes (the kernel has no
# address on the fabric veths): the two vRouters find each other by ARP in
# the fast path. Pods reach each other through their gateway (the vRouter,
# 10.10.N.1) and a VXLAN tunnel (VNI 100), or MPLSoUDP (label 100) with
# DEMO_ENCAP=mplsoudp.
#
# Environment: DEMO_ENCAP=vxlan|mplsoudp (default vxlan); DEMO_NO_HUGE=1 runs
# DPDK without hugepages even when there are some (it does anyway when there
# are none); DEMO_KEEP_LOGS=1 keeps the run directory (logs, configs) even
# when the demo passes.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/bin/filament-dataplane
CTL=$ROOT/bin/filamentctl
ENCAP=${DEMO_ENCAP:-vxlan}
NAMESPACES=(fil-node1 fil-node2 fil-pod1 fil-pod2)
PIDS=()     # processes this script started, stopped by PID at exit
DP_PIDS=()  # the two dataplanes' PIDs
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
	local rc=$?
	set +e
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do
		stop "$pid"
	done
	PIDS=()
	for ns in "${NAMESPACES[@]}"; do
		ip netns del "$ns" 2>/dev/null # the veths go with them
	done
	# DPDK leaves its runtime directory (the telemetry socket) behind.
	[ -z "$RUN" ] || rm -rf /var/run/dpdk/fil-node1 /var/run/dpdk/fil-node2
	if [ -n "$RUN" ]; then
		if [ "$rc" -ne 0 ]; then
			for n in 1 2; do
				[ -s "$RUN/node$n.log" ] || continue
				echo "---- last lines of node$n's dataplane log ($RUN/node$n.log) ----" >&2
				tail -n 25 "$RUN/node$n.log" >&2
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
[ -x "$BIN" ] || die "$BIN is missing: run make build first"
# TUN_MTU: the largest inner packet the tunnel takes over the fabric's 1500
# (the fast path's FP_VXLAN_OVERHEAD 50, FP_MPLSOUDP_OVERHEAD 32).
case $ENCAP in
vxlan) ENCAP_NAME="VXLAN (VNI 100, UDP 4789)" TUN_MTU=1450 ;;
mplsoudp) ENCAP_NAME="MPLSoUDP (label 100, UDP 6635)" TUN_MTU=1468 ;;
*) die "DEMO_ENCAP=$ENCAP: must be vxlan or mplsoudp" ;;
esac
for tool in ip ping ethtool sysctl; do
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

cat <<EOF

Filament two-node demo: $ENCAP_NAME, $MEM_NAME

  fil-pod1 (10.10.1.2)          fil-node1                     fil-node2          fil-pod2 (10.10.2.2)
  eth0 --veth-- p1h [filament-dataplane] fab1 ==veth== fab2 [filament-dataplane] p2h --veth-- eth0
                       underlay 192.168.100.1               192.168.100.2

It shows:
  * each pod's gateway (10.10.N.1) is the vRouter: it answers the pod's ARP and pings
    (10.10.N.1 is also the vRouter's address in VRF 1: the vrfs section of nodeN.yaml)
  * pod1 <-> pod2 across the fabric in $ENCAP_NAME; the vRouters resolve each
    other's underlay MAC by ARP in the fast path (no kernel address on fab1/fab2)
  * a DF packet too big for the tunnel: node1's vRouter answers ICMP
    "fragmentation needed" (mtu $TUN_MTU) from 10.10.1.1
  * a TCP transfer across the overlay, then every port's and drop counter
Run directory (configs, logs): $RUN
EOF

# ---- configs -----------------------------------------------------------------
say "node configs (deploy/demo/node{1,2}.yaml, adapted)"
for n in 1 2; do
	cfg=$RUN/node$n.yaml
	cp "$ROOT/deploy/demo/node$n.yaml" "$cfg"
	if [ "$NO_HUGE" = true ]; then
		sed -i 's/^  no_huge: false/  no_huge: true /' "$cfg"
		grep -q '^  no_huge: true' "$cfg" || die "$cfg: could not switch no_huge on"
	fi
	if [ "$ENCAP" = mplsoudp ]; then
		sed -i -e 's/^    encap: vxlan$/    encap: mplsoudp/' -e 's/^    vni: 100$/    label: 100/' "$cfg"
		grep -q '^    encap: mplsoudp$' "$cfg" || die "$cfg: could not switch the tunnel to mplsoudp"
	fi
	"$BIN" --check --config "$cfg" | sed "s/^/node$n: /"
done

# ---- topology ----------------------------------------------------------------
say "network namespaces and veths"
for ns in "${NAMESPACES[@]}"; do
	ip netns add "$ns"
	# No IPv6: no router solicitations or DAD on the veths (the fast path
	# would count every one as ipv6_unsupported).
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
	ip -n "$ns" link set lo up
done
# Fabric: no kernel address on either end; the underlay IPs live in the
# dataplanes only, so the kernels never answer on these veths.
ip link add fab1 netns fil-node1 type veth peer name fab2 netns fil-node2
ip -n fil-node1 link set fab1 address 02:fe:c0:a8:64:01 up
ip -n fil-node2 link set fab2 address 02:fe:c0:a8:64:02 up
for n in 1 2; do
	pod=fil-pod$n
	ip link add "p${n}h" netns "fil-node$n" type veth peer name eth0 netns "$pod"
	ip -n "fil-node$n" link set "p${n}h" up
	# MTU 1450: the fabric's 1500 minus the VXLAN overhead.
	ip -n "$pod" link set eth0 address "02:00:0a:0a:0$n:02" mtu 1450 up
	ip -n "$pod" addr add "10.10.$n.2/24" dev eth0
	ip -n "$pod" route add default via "10.10.$n.1"
	# The fast path does not finish partial checksums: pods send complete ones.
	ip netns exec "$pod" ethtool -K eth0 tx off tso off >/dev/null 2>&1 || true
	echo "pod$n: eth0 10.10.$n.2/24 mac 02:00:0a:0a:0$n:02 via 10.10.$n.1; node$n polls p${n}h and fab$n"
done

# ---- dataplanes --------------------------------------------------------------
say "starting the two dataplanes (-l 0,1 each: the idle one backs off)"
for n in 1 2; do
	ip netns exec "fil-node$n" "$BIN" --config "$RUN/node$n.yaml" --stats-interval 5s \
		--socket "$RUN/node$n.sock" >"$RUN/node$n.log" 2>&1 &
	PIDS+=($!)
	DP_PIDS+=($!)
	echo "node$n: filament-dataplane PID $!, log $RUN/node$n.log"
done
for n in 1 2; do
	pid=${DP_PIDS[$((n - 1))]}
	for ((i = 0; ; i++)); do
		grep -q 'dataplane ready' "$RUN/node$n.log" && break
		alive "$pid" || die "node$n's dataplane exited before it was ready"
		[ "$i" -lt 600 ] || die "node$n's dataplane not ready after 60 s"
		sleep 0.1
	done
	echo "node$n: ready ($(grep -o 'dataplane ready.*' "$RUN/node$n.log" | cut -f2 | tr -d '{}"'))"
done

# ---- traffic -----------------------------------------------------------------
# ping_check NAME NS ARGS...: run ping, show it, keep a one-line result.
declare -A RESULT
ping_check() {
	local name=$1 ns=$2 out rc=0 tx rx avg
	shift 2
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

say "pod1 -> its gateway 10.10.1.1 (answered by node1's vRouter)"
ping_check "pod1 -> gateway 10.10.1.1" fil-pod1 -c 3 -i 0.2 -w 10 10.10.1.1
say "pod2 -> its gateway 10.10.2.1 (answered by node2's vRouter)"
ping_check "pod2 -> gateway 10.10.2.1" fil-pod2 -c 3 -i 0.2 -w 10 10.10.2.1

say "first packet pod1 -> pod2: node1 has no MAC for 192.168.100.2 yet and sends an ARP request instead"
resolved=""
for ((i = 1; i <= 10; i++)); do
	if ip netns exec fil-pod1 ping -c 1 -W 1 10.10.2.2 >/dev/null 2>&1; then
		resolved=$i
		break
	fi
done
if [ -n "$resolved" ]; then
	echo "underlay resolved: the tunnel carries traffic after $resolved probe(s)"
else
	echo "pod1 cannot reach pod2 after 10 probes"
	FAILED=1
fi

say "pod1 -> pod2 10.10.2.2 across the fabric ($ENCAP_NAME)"
ping_check "pod1 -> pod2 10.10.2.2 ($ENCAP)" fil-pod1 -c 5 -i 0.2 -w 10 10.10.2.2
say "pod2 -> pod1 10.10.1.2"
ping_check "pod2 -> pod1 10.10.1.2 ($ENCAP)" fil-pod2 -c 5 -i 0.2 -w 10 10.10.1.2
say "pod1 -> node2's gateway 10.10.2.1 (through the tunnel, answered by node2's vRouter)"
ping_check "pod1 -> node2 gateway 10.10.2.1" fil-pod1 -c 3 -i 0.2 -w 10 10.10.2.1

# Path MTU discovery: a 1500-byte DF packet does not fit in the tunnel, so
# node1's vRouter drops it and answers ICMP "fragmentation needed" with the
# tunnel's MTU, from its address in VRF 1 (vrfs in node1.yaml: 10.10.1.1).
# pod1's eth0 has MTU 1450, so its kernel would refuse to send such a packet
# at all ("ping: local error: message too long, mtu=1450": no packet, and
# nothing from the vRouter). So for this one ping eth0 goes to 1500, and so
# does its peer p1h: the dataplane set p1h's MTU to the port's 1450
# (rte_eth_dev_set_mtu on net_af_packet) and a veth drops frames bigger than
# its peer's MTU. Both go back to 1450 right after. The check wants the
# remote error, "From 10.10.1.1 ... Frag needed and DF set (mtu = N)", not
# the local one (which says "mtu=N").
say "pod1 -> pod2 with DF, 1500 bytes: too big for the tunnel ($TUN_MTU), node1's vRouter says so"
p1h_mtu=$(ip -n fil-node1 -o link show p1h | sed -n 's/.* mtu \([0-9]*\) .*/\1/p')
echo "pod1 eth0 MTU 1450 -> 1500 and node1 p1h MTU ${p1h_mtu:-?} -> 1500 for this step"
ip -n fil-node1 link set p1h mtu 1500
ip -n fil-pod1 link set eth0 mtu 1500
echo "\$ ip netns exec fil-pod1 ping -M do -s 1472 -c 1 -w 5 10.10.2.2"
big=$(ip netns exec fil-pod1 ping -M do -s 1472 -c 1 -w 5 10.10.2.2 2>&1) || true
echo "$big" | sed 's/^/  /'
echo "\$ ip netns exec fil-pod1 ip route get 10.10.2.2   (the path MTU pod1's kernel learnt)"
ip -n fil-pod1 route get 10.10.2.2 | sed 's/^/  /'
ip -n fil-pod1 link set eth0 mtu 1450
ip -n fil-node1 link set p1h mtu "${p1h_mtu:-1450}"
if grep -q "^From 10\.10\.1\.1 .*mtu = $TUN_MTU)" <<<"$big"; then
	RESULT[too big]="ok   ICMP frag needed, mtu $TUN_MTU"
elif grep -q "mtu=" <<<"$big"; then
	RESULT[too big]="FAIL refused by pod1's own kernel, never sent"
	FAILED=1
else
	RESULT[too big]="FAIL no ICMP frag needed (mtu $TUN_MTU) from 10.10.1.1"
	FAILED=1
fi

TCP="skipped (neither iperf3 nor nc installed: add them with make deps)"
wait_listen() { # NS PORT: up to 5 s for a TCP listener
	local i
	for ((i = 0; i < 50; i++)); do
		ip netns exec "$1" ss -Hltn "sport = :$2" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	return 1
}
if command -v iperf3 >/dev/null; then
	say "TCP pod1 -> pod2 with iperf3 (3 s)"
	ip netns exec fil-pod2 iperf3 -s -1 -B 10.10.2.2 -p 5201 >"$RUN/iperf3-server.log" 2>&1 &
	PIDS+=($!)
	iperf_pid=$!
	if wait_listen fil-pod2 5201 &&
		ip netns exec fil-pod1 timeout 30 iperf3 -c 10.10.2.2 -p 5201 -t 3 -f m \
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
elif command -v nc >/dev/null; then
	say "TCP pod1 -> pod2 with nc (4 MiB)"
	head -c 4194304 /dev/urandom >"$RUN/tcp.in"
	ip netns exec fil-pod2 nc -l -s 10.10.2.2 -p 5201 >"$RUN/tcp.out" 2>/dev/null &
	PIDS+=($!)
	nc_pid=$!
	if wait_listen fil-pod2 5201 &&
		ip netns exec fil-pod1 timeout 30 nc -N -w 5 10.10.2.2 5201 <"$RUN/tcp.in" &&
		{ stop "$nc_pid"; cmp -s "$RUN/tcp.in" "$RUN/tcp.out"; }; then
		TCP="ok   nc: 4 MiB sent pod1 -> pod2, received intact"
	else
		TCP="FAIL nc pod1 -> pod2"
		FAILED=1
	fi
	stop "$nc_pid"
	forget "$nc_pid"
fi

# ---- filamentctl ----------------------------------------------------------------
say "what node1's dataplane holds, read over its API socket with filamentctl"
for c in ports routes nexthops neighbors drops; do
	echo "\$ filamentctl --socket $RUN/node1.sock $c"
	if ! "$CTL" --socket "$RUN/node1.sock" "$c" | sed 's/^/  /'; then
		echo "FAIL filamentctl $c"
		FAILED=1
	fi
done

# ---- shutdown and summary ----------------------------------------------------
say "stopping the dataplanes (SIGTERM: they log their final counters)"
for n in 1 2; do
	pid=${DP_PIDS[$((n - 1))]}
	stop "$pid"
	forget "$pid"
	grep -q 'dataplane closed' "$RUN/node$n.log" &&
		echo "node$n: PID $pid closed cleanly" || { echo "node$n: PID $pid did not close cleanly"; FAILED=1; }
done

say "summary: Filament demo over $ENCAP_NAME, $MEM_NAME"
for k in "pod1 -> gateway 10.10.1.1" "pod2 -> gateway 10.10.2.1" "pod1 -> pod2 10.10.2.2 ($ENCAP)" \
	"pod2 -> pod1 10.10.1.2 ($ENCAP)" "pod1 -> node2 gateway 10.10.2.1"; do
	printf '  %-36s %s\n' "$k" "${RESULT[$k]:-not run}"
done
printf '  %-36s %s\n' "pod1 -> pod2 too big (DF)" "${RESULT[too big]:-not run}"
printf '  %-36s %s\n' "TCP pod1 -> pod2" "$TCP"
for n in 1 2; do
	echo
	echo "  node$n dataplane, counters at shutdown:"
	awk -F'\t' '$3 ~ /^final (port|lcore) counters|^final drops/ {
		msg = $3; sub(/^final /, "", msg); f = $4; gsub(/[{}"]/, "", f); gsub(/, /, "  ", f)
		printf "    %-15s %s\n", msg, f }' "$RUN/node$n.log"
done
echo
if [ "$FAILED" = 0 ]; then
	echo "demo: PASSED: pods on two nodes talk across the Filament fast path ($ENCAP_NAME)"
else
	echo "demo: FAILED: see above"
	exit 1
fi
