#!/bin/bash
# What fuzzing reaches, before and now: each fuzz target run for SECONDS from a clean corpus,
# before (the targets and harnesses of BEFORE_COMMIT, unseeded) and now (today's, seeded from the
# real captures and a real session); then its edges (libFuzzer's cov) and the line coverage its
# corpus gives the modules it is for (llvm-cov: netif, vswitch, fdb, proto, and the engine's
# receive path: session, destination, source). Targets that did not exist before show "-".
# usage: tools/fuzz-coverage.sh [SECONDS] [BEFORE_COMMIT]   (default 60 s, 6a444c6)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:-60}
before=${2:-6a444c6}
tools/setup.sh >/dev/null
out=$(mktemp -d /tmp/ferry-fuzzcov-XXXXXX)
export RUNTIME_DIRECTORY=$out
trap 'git -C "$root" worktree remove --force "$out/before-src" >/dev/null 2>&1 || true' EXIT
flags="-fprofile-instr-generate -fcoverage-mapping"
build() {
	CC=clang meson setup "$2" "$1" -Dfuzz=true -Dtests=disabled -Dc_args="$flags" \
		-Dc_link_args="$flags" >/dev/null
	# The fuzz targets alone: without a sanitizer runtime the daemons do not link with
	# coverage counters in every module.
	local targets
	targets=$(ninja -C "$2" -t targets all | sed -n 's|^\(tests/fuzz/fuzz_[a-z]*\): .*|\1|p')
	# shellcheck disable=SC2086
	ninja -C "$2" $targets >/dev/null
}
git worktree add --detach "$out/before-src" "$before" >/dev/null 2>&1
build "$out/before-src" "$out/before" &
build "$root" "$out/now"
wait

declare -A files=(
	[netif]="dataplane/netif.c"
	[switch]="vswitch/vswitch.c vswitch/fdb.c"
	[proto]="migrate/proto.c"
	[migration]="migrate/session.c migrate/destination.c migrate/source.c migrate/proto.c"
)
# One target, one side: fuzz, then replay the corpus once with profiling on; prints
# "edges file:lines% ...".
measure() {
	local side=$1 target=$2 bin=$out/$1/tests/fuzz/fuzz_$2
	local corpus=$out/corpus-$side-$target seeds=()
	[ -x "$bin" ] || { echo "-"; return; }
	mkdir -p "$corpus"
	if [ "$side" = now ]; then
		seeds=("$out/seeds-$target")
		mkdir -p "${seeds[0]}"
		case $target in
		netif | switch) python3 tests/fuzz/seed_pcaps.py "$target" "${seeds[0]}" \
			pcaps/real/*.pcap* pcaps/*.pcap >/dev/null ;;
		*) cp tests/fuzz/seeds/"$target"/* "${seeds[0]}"/ ;;
		esac
	fi
	LLVM_PROFILE_FILE=/dev/null "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 \
		-print_final_stats=1 "$corpus" "${seeds[@]}" >"$out/$side-$target.log" 2>&1 || true
	local edges
	edges=$(sed -n 's/.*DONE *cov: \([0-9]*\).*/\1/p' "$out/$side-$target.log" | tail -1)
	local execs
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$side-$target.log")
	LLVM_PROFILE_FILE=$out/$side-$target.profraw "$bin" -runs=0 "$corpus" "${seeds[@]}" \
		>/dev/null 2>&1 || true
	llvm-profdata merge -o "$out/$side-$target.profdata" "$out/$side-$target.profraw"
	local line="edges ${edges:-?} execs ${execs:-?}"
	grep -q "deadly signal\|ERROR: AddressSanitizer\|ERROR: libFuzzer" "$out/$side-$target.log" &&
		line="$line CRASHED (see $out/$side-$target.log)"
	for f in ${files[$target]}; do
		local pct
		pct=$(llvm-cov report "$bin" -instr-profile="$out/$side-$target.profdata" 2>/dev/null |
			awk -v f="$f" 'substr($1, length($1) - length(f) + 1) == f { print $(NF-3) }' |
			head -1)
		line="$line $(basename "$f") ${pct:--}"
	done
	echo "$line"
}
printf '%-10s %-70s %s\n' target "before ($before, unseeded)" "now (seeded)"
for target in netif switch proto migration; do
	measure before "$target" >"$out/before-$target.result" &
	measure now "$target" >"$out/now-$target.result"
	wait
	printf '%-10s %-70s %s\n' "$target" "$(cat "$out/before-$target.result")" \
		"$(cat "$out/now-$target.result")"
done
echo "(lines: llvm-cov's line coverage of each file by the corpus; logs in $out)"
