#!/usr/bin/env bash
# Run what `make image` built, inside the images (make image-test):
#   node          every binary's --help; no library missing (ldd) for the
#                 dataplane and every DPDK driver EAL loads; the static
#                 binaries are static; the dataplane started on a pcap port
#                 (--no-huge) answers a pod's ARP request with the exact reply
#                 bytes, and filamentctl reads its version over the socket.
#   kube-manager  runs as uid 65532; --help; static.
# and both images' org.opencontainers.image.version label.
# Usage: IMAGE_TOOL=podman|buildah|docker scripts/image-test.sh NODE_IMAGE KUBE_MANAGER_IMAGE VERSION
set -euo pipefail

node=$1 km=$2 version=$3
tool=${IMAGE_TOOL:-$(command -v podman || command -v buildah || command -v docker || true)}
[ -n "$tool" ] || { echo "image-test: none of podman, buildah or docker is installed" >&2; exit 1; }

fail() { echo "image-test: FAIL: $*" >&2; exit 1; }

# run_in IMAGE CMD...: CMD in a new container of IMAGE, the image's user,
# no entrypoint; the container is removed.
run_in() {
	local img=$1 ctr rc
	shift
	case $(basename "$tool") in
	buildah)
		ctr=$(buildah from --pull=never -q "$img")
		rc=0
		buildah run "$ctr" -- "$@" || rc=$?
		buildah rm "$ctr" >/dev/null
		return $rc
		;;
	*) "$tool" run --rm --pull=never --entrypoint "" "$img" "$@" ;;
	esac
}

label() { # label IMAGE NAME
	case $(basename "$tool") in
	buildah) buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$2\"}}" "$1" ;;
	*) "$tool" image inspect --format "{{index .Config.Labels \"$2\"}}" "$1" ;;
	esac
}

for img in "$node" "$km"; do
	got=$(label "$img" org.opencontainers.image.version)
	[ "$got" = "$version" ] || fail "$img: label org.opencontainers.image.version is '$got', want '$version'"
	for l in title revision source base.name; do
		[ -n "$(label "$img" "org.opencontainers.image.$l")" ] || fail "$img: label org.opencontainers.image.$l is empty"
	done
done
echo "image-test: labels ok"

for b in filament-dataplane filament-agent filamentctl filament-cni; do
	run_in "$node" "/usr/local/bin/$b" --help >/dev/null 2>&1 || fail "$node: $b --help"
done
run_in "$node" sh -c '
	set -e
	pmds=/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0
	n=0
	for f in /usr/local/bin/filament-dataplane $pmds/*.so.23; do
		ldd "$f" >/tmp/ldd
		if grep "not found" /tmp/ldd; then echo "$f: library missing" >&2; exit 1; fi
		n=$((n + 1))
	done
	[ $n -gt 20 ] || { echo "only $n files in $pmds" >&2; exit 1; }
	for f in filament-agent filamentctl filament-cni; do
		ldd /usr/local/bin/$f 2>&1 | grep -q "not a dynamic executable" || { echo "$f is not static" >&2; exit 1; }
	done
	echo "image-test: $((n - 1)) DPDK drivers in $pmds, none missing a library"' || fail "$node: ldd"
echo "image-test: $node: --help and ldd ok"

# A pod (02:00:0a:0a:01:02, 10.10.1.2) asks for its gateway 10.10.1.1; the
# vRouter answers from its MAC (00:00:5e:00:01:00). pcap files: a global
# header (little endian, v2.4, Ethernet) and one 42-byte record.
request=ffffffffffff02000a0a01020806000108000604000102000a0a01020a0a01020000000000000a0a0101
reply=02000a0a010200005e0001000806000108000604000200005e0001000a0a010102000a0a01020a0a0102
pcap_header=d4c3b2a1020004000000000000000000ffff000001000000
record_header=00000000000000002a0000002a000000
octal() { # hex to printf's octal escapes, which dash's printf understands
	local hex=$1 out="" i
	for ((i = 0; i < ${#hex}; i += 2)); do out+=$(printf '\\%03o' "0x${hex:i:2}"); done
	printf '%s' "$out"
}
out=$(run_in "$node" sh -c '
	set -e
	cd /tmp
	printf "$1" >in.pcap
	cat >dp.yaml <<EOF
eal: {lcores: "0,1", no_huge: true, memory_mb: 256, file_prefix: image-test}
tables: {next_hops: 64, vrfs: 4, fib4_routes: 64, fib4_tbl8s: 8, mbufs: 2047}
vrouter_mac: "00:00:5e:00:01:00"
api: {socket: /tmp/dp.sock}
ports:
  - {name: pod1, devargs: "net_pcap0,rx_pcap=/tmp/in.pcap,tx_pcap=/tmp/out.pcap", kind: pod, vrf: 1, mac: "02:00:0a:0a:01:02", ipv4: [10.10.1.2]}
vrfs:
  - {vrf: 1, address: 10.10.1.1}
EOF
	filament-dataplane --config dp.yaml --stats-interval 0 >dp.log 2>&1 &
	dp=$!
	i=0
	until filamentctl --socket /tmp/dp.sock version >version.txt 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 300 ] || ! kill -0 $dp 2>/dev/null; then cat dp.log >&2; echo "dataplane did not serve" >&2; exit 1; fi
		sleep 0.1
	done
	i=0
	until filamentctl --socket /tmp/dp.sock -o json stats | grep -q "\"tx_packets\": *1\b"; do
		i=$((i + 1))
		if [ $i -gt 100 ]; then filamentctl --socket /tmp/dp.sock stats >&2; filamentctl --socket /tmp/dp.sock drops >&2; exit 1; fi
		sleep 0.1
	done
	kill -TERM $dp
	wait $dp || { cat dp.log >&2; echo "dataplane exit status $?" >&2; exit 1; }
	cat version.txt
	echo "out.pcap: $(od -An -v -tx1 out.pcap | tr -d " \n")"
' sh "$(octal "$pcap_header$record_header$request")") || fail "$node: dataplane on a pcap port"
echo "$out" | grep -Eq "^server version +$version\$" || fail "filamentctl version: want server version $version in: $out"
pcap=$(echo "$out" | sed -n 's/^out.pcap: //p')
# Skip the pcap header (24 bytes) and the record's timestamp (8): the
# lengths (42, 42) and the reply's bytes must be exact.
# The pcap PMD writes nanosecond timestamps (magic a1b23c4d).
[ "${pcap:0:8}" = d4c3b2a1 ] || [ "${pcap:0:8}" = 4d3cb2a1 ] || fail "out.pcap is not a pcap file: $pcap"
[ "${pcap:64}" = "2a0000002a000000$reply" ] || fail "ARP reply: want 2a0000002a000000$reply, got ${pcap:64}"
echo "image-test: $node: filament-dataplane $version answered ARP on a pcap port; filamentctl read it"

[ "$(run_in "$km" id -u)" = 65532 ] || fail "$km: not running as uid 65532"
run_in "$km" /usr/local/bin/filament-kube-manager --help >/dev/null 2>&1 || fail "$km: --help"
run_in "$km" sh -c 'ldd /usr/local/bin/filament-kube-manager 2>&1 | grep -q "not a dynamic executable"' ||
	fail "$km: filament-kube-manager is not static"
echo "image-test: $km: uid 65532, --help, static ok"
echo "image-test: ok"
