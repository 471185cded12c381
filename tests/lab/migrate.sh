#!/bin/bash
# Lab migration tests (TAP, root): live migrations between the lab's two ferryd hosts over the
# vMotion bridge, with the client's traffic and the Linux bridge (tor) as the physical switch.
# There and back with memory verified, over an impaired vMotion link, pre-flight refusals, and
# the destination's ferryd killed mid-migration.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/../lib/lab.sh"
here=$(cd "$(dirname "$0")" && pwd)
lab=$here/../../tools/lab/lab.sh
dir=$(mktemp -d /tmp/ferry-lab-migrate-XXXXXX)
key=/run/ferry/lab-vmotion.key

trap lab_cleanup EXIT

fdb_on() { in_ns tor bridge fdb show br tor | grep -q "^$1 dev $2 "; }
answers() { in_ns client ping -c 2 -i 0.2 -W 2 "$1" >/dev/null; }
absent_from() { ! ctl "$2" vm show "$1" >/dev/null 2>&1; }
status_has() { ctl "$1" -j migrate status | grep -q "$2"; }

"$lab" up >"$dir/up.log" 2>&1 || { echo "Bail out! the lab did not come up"; sed 's/^/# /' "$dir/up.log"; exit 1; }

mac=02:00:00:00:02:01
ip=10.0.0.60
check "a 256 MiB VM on host-a, memory written, 2,000 pages/s" ctl host-a vm create web01 mem 256 \
	mac $mac ip $ip/24 portgroup "VM Network" workload uniform,rate=2000,fill=100
check "tor learns it on host-a's port" within 5 fdb_on $mac host-a
counts_to_3() { [ "$(counter $ip)" = 1 ] && [ "$(counter $ip)" = 2 ] && [ "$(counter $ip)" = 3 ]; }
check "its UDP counter counts 1, 2, 3" counts_to_3
check "the pre-flight check passes" ctl host-a migrate check web01 to 50.50.50.2 key $key min-bandwidth 100M rtt-limit 50

# There, with the destination comparing its memory's hash with the source's.
check "migrate host-a -> host-b, verify on" migrate host-a web01 to 50.50.50.2 key $key verify on min-bandwidth 100M rtt-limit 50
check "the migration completed and the memory was verified byte for byte (hash)" \
	status_has host-a '"status": "completed", "peer": "50.50.50.2:8000", "session": "[0-9a-f]*", "encryption": "required", "cipher": "[a-z0-9-]* (encrypted)", "verified": true'
check "the VM runs on host-b" runs_on web01 host-b
check "and is gone from host-a" absent_from web01 host-a
check "tor's fdb entry moved to host-b's port" within 5 fdb_on $mac host-b
check "the VM answers the client's ping from host-b" answers $ip
counter_is() { [ "$(counter $ip)" = "$1" ]; }
check "its UDP counter went on at 4 (it lives in the VM's memory)" counter_is 4

# And back.
check "migrate host-b -> host-a, verify on" migrate host-b web01 to 50.50.50.1 key $key verify on min-bandwidth 100M rtt-limit 50
check "the VM runs on host-a again" runs_on web01 host-a
check "tor's fdb entry moved back to host-a" within 5 fdb_on $mac host-a
check "it answers ping" answers $ip
check "its counter went on at 5" counter_is 5

# Over a vMotion link that loses and reorders, both ways (the hosts' own link emulation).
impair() { ctl host-a port set vmo0 impair "$@" && ctl host-b port set vmo0 impair "$@"; }
check "impair both vMotion uplinks: loss 2 %, reorder 2 %" impair loss 2 reorder 2 seed 7
check "migrate host-a -> host-b over the impaired link, verify on" \
	migrate host-a web01 to 50.50.50.2 key $key verify on min-bandwidth 50M rtt-limit 50
retransmitted() { ctl host-a -j migrate status | grep -q '"pages_retransmitted": [1-9]'; }
check "losses were repaired by retransmission" retransmitted
on_b_at_6() { runs_on web01 host-b && counter_is 6; }
check "the VM runs on host-b, counter at 6" on_b_at_6
check "link emulation off" impair off

# Post-copy: the VM resumes on host-a before its memory is there, pulls the pages it touches and
# takes the rest in the background, answering and counting on throughout; then hybrid, back.
check "migrate host-b -> host-a in post-copy" migrate host-b web01 to 50.50.50.1 key $key \
	mode postcopy min-bandwidth 100M rtt-limit 50
postcopied() { ctl host-b -j migrate status | grep -q '"postcopy_pages_absent": [1-9]'; }
check "it resumed on host-a before its pages came" postcopied
on_a_at_7() { runs_on web01 host-a && counter_is 7; }
check "it runs on host-a, counter at 7" on_a_at_7
check "tor's fdb entry moved to host-a" within 5 fdb_on $mac host-a
check "migrate host-a -> host-b, hybrid" migrate host-a web01 to 50.50.50.2 key $key \
	mode hybrid min-bandwidth 100M rtt-limit 50
on_b_at_8() { runs_on web01 host-b && counter_is 8; }
check "it runs on host-b, counter at 8" on_b_at_8

# A hot VM (100,000 page writes/s over 32 MiB: pre-copy would have to throttle it) moved in the
# default mode, hybrid, with the client pinging it every 20 ms throughout: it goes post-copy, is
# never throttled, answers throughout and counts on; tor relearns its MAC.
mac3=02:00:00:00:02:03
ip3=10.0.0.62
check "a hot 128 MiB VM on host-a" ctl host-a vm create web03 mem 128 mac $mac3 ip $ip3/24 \
	portgroup "VM Network" workload sequential,rate=100000,ws=8192,fill=100
hot_counts() { [ "$(counter $ip3)" = 1 ]; }
check "its UDP counter counts 1" hot_counts
in_ns client ping -i 0.02 -w 8 -W 1 $ip3 >"$dir/ping.out" 2>&1 &
pinger=$!
sleep 1
check "migrate it host-a -> host-b in the default mode, verify on" migrate host-a web03 to 50.50.50.2 \
	key $key verify on min-bandwidth 100M rtt-limit 50 max-bandwidth 1G downtime-limit 1
hybrid_postcopy() {
	grep -q "mode: *hybrid" "$dir/migrate.out" && grep -q "verified: *yes" "$dir/migrate.out" &&
		ctl host-b -j migrate status | python3 -c '
import json, sys
s = [m for m in json.load(sys.stdin)["migrations"] if m["vm"] == "web03"]
sys.exit(0 if s and s[-1].get("postcopy_pages_absent", 0) > 0 else 1)'
}
check "it went hybrid into post-copy, verified, with no throttle" hybrid_postcopy
no_throttle() { grep -q "throttle_percent: *0$" "$dir/migrate.out"; }
check "and was never throttled" no_throttle
wait $pinger
check "the client's pings were answered throughout (at least 9 in 10)" answered
hot_on_b() { runs_on web03 host-b && [ "$(counter $ip3)" = 2 ]; }
check "it runs on host-b, its counter went on at 2" hot_on_b
check "tor relearned its MAC on host-b's port" within 5 fdb_on $mac3 host-b
check "web03 destroyed" ctl host-b vm destroy web03

# Pre-flight refusals: the VM stays where it is and runs on.
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d " \n" >"$dir/wrong.key")
# refused_for <reason> <counter after> <key file> [options...]
refused_for() {
	! migrate host-b web01 to 50.50.50.1 key "$3" "${@:4}" || return 1
	grep -q "$1" "$dir/migrate.out" && runs_on web01 host-b && counter_is "$2"
}
check "a wrong key is refused, with that reason" refused_for "could not prove the key" 9 "$dir/wrong.key"
check "a round trip over the limit is refused, with that reason" \
	refused_for "pre-flight: round-trip time is" 10 $key rtt-limit 0.001
no_portgroup() {
	ctl host-a portgroup del "VM Network" || return 1
	refused_for "no port group VM Network" 11 $key
	local s=$?
	ctl host-a portgroup add "VM Network"
	return $s
}
check "a port group missing on the destination is refused, with that reason" no_portgroup

# A KVM VM: ferry's guest on a vCPU in host-a's ferryd, its memory in KVM's dirty log, moved
# with its memory verified; at host-b it is a KVM VM again, its guest counting on.
json=$here/../../tools/json-get
mac3=02:00:00:00:02:03
ip3=10.0.0.62
vm_field() { ctl "$1" -j vm show "$2" | "$json" "$3"; }
steps_from() { [ "$(vm_field "$1" kvm01 steps)" -gt "$2" ]; }
check "a 128 MiB KVM VM on host-a (ferry's guest on a vCPU), 2,000 pages/s" ctl host-a vm create \
	kvm01 mem 128 mac $mac3 ip $ip3/24 portgroup "VM Network" workload hotcold,rate=2000,fill=50 \
	backend kvm
check "its guest counts steps" within 5 steps_from host-a 1000
check "it answers the client's ping" answers $ip3
check "migrate it host-a -> host-b, verify on" migrate host-a kvm01 to 50.50.50.2 key $key \
	verify on min-bandwidth 100M rtt-limit 50
kvm_verified() {
	ctl host-a -j migrate status | python3 -c '
import json, sys
done = [m for m in json.load(sys.stdin)["migrations"] if m["vm"] == "kvm01"]
sys.exit(not (done and done[-1]["status"] == "completed" and done[-1]["verified"]))'
}
check "completed, its memory verified byte for byte (hash)" kvm_verified
check "a KVM VM at host-b" [ "$(vm_field host-b kvm01 backend)" = kvm ]
arrived=$(vm_field host-b kvm01 steps 2>/dev/null || echo 0)
check "its guest counts on from where it was" within 5 steps_from host-b "$arrived"
check "it answers the client's ping from host-b" answers $ip3
# Back in post-copy: it resumes at host-a before its pages are there; its vCPU's faults come
# through userfaultfd and host-a asks host-b for each page.
check "migrate it back host-b -> host-a in post-copy, verify on" migrate host-b kvm01 \
	to 50.50.50.1 key $key mode postcopy verify on min-bandwidth 100M rtt-limit 50
kvm_postcopied() {
	ctl host-b -j migrate status | python3 -c '
import json, sys
done = [m for m in json.load(sys.stdin)["migrations"] if m["vm"] == "kvm01"]
sys.exit(not (done and done[-1]["status"] == "completed" and done[-1]["verified"] and
              done[-1].get("postcopy_pages_absent", 0) > 0))'
}
check "completed in post-copy, every page as the source had it (hash)" kvm_postcopied
back=$(vm_field host-a kvm01 steps 2>/dev/null || echo 0)
check "its guest counts on at host-a" within 5 steps_from host-a "$back"
check "it answers the client's ping from host-a" answers $ip3
ctl host-a vm destroy kvm01 >/dev/null

# The destination dies mid-migration: the VM keeps running, and answering, on the source.
mac2=02:00:00:00:02:02
ip2=10.0.0.61
check "a 512 MiB VM on host-a" ctl host-a vm create web02 mem 512 mac $mac2 ip $ip2/24 \
	portgroup "VM Network" workload uniform,rate=2000,fill=100
ctl host-a migrate start web02 to 50.50.50.2 key $key max-bandwidth 500M min-bandwidth 100M rtt-limit 50 mode precopy >/dev/null 2>&1
active() { status_has host-a '"vm": "web02", "status": "active"'; }
check "its migration to host-b is under way" within 10 active
kill -9 "$(cat /run/ferry/lab-host-b.pid)"
failed() { status_has host-a '"vm": "web02", "status": "failed"'; }
check "host-b's ferryd killed: the migration fails within 5 s" within 8 failed
check "with the reason" status_has host-a 'stopped answering'
check "web02 runs on host-a" runs_on web02 host-a
check "and answers the client's ping" answers $ip2
first_count() { [ "$(counter $ip2)" = 1 ]; }
check "and its UDP counter" first_count

tap_finish
