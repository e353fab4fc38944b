#!/usr/bin/env bash
# make generate: regenerate the Go code of the protobuf APIs under dpdk/api
# with pinned tools, installed idempotently: Debian's protoc (3.21) and the
# Go plugins in bin/tools. The output is committed; `make generate` then
# `git diff --exit-code dpdk/api` must show nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO_VERSION=v1.36.12      # google.golang.org/protobuf, as in go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2   # generated code needs grpc >= 1.64 (go.mod: v1.85.0)
PROTOC_MINOR=3.21                   # Debian 12's protobuf-compiler

TOOLS="$PWD/bin/tools"
mkdir -p "$TOOLS"

if ! command -v protoc >/dev/null || ! protoc --version | grep -q "libprotoc ${PROTOC_MINOR}\."; then
	if [ "$(id -u)" != 0 ]; then
		echo "generate: need protoc ${PROTOC_MINOR} (Debian protobuf-compiler); as root: apt-get install -y protobuf-compiler" >&2
		exit 1
	fi
	echo "generate: installing protobuf-compiler"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends protobuf-compiler >/dev/null
	protoc --version | grep -q "libprotoc ${PROTOC_MINOR}\." || {
		echo "generate: protoc is $(protoc --version), want ${PROTOC_MINOR}.x" >&2; exit 1; }
fi

# go install only when the binary is missing or another version.
install_tool() { # binary module@version "version output"
	local bin=$1 mod=$2 want=$3
	if [ -x "$TOOLS/$bin" ] && [ "$("$TOOLS/$bin" --version 2>/dev/null)" = "$want" ]; then
		return
	fi
	echo "generate: go install $mod"
	GOBIN="$TOOLS" GOFLAGS=-mod=mod go install "$mod"
}
install_tool protoc-gen-go "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}" \
	"protoc-gen-go ${PROTOC_GEN_GO_VERSION}"
install_tool protoc-gen-go-grpc "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${PROTOC_GEN_GO_GRPC_VERSION}" \
	"protoc-gen-go-grpc ${PROTOC_GEN_GO_GRPC_VERSION#v}"

# Paths relative to the repository root: the descriptor registers the file
# as dpdk/api/..., unique among the protos a binary links.
mapfile -t protos < <(find dpdk/api -name '*.proto' | sort)
for p in "${protos[@]}"; do
	protoc -I . \
		--plugin=protoc-gen-go="$TOOLS/protoc-gen-go" \
		--plugin=protoc-gen-go-grpc="$TOOLS/protoc-gen-go-grpc" \
		--go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative \
		"$p"
	echo "generate: $p"
done
