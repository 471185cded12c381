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
#
# With --hosts N (2 to 8: host-a to host-h) or --center, the lab is a cluster: ferry-center runs
# in its own namespace on a management network (mgmt-net, 192.168.50.0/24: the center .100,
# host i .1i), each ferryd serves its CLI there over TLS (--manage, certificates made at up by a
# lab CA), the center has every host (by its management address) and a datastore every host
# mounts (/run/ferry/lab-datastore, ds1). vMotion addresses: 50.50.50.1, .2, then .4 up (.3 is
# the Linux peer), a /28 past two hosts.
# usage: tools/lab/lab.sh up [--hosts N] [--center] | down | status | ctl <host|center> <command...>
# Everything it makes is named ferry-lab-*; it touches nothing else, and `up` first removes
# what an earlier run left.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
ferryd=${FERRYD:-$root/build/ferryd/ferryd}
ferryctl=${FERRYCTL:-$root/build/ferryctl/ferryctl}
ferry_center=${FERRY_CENTER:-$root/build/center/ferry-center}
run=/run/ferry
all_hosts=(host-a host-b host-c host-d host-e host-f host-g host-h)
# The hosts of the lab that is up (down and ctl find them from its files).
hosts=(host-a host-b)
if [ -f "$run/lab-hosts" ]; then
	read -r -a hosts <"$run/lab-hosts"
fi
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
# Host i's (1-based) vMotion address: .3 is the Linux peer's.
vmotion_ip() { if [ "$1" -le 2 ]; then echo "50.50.50.$1"; else echo "50.50.50.$(($1 + 1))"; fi; }
ctl() { "$ferryctl" -s "$(sock "$1")" "${@:2}"; }

down() {
	if [ -f "$run/lab-center.pid" ]; then
		kill "$(cat "$run/lab-center.pid")" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$(cat "$run/lab-center.pid")" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$(cat "$run/lab-center.pid")" 2>/dev/null || true
	fi
	for h in "${all_hosts[@]}"; do
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
	for n in tor vmnet client mgmt center "${all_hosts[@]}"; do
		ip netns del "$(ns "$n")" 2>/dev/null || true
	done
	# Sockets of a killed ferryd, start-up files, logs, keys, certificates, the datastore,
	# EAL's runtime folders, and the hugepage files of its memory (they would hold the pool's
	# pages).
	rm -rf "$run"/lab-*
	rmdir "$run" 2>/dev/null || true
	for h in "${all_hosts[@]}"; do
		rm -rf "/var/run/dpdk/ferry-lab-$h" "${RUNTIME_DIRECTORY:-/nonexistent}/dpdk/ferry-lab-$h"
		rm -f /dev/hugepages/"ferry-lab-$h"map_*
	done
}

# A veth from namespace $1 (name $2) to namespace $3 (name $4).
wire() {
	ip link add name "$2" netns "$(ns "$1")" type veth peer name "$4" netns "$(ns "$3")"
}

# The lab's CA, each host's server certificate for its management address, the center's.
certificates() {
	local dir=$run/lab-pki
	mkdir -p "$dir"
	key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
	key "$dir/ca.key"
	openssl req -x509 -new -key "$dir/ca.key" -out "$dir/ca.crt" -days 30 -subj "/CN=ferry lab CA" 2>/dev/null
	# signed <name> <cn> [subjectAltName]
	signed() {
		key "$dir/$1.key"
		openssl req -new -key "$dir/$1.key" -out "$dir/$1.csr" -subj "/CN=$2" 2>/dev/null
		openssl x509 -req -in "$dir/$1.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
			-CAcreateserial -out "$dir/$1.crt" -days 30 \
			${3:+-extfile <(printf 'subjectAltName=%s\n' "$3")} 2>/dev/null
	}
	local i=1
	for h in "${hosts[@]}"; do
		signed "$h" "$h" "IP:192.168.50.1$i"
		i=$((i + 1))
	done
	signed center ferry-center "IP:192.168.50.100"
	chmod 600 "$dir"/*.key
}

up() {
	local nb_hosts=2 center=0
	while [ $# -gt 0 ]; do
		case "$1" in
		--hosts)
			nb_hosts=${2:-}
			center=1
			shift 2 || true
			;;
		--center)
			center=1
			shift
			;;
		*) echo "lab: up [--hosts N] [--center]" >&2; exit 2 ;;
		esac
	done
	if ! [[ "$nb_hosts" =~ ^[2-8]$ ]]; then
		echo "lab: --hosts takes 2 to 8" >&2
		exit 2
	fi
	hosts=("${all_hosts[@]:0:$nb_hosts}")
	down
	[ -x "$ferryd" ] || { echo "lab: $ferryd is not built (run: meson setup build && ninja -C build)" >&2; exit 1; }
	if [ "$center" = 1 ] && [ ! -x "$ferry_center" ]; then
		echo "lab: $ferry_center is not built" >&2
		exit 1
	fi
	local prefix=29
	[ "$nb_hosts" -gt 2 ] && prefix=28
	mkdir -p "$run"
	echo "${hosts[*]}" >"$run/lab-hosts"
	# The hosts' shared vMotion key, as a cluster's hosts share one.
	(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$run/lab-vmotion.key")
	local extra=()
	[ "$center" = 1 ] && extra=(mgmt center)
	for n in tor vmnet client "${extra[@]}" "${hosts[@]}"; do
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
	ip -n "$(ns vmnet)" addr add "50.50.50.3/$prefix" dev vmotion-net
	# Linux leaves UDP checksums to the NIC when it can; ferry checks them, so the Linux
	# peers finish their own.
	ip netns exec "$(ns vmnet)" ethtool -K vmotion-net tx off >/dev/null

	wire client eth0 tor client
	ip -n "$(ns tor)" link set client master tor up
	ip -n "$(ns client)" addr add 10.0.0.100/24 dev eth0
	ip -n "$(ns client)" link set eth0 up
	ip netns exec "$(ns client)" ethtool -K eth0 tx off >/dev/null
	if [ "$center" = 1 ]; then
		certificates
		mkdir -p "$run/lab-datastore"
		ip -n "$(ns mgmt)" link add mgmt-net type bridge
		ip -n "$(ns mgmt)" link set mgmt-net up
		wire center eth0 mgmt center
		ip -n "$(ns mgmt)" link set center master mgmt-net up
		ip -n "$(ns center)" addr add 192.168.50.100/24 dev eth0
		ip -n "$(ns center)" link set eth0 up
	fi

	local i=1
	for h in "${hosts[@]}"; do
		local manage=()
		if [ "$center" = 1 ]; then
			# The management network: the host's own kernel stack, beside ferryd's ports.
			wire "$h" mgmt0 mgmt "$h"
			ip -n "$(ns mgmt)" link set "$h" master mgmt-net up
			ip -n "$(ns "$h")" addr add "192.168.50.1$i/24" dev mgmt0
			ip -n "$(ns "$h")" link set mgmt0 up
			manage=(--manage "192.168.50.1$i:9443" --cert "$run/lab-pki/$h.crt"
				--key "$run/lab-pki/$h.key" --ca "$run/lab-pki/ca.crt")
		fi
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
vmk add vmk1 portgroup vMotion ip $(vmotion_ip $i)/$prefix mtu $vmotion_mtu
vmk udp-echo vmk1 7
migrate listen vmk1 key $run/lab-vmotion.key
CONF
		# Pools are sized by each port's MTU anyway; AF_XDP needs its buffers within a page
		# (its UMEM), so the jumbo floor is only for the other links.
		local mbuf_size="--mbuf-size 10368"
		[ "$vmotion_link" = af_xdp ] && mbuf_size=""
		# shellcheck disable=SC2086
		ip netns exec "$(ns "$h")" "$ferryd" -s "$(sock "$h")" -c "$run/lab-$h.conf" \
			"${manage[@]}" $mbuf_size -- $eal_memory --no-pci --no-telemetry \
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
	if [ "$center" = 1 ]; then
		start_center
	fi
	local list="" j=1
	for h in "${hosts[@]}"; do
		list="$list, $h vmk0 10.0.0.1$j vmk1 $(vmotion_ip $j)"
		j=$((j + 1))
	done
	echo "lab up ($vmotion_link vMotion link): client 10.0.0.100$list, vMotion peer 50.50.50.3$([ "$center" = 1 ] && echo ", ferry-center (tools/lab/ctl center ...) with datastore ds1")"
}

# ferry-center on the management network (its CLI there too, over TLS, for the lab's admins:
# the same CA's certificates), with every host and the datastore. The hosts keep
# the lab's vMotion key (the center provisions that one), so the lab's tests' own migrations
# and the center's share it.
start_center() {
	ip netns exec "$(ns center)" "$ferry_center" -s "$run/lab-center.sock" \
		-i "${FERRY_LAB_INVENTORY:-$run/lab-center.db}" \
		--cert "$run/lab-pki/center.crt" --key "$run/lab-pki/center.key" --ca "$run/lab-pki/ca.crt" \
		--vmotion-key "$run/lab-vmotion.key" \
		--vmotion-options "min-bandwidth 100M rtt-limit 50" --manage 192.168.50.100:9443 \
		${FERRY_LAB_CENTER_OPTIONS:-} >"$run/lab-center.log" 2>&1 &
	echo $! >"$run/lab-center.pid"
	local ok=0
	for _ in $(seq 100); do
		"$ferryctl" -s "$run/lab-center.sock" show center >/dev/null 2>&1 && { ok=1; break; }
		sleep 0.05
	done
	if [ "$ok" != 1 ]; then
		echo "lab: ferry-center did not start; its log:" >&2
		cat "$run/lab-center.log" >&2
		down
		exit 1
	fi
	local i=1 ids=()
	for h in "${hosts[@]}"; do
		ids+=("$("$ferryctl" -s "$run/lab-center.sock" -j host add "$h" "192.168.50.1$i:9443" |
			python3 -c 'import json, sys; print(json.load(sys.stdin)["task"])')")
		i=$((i + 1))
	done
	ids+=("$("$ferryctl" -s "$run/lab-center.sock" -j datastore add ds1 "$run/lab-datastore" lease 5 |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["task"])')")
	for id in "${ids[@]}"; do
		if ! "$ferryctl" -s "$run/lab-center.sock" -w task "$id" >/dev/null 2>&1; then
			echo "lab: ferry-center's task $id failed:" >&2
			"$ferryctl" -s "$run/lab-center.sock" task "$id" >&2 || true
			down
			exit 1
		fi
	done
}

status() {
	if [ -S "$run/lab-center.sock" ]; then
		echo "== ferry-center"
		"$ferryctl" -s "$run/lab-center.sock" host list || true
	fi
	for h in "${hosts[@]}"; do
		echo "== $h"
		ctl "$h" show vmk || true
	done
	echo "== tor: bridge fdb"
	ip netns exec "$(ns tor)" bridge fdb show br tor | grep -v permanent || true
}

case "${1:-}" in
up) shift; up "$@" ;;
down) down ;;
status) status ;;
ctl)
	shift
	if [ "${1:-}" = center ]; then
		"$ferryctl" -s "$run/lab-center.sock" "${@:2}"
	else
		ctl "$@"
	fi
	;;
*) echo "usage: $0 up [--hosts N] [--center] | down | status | ctl <host|center> <command...>" >&2; exit 2 ;;
esac
