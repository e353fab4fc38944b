# Filament: make deps | build | test | testenv | fuzz | run | bench | bench-l3 | bench-flows | bench-full | bench-fastpath | bench-icount | bench-pods | generate | image | image-test | clean
# DPDK test packages run one at a time (-p 1): they pin a forwarding lcore
# and the CI machine has 2 cores.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := bin
GOFLAGS_TEST ?= -count=1 -timeout 20m

.PHONY: all deps hugepages build vet test testenv test-go fuzz run run-agents bench bench-l3 bench-flows bench-full bench-fastpath bench-icount bench-pods generate check-generate image image-test clean

all: build

deps:
	@scripts/deps.sh

hugepages:
	@scripts/hugepages.sh

# Every command of dpdk/cmd: bin/filament-dataplane, bin/filamentctl, ...
build: deps
	@mkdir -p $(BIN)
	$(GO) build ./...
	$(GO) build -o $(BIN)/ ./dpdk/cmd/... ./cni/cmd/... ./agent/cmd/... ./perf/cmd/... ./kubemanager/cmd/...

vet: deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# Everything CI runs: deps, hugepages (--no-huge fallback inside the tests),
# vet, then all Go tests (the DPDK ones one package at a time), the fast
# path's sanitizer fuzzing among them (about 40 s: dpdk/fastpath/fuzz).
# The Kubernetes tests get kube-apiserver and etcd from scripts/testenv.sh
# (about 4 min the first time on a machine, then cached: docs/kubernetes.md).
test: deps hugepages vet build
	testenv=$$(scripts/testenv.sh) && FILAMENT_TESTENV_BIN=$$testenv $(GO) test -p 1 $(GOFLAGS_TEST) ./...

# kube-apiserver and etcd for the Kubernetes tests (internal/kubetest), built
# from the Go module proxy (hack/testenv) once per machine: prints their
# directory under ${XDG_CACHE_HOME:-~/.cache}/filament/testenv.
testenv:
	@scripts/testenv.sh

# Coverage-guided fuzzing of the fast path's packet path (libFuzzer, ASan,
# UBSan; docs/fuzzing.md) for FUZZ_TIME seconds (default 600) with FUZZ_JOBS
# processes (default 1). make test fuzzes for a bounded time too
# (dpdk/fastpath/fuzz TestFuzz, FUZZ_TEST_SECONDS, default 25).
FUZZ_TIME ?= 600
FUZZ_JOBS ?= 1
fuzz: deps
	FUZZ_TIME=$(FUZZ_TIME) FUZZ_JOBS=$(FUZZ_JOBS) dpdk/fastpath/fuzz/run.sh

run: build hugepages
	@scripts/demo.sh

# Kept as an alias: make run is the agent-driven demo.
run-agents: run

# A report is only worth committing from a machine fit for numbers: each
# bench target fails (the report written, saying so at its top) when
# testpmd-io stays below BENCH_MIN_BASELINE Mpps NDR at 64 B. 30 is for
# the 2 shared vCPUs this is developed on (35.8 on a quiet day); give your
# hardware's own, or 0 for no check.
BENCH_MIN_BASELINE ?= 30

# Forwarding rate side by side (filament-perf suite: 1 flow, 1% search
# resolution, 250 ms search trials, each rate confirmed by a 1 s trial,
# latency at 50% of PDR): testpmd io/5tswap, filament L3 (10 and 1M
# routes), VXLAN and MPLSoUDP encap/decap, OVS-DPDK L3 and VXLAN encap, a
# kernel pod over AF_XDP, AF_PACKET and TAP at 64 B, and flat out with
# dpdk-testpmd flowgen as the generator (testpmd io/5tswap, filament L3:
# filament-perf cannot outrun testpmd at 64 B), 3 interleaved rounds in a
# 15-minute budget (estimated 7 minutes by filament-perf suite --dry-run;
# 8 minutes measured on a noisy day before the flat-out rows; it prints an
# ETA after each sample and starts no round that would end past the
# budget); rewrites docs/benchmarks/perf.md. (make build's deps installs
# OVS-DPDK.)
bench: build hugepages
	bin/filament-perf suite --rounds 3 --sizes 64 --flows 1 --resolution 0.01 --trial 1s --search-trial 250ms \
		--budget 15m --doc docs/benchmarks/perf.md --json docs/benchmarks/perf.json --command "make bench" \
		--min-baseline $(BENCH_MIN_BASELINE)

# The IPv4 L3 goals at 64 B on their own (about 3-4 minutes): testpmd io and
# 5tswap, filament L3 and its OVS-DPDK peer, and the flat-out rows, 3
# rounds in a 10-minute budget; rewrites docs/benchmarks/perf-l3.md.
bench-l3: build hugepages
	bin/filament-perf suite --rounds 3 --sizes 64 --flows 1 --resolution 0.01 --trial 1s --search-trial 250ms \
		--rows '^(testpmd-io|testpmd-5tswap|filament-l3-10|ovs-dpdk-l3-10)(-flowgen)?$$' \
		--budget 10m --doc docs/benchmarks/perf-l3.md --json docs/benchmarks/perf-l3.json --command "make bench-l3" \
		--min-baseline $(BENCH_MIN_BASELINE)

# The goals' 10K flows comparison at 64 B on its own (about 15 minutes):
# testpmd io, filament L3 and VXLAN encap and their OVS-DPDK peers at 1 and
# 10K flows (10K overflow OVS's exact-match cache), 3 rounds in a 20-minute
# budget; rewrites docs/benchmarks/perf-flows.md.
bench-flows: build hugepages
	bin/filament-perf suite --rounds 3 --sizes 64 --flows 1,10000 --resolution 0.01 --trial 1s --search-trial 250ms \
		--rows '^(testpmd-io|filament-l3-10|filament-vxlan-encap-10|ovs-dpdk-l3-10|ovs-dpdk-vxlan-encap-10)(-f10k)?$$' \
		--budget 20m --doc docs/benchmarks/perf-flows.md --json docs/benchmarks/perf-flows.json --command "make bench-flows" \
		--min-baseline $(BENCH_MIN_BASELINE)

# Every size (64, 512, IMIX), 5 rounds, 1 and 10K flows (the per-flow rows
# again at 10K): about 2 hours (filament-perf suite --dry-run).
bench-full: build hugepages
	bin/filament-perf suite --rounds 5 --sizes 64,512,imix --flows 1,10000 --doc docs/benchmarks/perf.md \
		--json docs/benchmarks/perf.json --command "make bench-full" \
		--min-baseline $(BENCH_MIN_BASELINE)

# The fast path's cycles/packet in-process, every scenario interleaved (a
# few minutes, best on a quiet machine): rewrites docs/benchmarks/fastpath.md.
bench-fastpath: build hugepages
	FPBENCH_COMMAND="make bench-fastpath" $(BIN)/filament-fpbench -doc docs/benchmarks/fastpath.md

# The fast path's instructions per packet on each main path under
# callgrind, exact on any machine, against the commit of the last cycle
# figures (BASE=rev for another; a few minutes): rewrites
# docs/benchmarks/instructions.md. Needs valgrind (deps.sh installs it).
bench-icount:
	@scripts/deps.sh valgrind
	hack/icount/report.sh $(BASE) > docs/benchmarks/instructions.md.tmp
	mv docs/benchmarks/instructions.md.tmp docs/benchmarks/instructions.md

# CNI ADD/DEL latency over 200 pods on a real node, and the kernel pod
# path's rates (the suite's kernel pod rows, 3 rounds): about 10 minutes;
# rewrites docs/benchmarks/pods.md. Run it on a machine with nothing else
# heavy running (make test's DPDK packages take the same cores).
bench-pods: build hugepages
	FILAMENT_BENCH_PODS=$(CURDIR)/docs/benchmarks/pods.md FILAMENT_BENCH_PODS_COMMAND="make bench-pods" \
		$(GO) test -count=1 -timeout 40m -run '^TestBenchPods$$' -v ./agent/e2e/

# The Go code of the protobuf APIs (dpdk/api), committed: regenerated with
# pinned tools that it installs if missing (Debian protobuf-compiler,
# protoc-gen-go and protoc-gen-go-grpc in bin/tools).
generate:
	@scripts/generate.sh

# What CI can run to prove the committed code is what the .proto files give.
check-generate: generate
	@git diff --exit-code -- dpdk/api || { echo "dpdk/api: generated code is stale: run make generate and commit it"; exit 1; }
	@test -z "$$(git status --porcelain -- dpdk/api | grep '^??')" || { echo "dpdk/api: generated files not committed:"; git status --porcelain -- dpdk/api; exit 1; }

# The container images (Dockerfile; docs/operations.md, "Container image"):
# $(IMAGE_PREFIX)-node:$(IMAGE_TAG) and $(IMAGE_PREFIX)-kube-manager:$(IMAGE_TAG),
# with the first of podman, buildah and docker found (IMAGE_TOOL=... to
# choose). Without a registry, scripts/image-bases.sh makes the FROM images
# first. Not part of make test. IMAGE_BUILD_FLAGS adds flags (--network host,
# --build-arg DPDK_PMDS=...).
IMAGE_TOOL ?= $(firstword $(foreach t,podman buildah docker,$(shell command -v $(t) 2>/dev/null)))
IMAGE_PREFIX ?= filament
IMAGE_TAG ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE_BUILD_FLAGS ?=
# buildah: keep layers (warm builds) and run RUN steps in a chroot, with no
# OCI runtime or cgroups (crun refuses hybrid cgroups, as on this machine;
# BUILDAH_ISOLATION=oci to change). --pull=false: use a local FROM image
# (scripts/image-bases.sh) if there is one, pull only a missing one.
export BUILDAH_ISOLATION ?= chroot
image_build = $(if $(filter buildah,$(notdir $(IMAGE_TOOL))),$(IMAGE_TOOL) build --layers,$(IMAGE_TOOL) build) --pull=false \
	--build-arg VERSION=$(IMAGE_TAG) --build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
	--build-arg GOPROXY=$$($(GO) env GOPROXY) $(IMAGE_BUILD_FLAGS)

image:
	@test -n "$(IMAGE_TOOL)" || { echo "image: none of podman, buildah or docker is installed (Debian: apt-get install buildah)"; exit 1; }
	$(image_build) --target node -t $(IMAGE_PREFIX)-node:$(IMAGE_TAG) .
	$(image_build) --target kube-manager -t $(IMAGE_PREFIX)-kube-manager:$(IMAGE_TAG) .

# Runs the images' binaries: --help of each, ldd, the dataplane started on
# ring and pcap ports with filamentctl reading it (scripts/image-test.sh).
image-test:
	IMAGE_TOOL=$(IMAGE_TOOL) scripts/image-test.sh $(IMAGE_PREFIX)-node:$(IMAGE_TAG) $(IMAGE_PREFIX)-kube-manager:$(IMAGE_TAG) $(IMAGE_TAG)

clean:
	rm -rf $(BIN)
