# Filament's container images (docs/operations.md, "Container image").
# `make image` builds both targets with podman, buildah or docker:
#   node          filament-dataplane, filament-agent, filamentctl and
#                 filament-cni on Debian 12 with DPDK 22.11's runtime
#                 libraries and poll-mode drivers: one image for the node
#                 DaemonSets' three containers (CNI install, dataplane, agent).
#   kube-manager  filament-kube-manager alone, as a non-root user.
# Without a registry, scripts/image-bases.sh makes the two FROM images
# locally (debootstrap and this machine's Go).

ARG GO_IMAGE=docker.io/library/golang:1.26-bookworm
ARG DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim

# ---- build: every binary of the repository, as `make build` makes them.
FROM ${GO_IMAGE} AS build
RUN apt-get update \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libdpdk-dev pkg-config gcc libc6-dev \
	&& rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Empty: Go's default proxy. make image passes the machine's `go env GOPROXY`.
ARG GOPROXY
ARG VERSION=dev
ENV GOFLAGS="-buildvcs=false -trimpath" GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# The commands that do not link DPDK are static (CGO_ENABLED=0): filament-cni
# runs on the host, from /opt/cni/bin, whatever its libc.
# filament-perf and filament-fpbench are built to prove they build; no image
# ships them (filament-perf's suite drives testpmd and OVS-DPDK on a node).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	set -e; ldflags="-s -w -X main.version=${VERSION}"; \
	CGO_ENABLED=0 go build -ldflags "$ldflags" -o /out/ \
		./agent/cmd/filament-agent ./cni/cmd/filament-cni ./dpdk/cmd/filamentctl \
		./kubemanager/cmd/filament-kube-manager; \
	CGO_ENABLED=1 go build -ldflags "$ldflags" -o /out/ \
		./dpdk/cmd/filament-dataplane ./dpdk/cmd/filament-fpbench ./perf/cmd/filament-perf

# ---- kube-manager: a static binary; needs nothing of the node, nor root.
FROM ${DEBIAN_IMAGE} AS kube-manager
# The global ARGs reach FROM lines only: DEBIAN_IMAGE again, for the label.
ARG DEBIAN_IMAGE
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="filament-kube-manager" \
	org.opencontainers.image.description="Filament's cluster-wide controller: Kubernetes objects to filament.dev resources" \
	org.opencontainers.image.version="${VERSION}" \
	org.opencontainers.image.revision="${REVISION}" \
	org.opencontainers.image.source="https://github.com/filament-net/filament" \
	org.opencontainers.image.base.name="${DEBIAN_IMAGE}"
COPY --from=build /out/filament-kube-manager /usr/local/bin/
# 65532: the usual "nonroot" id; it owns nothing in the image.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/filament-kube-manager"]

# ---- node: the node DaemonSets' image (the default target).
# Runs as root: the containers need capabilities that a non-root user
# cannot hold across exec without file capabilities. What each one needs
# (deploy/node/*-daemonset.yaml grant them):
#   CNI install (init)  none: copies /usr/local/bin/filament-cni into the
#                       host's /opt/cni/bin (a hostPath).
#   filament-dataplane  IPC_LOCK (hugepages and DMA memory locked), NET_ADMIN
#                       (tap ports, interface state, AF_XDP sockets), NET_RAW
#                       (af_packet ports), SYS_ADMIN (loading AF_XDP's XDP
#                       program and, for PCI NICs without an IOMMU, physical
#                       addresses from /proc/self/pagemap), SYS_RESOURCE
#                       (AF_XDP's locked memory limit); vfio-pci NICs also need
#                       /dev/vfio; plus /dev/hugepages and /run/filament.
#   filament-agent      NET_ADMIN (veths, taps, addresses, routes, neighbours,
#                       ethtool offloads), SYS_ADMIN (setns into the pods'
#                       network namespaces under /var/run/netns), NET_RAW;
#                       it also writes /proc/sys/net/... (rp_filter,
#                       disable_ipv6), which a container sees read-only unless
#                       it is privileged: the agent runs privileged.
FROM ${DEBIAN_IMAGE} AS node
# DPDK 22.11's libraries that the binaries link, and the drivers EAL loads at
# start from its plugin directory (pmds-23.0): mempool_ring (every packet
# pool), the ports Filament tests (ring, pcap, memif, af_packet, af_xdp, tap,
# vhost, virtio_user) and common PCI NICs (Intel, Mellanox ConnectX 4+, AWS
# ENA, VMware vmxnet3, virtio). DPDK_PMDS adds others (librte-net-<name>23).
ARG DPDK_PMDS=""
RUN apt-get update \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		librte-eal23 librte-ethdev23 librte-mbuf23 librte-mempool23 librte-rcu23 librte-ring23 \
		librte-mempool-ring23 librte-bus-pci23 librte-bus-vdev23 \
		librte-net-ring23 librte-net-pcap23 librte-net-memif23 librte-net-af-packet23 librte-net-af-xdp23 \
		librte-net-tap23 librte-net-vhost23 librte-net-virtio23 \
		librte-net-e1000-23 librte-net-ixgbe23 librte-net-i40e23 librte-net-iavf23 librte-net-ice23 \
		librte-net-mlx5-23 librte-net-ena23 librte-net-vmxnet3-23 \
		${DPDK_PMDS} \
	&& rm -rf /var/lib/apt/lists/*
COPY --from=build /out/filament-dataplane /out/filament-agent /out/filamentctl /out/filament-cni /usr/local/bin/
# Fail the build, not the node, when a library or a driver's dependency is
# missing: EAL loads every librte_*.so.23 of its plugin directory at start and
# refuses to start if one cannot load.
RUN set -e; pmds=/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0; \
	ls $pmds/librte_mempool_ring.so.23 $pmds/librte_net_af_xdp.so.23 >/dev/null; \
	for f in /usr/local/bin/filament-dataplane $pmds/*.so.23; do \
		ldd "$f" >/tmp/ldd; if grep "not found" /tmp/ldd; then echo "$f: library missing" >&2; exit 1; fi; \
	done; rm /tmp/ldd
# The global ARGs reach FROM lines only: DEBIAN_IMAGE again, for the label.
ARG DEBIAN_IMAGE
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="filament-node" \
	org.opencontainers.image.description="Filament's node: DPDK dataplane, agent, filamentctl and CNI plugin (DPDK 22.11, Debian 12)" \
	org.opencontainers.image.version="${VERSION}" \
	org.opencontainers.image.revision="${REVISION}" \
	org.opencontainers.image.source="https://github.com/filament-net/filament" \
	org.opencontainers.image.base.name="${DEBIAN_IMAGE}"
CMD ["/usr/local/bin/filament-dataplane", "--help"]
