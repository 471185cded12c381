#!/bin/bash
# Lab migration over each fast vMotion link (TAP, root): AF_XDP sockets on the bridge's veths at
# MTU 1500, and memif straight between the two ferryd at MTU 9000. On each, a hugepage-backed VM
# goes there and back with its memory verified against the paused source's, once with each
# cipher, and answers the client after each move.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/../lib/lab.sh"
here=$(cd "$(dirname "$0")" && pwd)
lab=$here/../../tools/lab/lab.sh
dir=$(mktemp -d /tmp/ferry-lab-links-XXXXXX)
key=/run/ferry/lab-vmotion.key

trap lab_cleanup EXIT

verified_with() { ctl "$1" -j migrate status | grep -q "\"cipher\": \"$2 (encrypted)\", \"verified\": true"; }

mac=02:00:00:00:03:01
ip=10.0.0.70
count=0
counts_on() { count=$((count + 1)); runs_on web03 "$1" && [ "$(counter $ip)" = "$count" ]; }

for link in af_xdp memif; do
	if ! FERRY_LAB_VMOTION_LINK=$link "$lab" up >"$dir/up.log" 2>&1; then
		check "the lab comes up with the $link vMotion link" false
		sed 's/^/# /' "$dir/up.log"
		continue
	fi
	check "$link: a 128 MiB hugepage-backed VM on host-a, 2,000 pages/s" ctl host-a vm create \
		web03 mem 128 mac $mac ip $ip/24 portgroup "VM Network" workload \
		uniform,rate=2000,fill=100 hugepages on
	count=0
	check "$link: it answers its counter on host-a" counts_on host-a
	check "$link: host-a -> host-b with AES-256-GCM, memory verified" migrate host-a web03 \
		to 50.50.50.2 key $key verify on cipher aes-256-gcm min-bandwidth 100M rtt-limit 50
	check "$link: verified, encrypted with AES-256-GCM" verified_with host-a aes-256-gcm
	backed_by_hugepages() { ctl host-b vm show web03 | grep -q "memory_backing: *hugetlb"; }
	check "$link: on host-b, backed by hugepages too" backed_by_hugepages
	check "$link: it counts on from host-b" counts_on host-b
	check "$link: host-b -> host-a with ChaCha20-Poly1305, memory verified" migrate host-b \
		web03 to 50.50.50.1 key $key verify on cipher chacha20-poly1305 min-bandwidth 100M \
		rtt-limit 50
	check "$link: verified, encrypted with ChaCha20-Poly1305" verified_with host-b chacha20-poly1305
	check "$link: it counts on from host-a" counts_on host-a
	"$lab" down >/dev/null 2>&1
done

tap_finish
