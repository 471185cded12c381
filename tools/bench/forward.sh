#!/bin/bash
# Forwarding benchmark: one forwarding core (or --workers N), hugepages, DPDK virtual devices. ferryd's vswitch is
# measured beside dpdk-testpmd --forward-mode=io on the same vdevs in the same run, and beside
# Open vSwitch 3.1 with DPDK (NORMAL action) when it is installed (--with-ovs installs it).
#
# Input is net_pcap with infinite_rx=1. One direction: a capture into port a, out to
# net_null0,no-rx=1. Both directions: two captures, mirror images (a->b and b->a), each port
# writing to /dev/null, so every frame is known unicast once the switch is warm. "uplink" is
# both directions with port a ferryd's uplink and b a VM port (the others see two ports).
#
# ferryd runs from an optimised build of its own (build-bench: buildtype=release, asserts off,
# DPDK linked in; FERRY_BENCH_BUILD names another build folder to measure instead);
# --native adds a second one with -march=native and prints what it adds; --shared one with
# DPDK's shared libraries (as Debian's testpmd is linked) and prints what linking DPDK in gives;
# --perf records where
# ferryd's cycles go in the 64-byte, 1,024-MAC, both-ways case (FERRY_BENCH_PERF_CASE=size/MACs/dirs
# names another; perf record, top symbols).
#
# Each capture holds max(MACs, 1,024) frames unless FERRY_BENCH_FRAMES sets the count: the
# 65,536-MAC case then replays 150 MB of buffers against the 1,024-MAC case's 2 MB, which every
# system pays for in its receive copy; FERRY_BENCH_FRAMES=65536 gives every case the same.
#
# --rounds N runs each case N times, the systems alternated, and prints the medians.
# --workers N runs ferryd with N forwarding workers (-l 0..N-1) and each port with N rx and tx
# queues (the capture given N times), against testpmd with N forwarding cores and as many queues.
# --scaling (with --workers N) also runs both with one worker / core in every round, so that
# what N give over one is taken in the same rounds, not across runs minutes apart.
# --pairs (with --workers N) gives N pairs of one-queue ports instead of N queues on each of two
# ports, each pair with hosts of its own and polled by one worker (the one-worker runs of
# --scaling poll them all); testpmd's N cores get the same 2N ports. net_pcap keeps each rx
# queue's ring pointer on the cache line where the next queue counts its frames, so two cores on
# two queues of one pcap port pass that line back and forth every burst (testpmd loses as much as
# ferryd to it): a NIC's queues share no such line, and --pairs measures the workers without it.
#
# usage: tools/bench/forward.sh [--with-ovs] [--seconds N] [--quick] [--native] [--shared] [--perf] [--drop]
#                               [--workers N] [--rounds N] [--scaling] [--pairs]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

seconds=5
warmup=2
with_ovs=0
quick=0
native=0
shared=0
perf=0
drop=0
workers=1
scaling=0
rounds=1
pairs=0
while [ $# -gt 0 ]; do
	case "$1" in
	--with-ovs) with_ovs=1; shift ;;
	--seconds) seconds=$2; shift 2 ;;
	--quick) quick=1; shift ;;
	--native) native=1; shift ;;
	--shared) shared=1; shift ;;
	--perf) perf=1; shift ;;
	--drop) drop=1; shift ;;
	--workers) workers=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--scaling) scaling=1; shift ;;
	--pairs) pairs=1; shift ;;
	*) echo "usage: $0 [--with-ovs] [--seconds N] [--quick] [--native] [--shared] [--perf] [--drop] [--workers N] [--rounds N] [--scaling] [--pairs]" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "forward: run as root (hugepages)" >&2; exit 1; }
tools/setup.sh >/dev/null
if [ "$with_ovs" = 1 ] && [ ! -x /usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openvswitch-switch-dpdk >/dev/null
fi
ovs=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
[ -x "$ovs" ] || ovs=
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
# The measured ferryd: release, asserts off (the default build keeps them, for the tests), DPDK
# linked in.
[ -f build-bench/build.ninja ] ||
	meson setup build-bench -Dbuildtype=release -Dtests=disabled -Ddpdk_static=true >/dev/null
meson configure build-bench -Ddpdk_static=true >/dev/null
ninja -C build-bench ferryd/ferryd >/dev/null
if [ "$native" = 1 ]; then
	[ -f build-native/build.ninja ] || meson setup build-native -Dbuildtype=release \
		-Dtests=disabled -Ddpdk_static=true -Dc_args=-march=native >/dev/null
	ninja -C build-native ferryd/ferryd >/dev/null
fi
if [ "$shared" = 1 ]; then
	[ -f build-shared/build.ninja ] || meson setup build-shared -Dbuildtype=release \
		-Dtests=disabled >/dev/null
	ninja -C build-shared ferryd/ferryd >/dev/null
fi
ferryd_build=${FERRY_BENCH_BUILD:-build-bench}
# One worker forwards on lcore 1; N on lcores 0..N-1 (the main one forwards too). testpmd's main
# lcore only prints: it shares CPU 0 with its first forwarding core.
set_workers() {
	workers=$1
	if [ "$workers" = 1 ]; then
		ferryd_lcores=1
		testpmd_lcores=0@0,1@1
	else
		ferryd_lcores=0-$((workers - 1))
		testpmd_lcores="0@0,$(for w in $(seq "$workers"); do printf "%s@%s," "$w" "$((w - 1))"; done)"
		testpmd_lcores=${testpmd_lcores%,}
	fi
}
set_workers "$workers"
[ "$scaling" = 1 ] && [ "$workers" = 1 ] && { echo "--scaling needs --workers N, N > 1" >&2; exit 2; }
# --pairs: the port pairs, fixed however many workers a run has.
npairs=$([ "$pairs" = 1 ] && echo "$workers" || echo 0)
# The case --perf profiles: size/MACs/directions.
perf_case=${FERRY_BENCH_PERF_CASE:-64/1024/both}

. tools/bench/hugepages.sh
reserve_hugepages 1536

work=$(mktemp -d /tmp/ferry-bench-XXXXXX)
# EAL's runtime folders go with the rest of the run, not to /var/run/dpdk.
export RUNTIME_DIRECTORY=$work
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	[ -n "${ovs_dir:-}" ] && ovs_stop
	rm -rf "$work"
}
trap cleanup EXIT

# devargs for a case: "<a devargs>|<b devargs>"; the second port is a sink when one-way.
devargs() {
	local size=$1 macs=$2 mode=$3 n=$4
	local a="$work/a-$size-$macs.pcap" b="$work/b-$size-$macs.pcap"
	[ -f "$a" ] || python3 tools/bench/make_traffic.py "$a" "$size" "$macs" a ${FERRY_BENCH_FRAMES:-}
	[ -f "$b" ] || python3 tools/bench/make_traffic.py "$b" "$size" "$macs" b ${FERRY_BENCH_FRAMES:-}
	# Output goes to /dev/null through libpcap (its writes cost more than the switching), or,
	# with --drop, is dropped by the PMD itself (net_pcap with no tx device drops what it is
	# given), which measures the switch.
	local tx=",tx_pcap=/dev/null" rxa="" rxb=""
	[ "$drop" = 1 ] && tx=
	# A queue pair per worker: the capture once per rx queue (and /dev/null once per tx queue).
	for _ in $(seq "$workers"); do
		rxa+=",rx_pcap=$a"
		rxb+=",rx_pcap=$b"
	done
	[ "$drop" = 1 ] || tx=$(for _ in $(seq "$workers"); do printf ",tx_pcap=/dev/null"; done)
	if [ "$mode" = oneway ]; then
		echo "net_pcap${n}0$rxa,infinite_rx=1$tx|net_null${n}1,no-rx=1"
	else
		echo "net_pcap${n}0$rxa,infinite_rx=1$tx|net_pcap${n}1$rxb,infinite_rx=1$tx"
	fi
}

# --pairs: "<name> <devargs>" per port. For ferryd (order "ferryd") a0..aN-1 then b0..bN-1: it
# hands rx queues to its workers in turn, in the order ports were added, so worker i polls pair
# i. For testpmd (order "testpmd") a0 b0 a1 b1...: it forwards between ports 0 and 1, 2 and 3.
pair_ports() {
	local size=$1 macs=$2 n=$3 order=$4 side p f tx="" list=()
	[ "$drop" = 1 ] || tx=",tx_pcap=/dev/null"
	for p in $(seq 0 $((npairs - 1))); do
		for side in a b; do
			f="$work/$side-$size-$macs-p$p.pcap"
			[ -f "$f" ] || python3 tools/bench/make_traffic.py "$f" "$size" "$macs" "$side" \
				"${FERRY_BENCH_FRAMES:-}" "$p"
			list+=("$side$p net_pcap$n$side$p,rx_pcap=$f,infinite_rx=1$tx")
		done
	done
	if [ "$order" = testpmd ]; then
		printf "%s\n" "${list[@]}"
	else
		printf "%s\n" "${list[@]}" | grep '^a'
		printf "%s\n" "${list[@]}" | grep '^b'
	fi
}

# Buffers for every capture (each PMD keeps its capture in buffers) and the traffic in flight.
mbufs_for() {
	local frames=${FERRY_BENCH_FRAMES:-$2} n=$workers
	[ "$pairs" = 1 ] && n=$npairs
	echo $((2 * n * (frames > 1024 ? frames : 1024) + 16384 * n))
}
room_for() { [ "$1" -gt 1800 ] && echo 9344 || echo 2176; }

# Prints "<Mpps> <cycles per packet>".
measure_ferryd() {
	local size=$1 macs=$2 mode=$3
	local d sock="$work/ferryd.sock" name args names=()
	# The MTU the frames need, as OVS is given: a port's buffers are sized by its MTU, and 9 KB
	# buffers for 64-byte frames spread the PMD's copies over four times the memory.
	local mtu=$((size > 1518 ? 9000 : 1500))
	printf "mac limit 262144\nportgroup add pg\n" >"$work/ferryd.conf"
	if [ "$pairs" = 1 ]; then
		while read -r name args; do
			names+=("$name")
			echo "port add $name $args role vnic portgroup pg mtu $mtu" >>"$work/ferryd.conf"
		done < <(pair_ports "$size" "$macs" 1 ferryd)
	else
		d=$(devargs "$size" "$macs" "$mode" 1)
		names=(a b)
		# "uplink": both ways, port a an uplink (untagged frames: the port group's VLAN 0).
		local role_a="role vnic portgroup pg"
		[ "$mode" = uplink ] && role_a="role uplink"
		echo "port add a ${d%%|*} $role_a mtu $mtu" >>"$work/ferryd.conf"
		echo "port add b ${d##*|} role vnic portgroup pg mtu $mtu" >>"$work/ferryd.conf"
	fi
	"$ferryd_build"/ferryd/ferryd -s "$sock" -c "$work/ferryd.conf" --mbufs "$(mbufs_for "$size" "$macs")" \
		--mbuf-size "$(room_for "$size")" -- -l "$ferryd_lcores" --file-prefix ferry-bench --huge-unlink --no-pci \
		--no-telemetry --log-level='*:error' >"$work/ferryd.log" 2>&1 &
	local pid=$!
	pids+=("$pid")
	local ctl="build/ferryctl/ferryctl -s $sock"
	for _ in $(seq 200); do $ctl show version >/dev/null 2>&1 && break; sleep 0.05; done
	sleep "$warmup"
	rx() {
		local total=0 name
		for name in "${names[@]}"; do
			total=$((total + $($ctl -j show port "$name" stats | tools/json-get rx_packets)))
		done
		echo "$total"
	}
	$ctl clear loop stats >/dev/null
	local r0 r1 t0 t1
	t0=$(date +%s.%N); r0=$(rx)
	sleep "$seconds"
	t1=$(date +%s.%N); r1=$(rx)
	if [ "$perf" = 1 ] && [ "$size/$macs/$mode" = "$perf_case" ] && [ "$ferryd_build" = build-bench ]; then
		perf record -q -g -p "$pid" -o "$work/perf.data" -- sleep 3 >/dev/null 2>&1 || true
		perf report -q -i "$work/perf.data" --no-children --stdio --sort dso,symbol 2>/dev/null |
			grep -E '^ +[0-9]+\.[0-9]+%' | head -20 >"$work/perf.txt" || true
	fi
	local cpp
	cpp=$($ctl -j show loop | tools/json-get cycles_per_packet)
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	awk -v p=$((r1 - r0)) -v t0="$t0" -v t1="$t1" -v c="$cpp" \
		'BEGIN { printf "%.2f %.0f\n", p / (t1 - t0) / 1e6, c }'
}

# testpmd io on the same vdevs; prints "<Mpps>": the mean of its per-second rates after warm-up.
measure_testpmd() {
	local size=$1 macs=$2 mode=$3
	local d vdevs=() queues=$workers name args
	if [ "$pairs" = 1 ]; then
		while read -r name args; do
			vdevs+=(--vdev "$args")
		done < <(pair_ports "$size" "$macs" 2 testpmd)
		queues=1
	else
		d=$(devargs "$size" "$macs" "$mode" 2)
		vdevs=(--vdev "${d%%|*}" --vdev "${d##*|}")
	fi
	timeout -s INT $((warmup + seconds + 3)) dpdk-testpmd --lcores "$testpmd_lcores" --file-prefix testpmd-bench \
		--no-pci --no-telemetry --log-level='*:error' "${vdevs[@]}" -- \
		--forward-mode=io --auto-start --stats-period 1 --nb-cores="$workers" \
		--rxq="$queues" --txq="$queues" \
		--total-num-mbufs="$(mbufs_for "$size" "$macs")" --mbuf-size="$(room_for "$size")" \
		</dev/null >"$work/testpmd.log" 2>&1 || true
	awk -v skip=$((warmup + 1)) -v n="$seconds" '
		/NIC statistics for port/ { port = $(NF - 1) }
		/Rx-pps:/ { if (port == 0) { i++ } if (i > skip && i <= skip + n) { sum += $2; k[i] = 1 } }
		END { c = 0; for (x in k) c++; printf "%.2f\n", c ? sum / c / 1e6 : 0 }' "$work/testpmd.log"
}

ovs_start() {
	ovs_dir=$(mktemp -d /tmp/ferry-ovs-XXXXXX)
	export OVS_RUNDIR=$ovs_dir OVS_LOGDIR=$ovs_dir OVS_DBDIR=$ovs_dir
	ovsdb-tool create "$ovs_dir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
	ovsdb-server "$ovs_dir/conf.db" --remote="punix:$ovs_dir/db.sock" \
		--pidfile="$ovs_dir/ovsdb.pid" --detach --log-file="$ovs_dir/ovsdb.log" >/dev/null 2>&1
	vsctl="ovs-vsctl --db=unix:$ovs_dir/db.sock"
	$vsctl --no-wait init
	$vsctl --no-wait set Open_vSwitch . other_config:dpdk-init=true \
		other_config:dpdk-lcore-mask=0x1 other_config:pmd-cpu-mask=0x2 \
		other_config:dpdk-socket-mem=2048 \
		other_config:dpdk-extra="--file-prefix=ovs-bench --no-pci --no-telemetry"
	"$ovs" "unix:$ovs_dir/db.sock" --pidfile="$ovs_dir/vswitchd.pid" --detach \
		--log-file="$ovs_dir/vswitchd.log" >/dev/null 2>&1
	$vsctl add-br br0 -- set bridge br0 datapath_type=netdev
}

ovs_stop() {
	local pid
	pid=$(cat "$ovs_dir/vswitchd.pid" 2>/dev/null || true)
	if [ -n "$pid" ]; then
		ovs-appctl -t "$ovs_dir/ovs-vswitchd.$pid.ctl" exit >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
		# Its PMD thread must be gone before the next run measures anything.
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
		kill -9 "$pid" 2>/dev/null || true
	fi
	kill "$(cat "$ovs_dir/ovsdb.pid" 2>/dev/null)" 2>/dev/null || true
	rm -rf "$ovs_dir"
	ovs_dir=
}

# OVS with the NORMAL action (MAC learning), same vdevs; prints "<Mpps>" or "n/a".
measure_ovs() {
	local size=$1 macs=$2 mode=$3
	local d
	d=$(devargs "$size" "$macs" "$mode" 3)
	ovs_start
	# OVS's shared mempool holds enough buffers for a replayed capture of 65,536 frames.
	$vsctl add-port br0 a -- set Interface a type=dpdk "options:dpdk-devargs=${d%%|*}" \
		mtu_request=$((size > 1518 ? 9000 : 1500)) >/dev/null 2>&1 || true
	$vsctl add-port br0 b -- set Interface b type=dpdk "options:dpdk-devargs=${d##*|}" \
		mtu_request=$((size > 1518 ? 9000 : 1500)) >/dev/null 2>&1 || true
	$vsctl set Open_vSwitch . other_config:mac-table-size=262144 2>/dev/null || true
	$vsctl set bridge br0 other_config:mac-table-size=262144
	sleep "$warmup"
	rx() { $vsctl get Interface "$1" statistics:rx_packets 2>/dev/null || echo 0; }
	local a0 b0 a1 b1 t0 t1
	t0=$(date +%s.%N); a0=$(rx a); b0=$(rx b)
	sleep "$seconds"
	t1=$(date +%s.%N); a1=$(rx a); b1=$(rx b)
	ovs_stop
	if [ "$a1" = 0 ]; then
		echo "n/a"
		return
	fi
	awk -v p=$((a1 - a0 + b1 - b0)) -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.2f\n", p / (t1 - t0) / 1e6 }'
}

median() { printf "%s\n" "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else printf "-" }'; }

cases=("64 1024 oneway" "64 16 both" "64 1024 both" "64 1024 uplink" "64 65536 both" "1518 1024 both"
	"9000 1024 both")
[ -n "${FERRY_BENCH_CASES:-}" ] && IFS=, read -r -a cases <<<"$FERRY_BENCH_CASES"
[ "$quick" = 1 ] && cases=("64 1024 both")

printf "ferry forwarding benchmark: %s s per run after %s s warm-up, %s forwarding worker(s), hugepages, median of %s round(s)\n" \
	"$seconds" "$warmup" "$workers" "$rounds"
[ "$pairs" = 1 ] && echo "ports: $npairs pairs of one queue each, a pair per worker"
printf "%-6s %-6s %-7s | %-14s %-7s | %-14s %-11s | %-10s %-10s\n" size MACs dirs "ferryd Mpps" "cyc/pkt" \
	"testpmd Mpps" "ferryd/tp" "OVS Mpps" "ferryd/OVS"
for c in "${cases[@]}"; do
	read -r size macs mode <<<"$c"
	if [ "$pairs" = 1 ] && [ "$mode" != both ]; then
		echo "$size $macs $mode: --pairs measures both directions only"
		continue
	fi
	# The systems alternate, round after round, and each figure is the median of its rounds:
	# this machine's neighbours move a single run by a third.
	f_runs=() c_runs=() t_runs=() o_runs=() f1_runs=() t1_runs=()
	for _ in $(seq "$rounds"); do
		read -r f c < <(measure_ferryd "$size" "$macs" "$mode")
		f_runs+=("$f") c_runs+=("$c")
		t_runs+=("$(measure_testpmd "$size" "$macs" "$mode")")
		if [ "$scaling" = 1 ]; then
			n=$workers
			set_workers 1
			read -r f c < <(measure_ferryd "$size" "$macs" "$mode")
			f1_runs+=("$f")
			t1_runs+=("$(measure_testpmd "$size" "$macs" "$mode")")
			set_workers "$n"
		fi
		# OVS runs one PMD thread here: it is compared with one worker only.
		[ -n "$ovs" ] && [ "$workers" = 1 ] && o_runs+=("$(measure_ovs "$size" "$macs" "$mode")")
	done
	f_mpps=$(median "${f_runs[@]}") f_cpp=$(median "${c_runs[@]}") t_mpps=$(median "${t_runs[@]}")
	o_mpps="-"
	[ "${#o_runs[@]}" -gt 0 ] && o_mpps=$(median "${o_runs[@]}")
	if [ "$rounds" -gt 1 ]; then
		echo "  rounds: ferryd ${f_runs[*]}; testpmd ${t_runs[*]}; OVS ${o_runs[*]:--}"
		# Each round's own ratios too: a round's runs are seconds apart, the rounds minutes, so
		# the machine's drift between rounds cancels in them.
		tp_round=() ovs_round=()
		for i in "${!f_runs[@]}"; do
			tp_round+=("$(ratio "${f_runs[$i]}" "${t_runs[$i]}")")
			[ -n "${o_runs[$i]:-}" ] && ovs_round+=("$(ratio "${f_runs[$i]}" "${o_runs[$i]}")")
		done
		printf "  each round's ferryd/tp %s (median %s)" "${tp_round[*]}" "$(median "${tp_round[@]}")"
		[ "${#ovs_round[@]}" -gt 0 ] &&
			printf ", ferryd/OVS %s (median %s)" "${ovs_round[*]}" "$(median "${ovs_round[@]}")"
		echo
	fi
	printf "%-6s %-6s %-7s | %-14s %-7s | %-14s %-11s | %-10s %-10s\n" "$size" "$macs" "$mode" \
		"$f_mpps" "$f_cpp" "$t_mpps" "$(ratio "$f_mpps" "$t_mpps")" "$o_mpps" \
		"$(ratio "$f_mpps" "$o_mpps")"
	if [ "$scaling" = 1 ]; then
		f1=$(median "${f1_runs[@]}") t1=$(median "${t1_runs[@]}")
		# Each round's ratio, then their median: a round's two runs share its conditions.
		f_scale=() t_scale=()
		for i in "${!f_runs[@]}"; do
			f_scale+=("$(ratio "${f_runs[$i]}" "${f1_runs[$i]}")")
			t_scale+=("$(ratio "${t_runs[$i]}" "${t1_runs[$i]}")")
		done
		echo "  one worker / core in the same rounds: ferryd ${f1_runs[*]}; testpmd ${t1_runs[*]}"
		printf "  %s workers: ferryd %s x its one worker (%s; rounds %s), testpmd %s x its one core (%s; rounds %s)\n" \
			"$workers" "$(ratio "$f_mpps" "$f1")" "$f1" "${f_scale[*]}" \
			"$(ratio "$t_mpps" "$t1")" "$t1" "${t_scale[*]}"
	fi
	for variant in native shared; do
		[ "${!variant}" = 1 ] || continue
		measured=$ferryd_build ferryd_build=build-$variant
		read -r n_mpps n_cpp < <(measure_ferryd "$size" "$macs" "$mode")
		ferryd_build=$measured
		what="-march=native"
		[ "$variant" = shared ] && what="DPDK's shared libraries"
		printf "%-6s %-6s %-7s | %-14s %-7s | %s: %s x the release build\n" "" "" \
			"" "$n_mpps" "$n_cpp" "$what" "$(ratio "$n_mpps" "$f_mpps")"
	done
done
if [ "$perf" = 1 ] && [ -s "$work/perf.txt" ]; then
	echo
	echo "where ferryd's cycles go ($perf_case: size/MACs/directions; perf record -g, self time):"
	cat "$work/perf.txt"
fi
[ -z "$ovs" ] && echo "(Open vSwitch with DPDK is not installed: run with --with-ovs to compare with it)"
cd "$root"
