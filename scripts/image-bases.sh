#!/usr/bin/env bash
# Make, without any container registry, the base images the Dockerfile's
# FROM lines name, and tag them with those names in the local storage of
# buildah (and podman, which shares it):
#   $DEBIAN_IMAGE (default docker.io/library/debian:bookworm-slim): Debian 12
#     from debootstrap (minbase), off this machine's Debian mirror, with the
#     apt sources of this machine (bookworm, -updates, -security) and the
#     trimmings of the official slim image (no docs, man pages, apt lists).
#   $GO_IMAGE (default docker.io/library/golang:1.26-bookworm): that Debian
#     with gcc, make, pkg-config, git and this machine's Go toolchain
#     ($(go env GOROOT)) at /usr/local/go, as the official golang image has,
#     and the machine's own CAs (/usr/local/share/ca-certificates).
# Then `make image` builds offline from a registry (Debian's packages and the
# Go module proxy are still reached). Root only; about 2 minutes.
# docs/operations.md, "Container image".
set -euo pipefail

DEBIAN_IMAGE=${DEBIAN_IMAGE:-docker.io/library/debian:bookworm-slim}
GO_IMAGE=${GO_IMAGE:-docker.io/library/golang:1.26-bookworm}
SUITE=bookworm
export PATH=/usr/local/go/bin:$PATH

if [ "$(id -u)" != 0 ]; then
	echo "image-bases: debootstrap needs root" >&2
	exit 1
fi
missing=()
for p in buildah debootstrap; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "image-bases: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The mirror this machine's apt uses for $SUITE (deb822 or one-line format),
# so that the image is made from where the machine already gets its packages.
mirror=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
	mirror=$(awk '/^URIs:/{u=$2} /^Suites:/ && / '"$SUITE"'( |$)/{print u; exit}' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
	mirror=$(awk '$1=="deb" && $3=="'"$SUITE"'"{print $2; exit}' /etc/apt/sources.list)
fi
if [ -z "$mirror" ]; then
	echo "image-bases: no Debian $SUITE mirror in /etc/apt/sources.list{,.d/debian.sources}" >&2
	exit 1
fi
goroot=$(go env GOROOT 2>/dev/null) || { echo "image-bases: no Go toolchain on this machine (go env GOROOT)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/filament-image-bases.XXXXXX)
ctr=""
cleanup() {
	[ -z "$ctr" ] || buildah rm "$ctr" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "image-bases: debootstrap $SUITE from $mirror"
debootstrap --variant=minbase "$SUITE" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
	tail -20 "$work/debootstrap.log" >&2
	exit 1
}
root=$work/rootfs
# The official image's apt sources (or this machine's, the same suites) in
# place of debootstrap's single line: -updates and -security come with it.
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
	cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/debian.sources"
	rm -f "$root/etc/apt/sources.list"
fi
# What the official slim image does: no documentation, no apt caches.
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Binary::apt::APT::Keep-Downloaded-Packages "false";
Acquire::GzipIndexes "true";
Acquire::CompressionTypes::Order:: "gz";
EOF
find "$root/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
rm -rf "$root"/usr/share/{man,info,locale}/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* \
	"$root"/var/log/* "$root"/tmp/*
tar -C "$root" --numeric-owner -cf "$work/rootfs.tar" .

ctr=$(buildah from scratch)
buildah add "$ctr" "$work/rootfs.tar" / >/dev/null
buildah config --cmd /bin/bash \
	--env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	--label org.opencontainers.image.description="Debian $SUITE (debootstrap minbase), made by scripts/image-bases.sh" "$ctr"
buildah commit --quiet --rm "$ctr" "$DEBIAN_IMAGE" >/dev/null
ctr=""
echo "image-bases: $DEBIAN_IMAGE"

ctr=$(buildah from --pull=false "$DEBIAN_IMAGE")
# chroot isolation: no OCI runtime and no cgroups (crun refuses a machine with
# hybrid cgroups v1/v2, as this kind is); apt reaches the mirror as the host does.
buildah run --isolation chroot "$ctr" -- sh -c 'apt-get update -qq &&
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		ca-certificates gcc libc6-dev make pkg-config git >/dev/null &&
	rm -rf /var/lib/apt/lists/*'
buildah copy "$ctr" "$goroot" /usr/local/go >/dev/null
# A machine whose HTTPS goes through an intercepting proxy trusts the proxy's
# CA from /usr/local/share/ca-certificates: the build stage needs the same
# trust to reach the Go module proxy.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
	buildah copy "$ctr" /usr/local/share/ca-certificates /usr/local/share/ca-certificates >/dev/null
	buildah run --isolation chroot "$ctr" -- update-ca-certificates >/dev/null
fi
buildah config --env GOPATH=/go --env GOTOOLCHAIN=local \
	--env PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	--workingdir /go \
	--label org.opencontainers.image.description="$(go version | cut -d' ' -f3) from this machine on Debian $SUITE, made by scripts/image-bases.sh" "$ctr"
buildah commit --quiet --rm "$ctr" "$GO_IMAGE" >/dev/null
ctr=""
echo "image-bases: $GO_IMAGE ($(go version | cut -d' ' -f3))"
