#!/bin/bash
# The ferry lab: a whole vMotion setup on one machine, built from network namespaces.
#
#   client (10.0.0.100) ── tor (Linux bridge, the physical switch) ── host-a, host-b uplinks
#   host-a ferryd: vSwitch0 uplink up0 ─ "VM Network" + "Management Network" (vmk0 10.0.0.11/.12)
#                  vSwitch1 uplink vmo0 ─ "vMotion" (vmk1 50.50.50.1 / .2, a /29, MTU 9000)
#   vmotion-net (Linux bridge, private) ── host-a, host-b vMotion uplinks, and a Linux peer
#                                           50.50.50.3 on the bridge itself
#
# Both hosts listen for migrations on vmk1 (UDP 8000) with the key in /run/ferry/lab-vmotion.key.
# usage: tools/lab/lab.sh up | down | status | ctl <host-a|host-b> <command...>
# Everything it makes is named ferry-lab-*; it touches nothing else, and `up` first removes
# what an earlier run left.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
ferryd=${FERRYD:-$root/build/ferryd/ferryd}
ferryctl=${FERRYCTL:-$root/build/ferryctl/ferryctl}
run=/run/ferry
hosts=(host-a host-b)
# The vMotion link: "bridge" (default: veths into vmotion-net, where a Linux peer can join, read
# with af_packet), "af_xdp" (the same veths read with AF_XDP sockets: the kernel's fast path,
# frames up to a page, so MTU 1500 or 3000) or "memif" (shared-memory packet rings straight between
# the two ferryd, for speed).
vmotion_link=${FERRY_LAB_VMOTION_LINK:-bridge}
# The vMotion network runs jumbo frames, as vSphere's guides recommend; AF_XDP takes a frame only
# as large as one UMEM chunk of its buffers, so it runs at 1500.
if [ "$vmotion_link" = af_xdp ]; then
	vmotion_mtu=${FERRY_LAB_VMOTION_MTU:-1500}
	if [ "$vmotion_mtu" -gt 1500 ]; then
		echo "lab: the af_xdp link carries MTU 1500 at most (frames fit one UMEM chunk)" >&2
		exit 1
	fi
else
	vmotion_mtu=${FERRY_LAB_VMOTION_MTU:-9000}
fi
# Memory: tests run without hugepages; benchmarks set FERRY_LAB_HUGEPAGES=1 (and reserve them).
if [ "${FERRY_LAB_HUGEPAGES:-0}" = 1 ]; then
	# One file per memory segment list: memif's zero-copy mode shares ferryd's buffers with
	# its peer, and needs them so (down removes the files a killed ferryd leaves).
	eal_memory="--socket-mem 512 --single-file-segments"
	memif_options=",zero-copy=yes"
else
	eal_memory="--no-huge --no-shconf -m 512"
	memif_options=""
fi

ns() { echo "ferry-lab-$1"; }
sock() { echo "$run/lab-$1.sock"; }
ctl() { "$ferryctl" -s "$(sock "$1")" "${@:2}"; }

down() {
	for h in "${hosts[@]}"; do
		local pidfile=$run/lab-$h.pid
		if [ -f "$pidfile" ]; then
			local pid
			pid=$(cat "$pidfile")
			kill "$pid" 2>/dev/null || true
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -9 "$pid" 2>/dev/null || true
			rm -f "$pidfile"
		fi
	done
	for n in tor vmnet client "${hosts[@]}"; do
		ip netns del "$(ns "$n")" 2>/dev/null || true
	done
	# Sockets of a killed ferryd, start-up files, logs, keys, EAL's runtime folders, and the
	# hugepage files of its memory (they would hold the pool's pages).
	rm -f "$run"/lab-*
	rmdir "$run" 2>/dev/null || true
	for h in "${hosts[@]}"; do
		rm -rf "/var/run/dpdk/ferry-lab-$h" "${RUNTIME_DIRECTORY:-/nonexistent}/dpdk/ferry-lab-$h"
		rm -f /dev/hugepages/"ferry-lab-$h"map_*
	done
}

# A veth from namespace $1 (name $2) to namespace $3 (name $4).
wire() {
	ip link add name "$2" netns "$(ns "$1")" type veth peer name "$4" netns "$(ns "$3")"
}

up() {
	down
	[ -x "$ferryd" ] || { echo "lab: $ferryd is not built (run: meson setup build && ninja -C build)" >&2; exit 1; }
	mkdir -p "$run"
	# The hosts' shared vMotion key, as a cluster's hosts share one.
	(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$run/lab-vmotion.key")
	for n in tor vmnet client "${hosts[@]}"; do
		ip netns add "$(ns "$n")"
		ip -n "$(ns "$n")" link set lo up
	done
	# Switch-side namespaces carry frames; they must not send their own IPv6 chatter.
	for n in tor "${hosts[@]}"; do
		ip netns exec "$(ns "$n")" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
			net.ipv6.conf.default.disable_ipv6=1
	done
	ip -n "$(ns tor)" link add tor type bridge
	ip -n "$(ns tor)" link set tor up
	ip -n "$(ns vmnet)" link add vmotion-net type bridge
	ip -n "$(ns vmnet)" link set vmotion-net mtu "$vmotion_mtu" up
	ip -n "$(ns vmnet)" addr add 50.50.50.3/29 dev vmotion-net
	# Linux leaves UDP checksums to the NIC when it can; ferry checks them, so the Linux
	# peers finish their own.
	ip netns exec "$(ns vmnet)" ethtool -K vmotion-net tx off >/dev/null

	wire client eth0 tor client
	ip -n "$(ns tor)" link set client master tor up
	ip -n "$(ns client)" addr add 10.0.0.100/24 dev eth0
	ip -n "$(ns client)" link set eth0 up
	ip netns exec "$(ns client)" ethtool -K eth0 tx off >/dev/null

	local i=1
	for h in "${hosts[@]}"; do
		wire "$h" up0 tor "$h"
		ip -n "$(ns tor)" link set "$h" master tor up
		ip -n "$(ns "$h")" link set up0 up
		local vmo0
		if [ "$vmotion_link" = memif ]; then
			local role=client
			[ "$h" = host-a ] && role=server
			# A filesystem socket: abstract ones live in one network namespace only.
			vmo0="net_memif_vmo0,role=$role,id=0,socket=$run/lab-vmotion.memif,socket-abstract=no,bsize=10240$memif_options"
		else
			wire "$h" vmo0 vmnet "$h"
			ip -n "$(ns vmnet)" link set "$h" mtu "$vmotion_mtu" master vmotion-net up
			ip -n "$(ns "$h")" link set vmo0 mtu "$vmotion_mtu" up
			if [ "$vmotion_link" = af_xdp ]; then
				vmo0="net_af_xdp_vmo0,iface=vmo0,start_queue=0,queue_count=1"
			else
				# af_packet takes jumbo frames when its blocks hold whole frames of
				# that size.
				vmo0="net_af_packet_vmo0,iface=vmo0,framesz=10240,blocksz=20480,framecnt=256"
			fi
		fi
		cat >"$run/lab-$h.conf" <<CONF
# ferry lab: $h
portgroup add "VM Network"
portgroup add "Management Network"
port add up0 net_af_packet_up0,iface=up0 role uplink
vmk add vmk0 portgroup "Management Network" ip 10.0.0.1$i/24
vswitch add vSwitch1
portgroup add vMotion vswitch vSwitch1
port add vmo0 $vmo0 role uplink vswitch vSwitch1 mtu $vmotion_mtu
vmk add vmk1 portgroup vMotion ip 50.50.50.$i netmask 255.255.255.248 mtu $vmotion_mtu
vmk udp-echo vmk1 7
migrate listen vmk1 key $run/lab-vmotion.key
CONF
		# Pools are sized by each port's MTU anyway; AF_XDP needs its buffers within a page
		# (its UMEM), so the jumbo floor is only for the other links.
		local mbuf_size="--mbuf-size 10368"
		[ "$vmotion_link" = af_xdp ] && mbuf_size=""
		# shellcheck disable=SC2086
		ip netns exec "$(ns "$h")" "$ferryd" -s "$(sock "$h")" -c "$run/lab-$h.conf" \
			$mbuf_size -- $eal_memory --no-pci --no-telemetry \
			--lcores='0@(0-1)' \
			--file-prefix "ferry-lab-$h" >"$run/lab-$h.log" 2>&1 &
		echo $! >"$run/lab-$h.pid"
		# One host at a time: a memif client needs its server's socket to exist.
		local ok=0
		for _ in $(seq 200); do
			ctl "$h" show version >/dev/null 2>&1 && { ok=1; break; }
			kill -0 "$(cat "$run/lab-$h.pid")" 2>/dev/null || break
			sleep 0.05
		done
		if [ "$ok" != 1 ]; then
			echo "lab: ferryd on $h did not start; its log:" >&2
			cat "$run/lab-$h.log" >&2
			down
			exit 1
		fi
		i=$((i + 1))
	done
	echo "lab up ($vmotion_link vMotion link): client 10.0.0.100, host-a vmk0 10.0.0.11 vmk1 50.50.50.1, host-b vmk0 10.0.0.12 vmk1 50.50.50.2, vMotion peer 50.50.50.3"
}

status() {
	for h in "${hosts[@]}"; do
		echo "== $h"
		ctl "$h" show vmk || true
	done
	echo "== tor: bridge fdb"
	ip netns exec "$(ns tor)" bridge fdb show br tor | grep -v permanent || true
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
ctl) shift; ctl "$@" ;;
*) echo "usage: $0 up | down | status | ctl <host-a|host-b> <command...>" >&2; exit 2 ;;
esac
