#!/usr/bin/env bash
# Build the test environment's kube-apiserver and etcd (hack/testenv) once per
# machine and print the directory that holds them (the last line of stdout).
#
# The binaries are cached under
#   ${XDG_CACHE_HOME:-$HOME/.cache}/filament/testenv/<key>/
# where <key> hashes hack/testenv/go.mod, go.sum, the Go version and the
# link flags: a change to any of them builds anew, nothing else does.
# A cold build fetches the modules from the Go module proxy and takes about
# 4 minutes and 2.9 GB of memory on 2 cores; a cached one returns at once.
#
# Concurrent callers are serialised with flock on the cache's lock file; the
# build goes to a temporary directory renamed into place, so a reader never
# sees half a build and a killed build leaves nothing that looks complete.
# On a shared machine, wrap a cold build in `flock /tmp/filament-heavy.lock`
# yourself: this script does not take that lock, because make test may
# already run under it and a second flock on it would wait forever.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
env_dir=$repo/hack/testenv
k8s_version=v1.37.2
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	# Without the stamp /version says v0.0.0-master.
	ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=37"
done

key=$( { cat "$env_dir/go.mod" "$env_dir/go.sum"; go env GOVERSION; echo "$ldflags"; } |
	sha256sum | cut -c1-16)
root=${XDG_CACHE_HOME:-$HOME/.cache}/filament/testenv
dest=$root/$key

complete() { [ -x "$1/kube-apiserver" ] && [ -x "$1/etcd" ]; }

if complete "$dest"; then
	echo "$dest"
	exit 0
fi

mkdir -p "$root"
exec 9>"$root/.lock"
flock 9
if ! complete "$dest"; then # another caller may have built it while we waited
	rm -rf "$root"/.build-* # left by a build killed with SIGKILL: nobody else builds now
	tmp=$(mktemp -d "$root/.build-$key.XXXXXX")
	chmod 755 "$tmp"
	trap 'rm -rf "$tmp"' EXIT
	echo "testenv: building kube-apiserver $k8s_version and etcd into $dest (cold: 4 to 13 min)" >&2
	start=$(date +%s)
	cd "$env_dir"
	go build -trimpath -ldflags "$ldflags" -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
	go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
	rm -rf "$dest"
	mv -T "$tmp" "$dest"
	trap - EXIT
	echo "testenv: built in $(($(date +%s) - start)) s" >&2
fi
echo "$dest"
