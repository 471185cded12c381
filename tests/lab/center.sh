#!/bin/bash
# The cluster lab test (TAP, root): four ferryd hosts and ferry-center (tools/lab/up --hosts 4),
# hosts reached over TLS on the management network, a datastore all of them mount. vMotion by
# name with the client's traffic running; a host's evacuation into maintenance with eight VMs
# (none runs twice, the host ends with none, the time reported); balance from a skewed
# placement (dry-run moves nothing); a VM with a disk moved by name, its lock with it.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/../lib/lab.sh"
here=$(cd "$(dirname "$0")" && pwd)
lab=$here/../../tools/lab/lab.sh
dir=$(mktemp -d /tmp/ferry-lab-center-XXXXXX)
hosts=(host-a host-b host-c host-d)

trap lab_cleanup EXIT

"$lab" up --hosts 4 >"$dir/up.log" 2>&1 || { echo "Bail out! the 4-host lab did not come up"; sed 's/^/# /' "$dir/up.log"; exit 1; }

c() { ctl center "$@"; }
fdb_on() { in_ns tor bridge fdb show br tor | grep -q "^$1 dev $2 "; }
# Every host's own word on where a VM runs (not the center's): the hosts that list it.
hosts_running() {
	local h found=()
	for h in "${hosts[@]}"; do
		ctl "$h" vm show "$1" >/dev/null 2>&1 && found+=("$h")
	done
	echo "${found[*]}"
}

check "ferry-center has four hosts, connected over TLS, with their certificates" bash -c "
	'$lab' ctl center -j host list | python3 -c '
import json, sys
h = json.load(sys.stdin)[\"hosts\"]
assert [x[\"name\"] for x in h] == [\"host-a\", \"host-b\", \"host-c\", \"host-d\"], h
assert all(x[\"state\"] == \"connected\" and x[\"address\"].endswith(\":9443\") and
           len(x[\"certificate_sha256\"]) == 95 and x[\"vmotion\"] for x in h), h'"
check "ferry-center's own CLI answers over TLS on the management network" bash -c "
	ip netns exec ferry-lab-center '${FERRYCTL:-$here/../../build/ferryctl/ferryctl}' -H 192.168.50.100:9443 \
		--cert /run/ferry/lab-pki/center.crt --key /run/ferry/lab-pki/center.key \
		--ca /run/ferry/lab-pki/ca.crt host list | grep -q host-d"
check "every host mounts ds1" bash -c "for h in ${hosts[*]}; do '$lab' ctl \$h show datastores | grep -q ds1 || exit 1; done"

# vMotion by name, the client pinging the VM throughout.
mac=02:00:00:00:0c:01
ip=10.0.0.70
check "web01 (128 MiB) on host-a" ctl host-a vm create web01 mem 128 mac $mac ip $ip/24 \
	portgroup "VM Network" workload uniform,rate=2000,fill=100
counts_to_2() { [ "$(counter $ip)" = 1 ] && [ "$(counter $ip)" = 2 ]; }
check "its counter counts 1, 2" counts_to_2
in_ns client ping -i 0.05 -w 6 -W 1 $ip >"$dir/ping.out" 2>&1 &
pinger=$!
check "vmotion web01 host-c, waited for" c -w vmotion web01 host-c
check "it runs on host-c alone (each host asked)" test "$(hosts_running web01)" = host-c
check "tor follows it to host-c" within 5 fdb_on $mac host-c
check "its counter went on at 3" test "$(counter $ip)" = 3
wait $pinger
check "the client's pings were answered throughout (at least 9 in 10)" answered
vm_list_says() { c -j vm list | grep -q "\"name\": \"$1\", \"host\": \"$2\""; }
check "ferry-center's vm list says host-c" within 5 vm_list_says web01 host-c
check "vmotion to where it runs is refused" bash -c "
	'$lab' ctl center vmotion web01 host-c 2>&1 | grep -q already"

# Admission by port group: a VM on a port group only host-a has goes nowhere else.
check "solo on a port group only host-a has" bash -c "'$lab' ctl host-a portgroup add 'Lab Only' &&
	'$lab' ctl host-a vm create solo mem 16 mac 02:00:00:00:0c:0a ip 10.0.0.78/24 portgroup 'Lab Only'"
check "ferry-center lists solo on host-a" within 10 vm_list_says solo host-a
no_portgroup() {
	local out
	out=$(c -w vmotion solo host-b 2>&1)
	echo "$out"
	grep -q "host-b has no port group Lab Only" <<<"$out" && [ "$(hosts_running solo)" = host-a ]
}
check "vmotion solo host-b fails: host-b has no such port group; it stays on host-a" no_portgroup
check "solo destroyed" ctl host-a vm destroy solo

# Maintenance: eight VMs on host-b leave it.
for i in 1 2 3 4 5 6 7 8; do
	ctl host-b vm create "app0$i" mem 64 mac "02:00:00:00:0d:0$i" ip "10.0.0.8$i/24" \
		portgroup "VM Network" workload "uniform,rate=1000,seed=$i" >/dev/null ||
		echo "# app0$i was not created"
done
eight_listed() { [ "$(c -j vm list | grep -o '"host": "host-b"' | wc -l)" = 8 ]; }
check "ferry-center lists eight VMs on host-b" within 10 eight_listed
check "host maintenance host-b on, waited for" c -w host maintenance host-b on
c task "$(c -j tasks count 1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["tasks"][0]["id"])')" >"$dir/maintenance.out"
sed 's/^/# /' "$dir/maintenance.out"
none_twice() {
	local i where
	for i in 1 2 3 4 5 6 7 8; do
		where=$(hosts_running "app0$i")
		echo "app0$i: $where"
		case "$where" in host-a | host-c | host-d) ;; *) return 1 ;; esac
	done
}
check "every VM left host-b and runs on exactly one other host (each host asked)" none_twice
check "host-b reports no VMs" bash -c "'$lab' ctl host-b -j vm list | grep -q '\"vms\": \[\]'"
check "the evacuation's time is reported" grep -q "8 VMs evacuated in [0-9.]* s" "$dir/maintenance.out"
check "host-b is in maintenance" bash -c "'$lab' ctl center -j host list | grep -q '\"name\": \"host-b\", \"address\": \"[^\"]*\", \"state\": \"connected\", \"maintenance\": true'"
check "vmotion to host-b is refused while it is in maintenance" bash -c "
	'$lab' ctl center vmotion web01 host-b 2>&1 | grep -q 'maintenance'"
check "host maintenance host-b off" c -w host maintenance host-b off

# Balance: host-b is empty now, the others carry the eight and web01.
spread() { c -j host list | python3 -c '
import json, sys
m = [h["memory_committed_mb"] for h in json.load(sys.stdin)["hosts"]]
print((max(m) - min(m)) * 100 // max(m))'; }
placement() { c -j vm list | python3 -c 'import json, sys; print(sorted((v["name"], v["host"]) for v in json.load(sys.stdin)["vms"]))'; }
c -w refresh >/dev/null
before_spread=$(spread)
before=$(placement)
echo "# spread before balancing: $before_spread %"
check "balance dry-run recommends moves" bash -c "'$lab' ctl center -w balance dry-run | grep -q 'recommended, none moved: .*->host-b'"
check "and moves nothing" test "$(placement)" = "$before"
check "balance moves VMs to host-b" c -w balance
after_spread=$(spread)
echo "# spread after balancing: $after_spread %"
check "the spread fell ($before_spread % -> $after_spread %)" test "$after_spread" -lt "$before_spread"
check "each recommendation is an event with its reason" bash -c "'$lab' ctl center events count 50 | grep -q 'balance: move from .* to host-b'"
balanced_none_twice() {
	local v where
	for v in web01 app01 app02 app03 app04 app05 app06 app07 app08; do
		where=$(hosts_running "$v")
		[ "$(wc -w <<<"$where")" = 1 ] || { echo "$v on: $where"; return 1; }
	done
}
check "after balancing every VM runs on exactly one host" balanced_none_twice

# A VM whose disk is on ds1 moves by name, its lock with it.
check "db01 with a 16 MiB disk on ds1, on host-d" ctl host-d vm create db01 mem 32 \
	mac 02:00:00:00:0c:09 ip 10.0.0.79/24 portgroup "VM Network" datastore ds1 disk-mib 16
check "ferry-center lists it on host-d" within 10 vm_list_says db01 host-d
check "vmotion db01 host-a" c -w vmotion db01 host-a
check "its disk's lock is host-a's" grep -q '^owner=host-a ' /run/ferry/lab-datastore/db01/db01-flat.vmdk.lck
check "and host-a has it open" bash -c "'$lab' ctl host-a vm show db01 | grep -q 'disk_lock: *host-a'"

echo "# ferry-center's recent tasks:"
c tasks count 12 | sed 's/^/# /'
tap_finish
