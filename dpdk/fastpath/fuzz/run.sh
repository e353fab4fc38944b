#!/usr/bin/env bash
# make fuzz: build the sanitizer harness and fuzz the packet path for
# FUZZ_TIME seconds (default 600) with FUZZ_JOBS processes (default 1; more
# runs libFuzzer's -fork mode). The corpus grows in bin/fuzz-corpus (kept
# between runs, seeded from corpus/ and regressions/); inputs that fail land
# in bin/fuzz-artifacts/. Extra libFuzzer flags: FUZZ_FLAGS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
time=${FUZZ_TIME:-600}
jobs=${FUZZ_JOBS:-1}
bin=$root/bin/fuzz-fastpath
work=$root/bin/fuzz-corpus
art=$root/bin/fuzz-artifacts
mkdir -p "$work" "$art"
"$here/build.sh" "$bin"
args=(-max_total_time="$time" -timeout=10 -print_final_stats=1 -artifact_prefix="$art/")
if [ "$jobs" -gt 1 ]; then
	args+=(-fork="$jobs")
fi
# shellcheck disable=SC2206 # FUZZ_FLAGS is a list of flags
args+=(${FUZZ_FLAGS:-})
rc=0
"$bin" "${args[@]}" "$work" "$here/corpus" "$here/regressions" || rc=$?
# EAL's runtime directories of harness processes that died before their
# atexit (a crash): theirs only, never a live process's.
for d in /var/run/dpdk/fil-fuzz-*; do
	[ -d "$d" ] || continue
	kill -0 "${d##*-}" 2>/dev/null || rm -rf "$d"
done
if [ "$rc" -ne 0 ]; then
	echo "fuzz: failed (exit $rc); inputs in $art: minimise with" \
		"$bin -minimize_crash=1 -runs=10000 INPUT, fix, then add it to $here/regressions/" >&2
fi
exit "$rc"
