#!/bin/bash
# Disk test (TAP): VM disks on a datastore two ferryd share, each disk locked by the host that
# runs its VM. The workload's block writes are checked against their formula; a second host is
# refused the disk with the owner's name; a host killed while it holds the lock loses it once its
# heartbeat has been silent for the lease, and the VM starts on the other host.
set -u
. "$(dirname "$0")/../lib/tap.sh"
ferryd=${FERRYD:?} ferryctl=${FERRYCTL:?}
dir=$(mktemp -d /tmp/ferry-disk-XXXXXX)
store=$dir/datastore1
mkdir -p "$store"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	rm -rf "$dir"
}
trap cleanup EXIT

# start <host>: a ferryd named host, with the shared datastore (a 2 s lease) and a port group.
start() {
	cat >"$dir/$1.conf" <<CONF
host name $1
datastore add ds1 $store lease 2
portgroup add pg
CONF
	"$ferryd" -s "$dir/$1.sock" -c "$dir/$1.conf" -- --no-huge --no-shconf -m 128 --no-pci \
		--no-telemetry --lcores='0@(0-1)' >"$dir/$1.log" 2>&1 &
	pids+=($!)
	eval "pid_${1//-/_}=$!"
	within 20 "$ferryctl" -s "$dir/$1.sock" show version >/dev/null 2>&1 ||
		{ echo "Bail out! ferryd $1 did not start"; cat "$dir/$1.log"; exit 1; }
}
ctl() { "$ferryctl" -s "$dir/$1.sock" "${@:2}"; }
vm_field() { ctl "$1" -j vm show "$2" | python3 -c "import json, sys; print(json.load(sys.stdin)['$3'])"; }
create() {
	ctl "$1" vm create web01 mem 16 mac 02:00:00:00:09:01 ip 10.0.9.1/24 portgroup pg \
		workload uniform,rate=3000,seed=7 datastore ds1 disk-mib 16
}

start host-a
start host-b
check "show datastores names the host and the datastore" \
	bash -c "'$ferryctl' -s '$dir/host-a.sock' show datastores | grep -q 'host: *host-a' &&
		'$ferryctl' -s '$dir/host-a.sock' show datastores | grep -q ds1"
check "the datastore's lease is the one configured" \
	bash -c "'$ferryctl' -s '$dir/host-a.sock' -j show datastores | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d); assert d[\"datastores\"][0][\"lease_s\"] == 2.0'"
check "a VM with a 16 MiB disk on ds1 runs on host-a" create host-a
check "its configuration is beside its disk" \
	bash -c "grep -q '^memory_mb = 16$' '$store/web01/web01.vmx' && grep -q '^mac = 02:00:00:00:09:01$' '$store/web01/web01.vmx' &&
		grep -q '^disk_mib = 16$' '$store/web01/web01.vmx'"
check "its disk is in its own folder, locked by host-a" \
	bash -c "test -f '$store/web01/web01-flat.vmdk' && grep -q '^owner=host-a ' '$store/web01/web01-flat.vmdk.lck'"
refused_to_b() {
	local out
	out=$(create host-b 2>&1)
	echo "$out"
	grep -q "locked by host-a" <<<"$out" && ! ctl host-b vm show web01 >/dev/null 2>&1
}
check "host-b is refused the disk, with its owner's name" refused_to_b
writes() { [ "$(vm_field host-a web01 disk_writes)" -ge "$1" ]; }
check "the workload writes its disk" within 20 writes 20
check "pause it" ctl host-a vm pause web01
lock_mtime() { python3 -c "import os, sys; print(os.stat(sys.argv[1]).st_mtime_ns)" "$store/web01/web01-flat.vmdk.lck"; }
renewed_since() { [ "$(lock_mtime)" -gt "$1" ]; }
check "host-a renews its heartbeat while the VM is paused" within 5 renewed_since "$(lock_mtime)"
# Every block written so far (fewer than the disk's 4,096) is the formula's for its step: the 4 KiB
# of splitmix64 words from (seed, step), block = step / 64; the rest of the disk is zeros.
blocks_are_the_formulas() {
	python3 - "$store/web01/web01-flat.vmdk" "$(vm_field host-a web01 disk_writes)" 7 <<'PY'
import struct, sys
path, writes, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
M = (1 << 64) - 1
def mix(x):
    x = (x + 0x9e3779b97f4a7c15) & M
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M
    return x ^ (x >> 31)
disk = open(path, "rb").read()
for b in range(writes + 2):
    got = disk[b * 4096:(b + 1) * 4096]
    if b < writes:
        base = mix(seed ^ mix((64 * b) ^ 0x6469736b))
        want = b"".join(struct.pack("<Q", mix((base + w) & M)) for w in range(512))
    else:
        want = bytes(4096)
    if got != want:
        print(f"block {b} differs (of {writes} written)")
        sys.exit(1)
print(f"{writes} blocks as the formula says, the next ones zero")
PY
}
check "every block written is the formula's for its step" blocks_are_the_formulas

# host-a dies with the lock: after the 2 s lease host-b breaks it and runs the VM.
kill -9 "$pid_host_a"
wait "$pid_host_a" 2>/dev/null
register_on_b() { ctl host-b vm register web01 datastore ds1; }
check "host-b registers web01 from its files once host-a's heartbeat has been silent for the lease" \
	within 15 register_on_b
check "it runs on host-b with the configuration host-a wrote" \
	bash -c "'$ferryctl' -s '$dir/host-b.sock' vm show web01 | grep -q 'mac: *02:00:00:00:09:01' &&
		'$ferryctl' -s '$dir/host-b.sock' vm show web01 | grep -q 'workload: *uniform'"
check "its log says whose lock it broke" grep -q "broke host-a's lock" "$dir/host-b.log"
check "the lock is host-b's" grep -q '^owner=host-b ' "$store/web01/web01-flat.vmdk.lck"
check "vm show says so" test "$(vm_field host-b web01 disk_lock)" = host-b
check "host-b's name stays while it holds a disk lock" \
	bash -c "'$ferryctl' -s '$dir/host-b.sock' host name other 2>&1 | grep -q 'name stays'"
check "a datastore with a disk in use stays" \
	bash -c "'$ferryctl' -s '$dir/host-b.sock' datastore del ds1 2>&1 | grep -q 'disks on ds1'"
check "destroying the VM lets the lock go" \
	bash -c "'$ferryctl' -s '$dir/host-b.sock' vm destroy web01 && ! test -e '$store/web01/web01-flat.vmdk.lck'"
# A configuration file is anyone's to write: each bad one is refused with the reason.
bad_vmx() {
	mkdir -p "$store/$1"
	printf '%b' "$2" >"$store/$1/$1.vmx"
	local out
	out=$("$ferryctl" -s "$dir/host-b.sock" vm register "$1" datastore ds1 2>&1)
	echo "$out"
	grep -q -- "$3" <<<"$out" && ! "$ferryctl" -s "$dir/host-b.sock" vm show "$1" >/dev/null 2>&1
}
check "a configuration naming another VM is refused" bad_vmx w3 'name = w4\nmemory_mb = 16\nmac = 02:00:00:00:09:03\nip = 10.0.9.3/24\nportgroup = pg\n' "names the VM 'w4'"
check "an unknown key is refused" bad_vmx w3 'name = w3\nmemsize = 16\n' "known key"
check "a key given twice is refused" bad_vmx w3 'name = w3\nname = w3\n' "once"
check "a bad MAC is refused by vm create's own check" bad_vmx w3 'name = w3\nmemory_mb = 16\nmac = 01:00:00:00:00:01\nip = 10.0.9.3/24\nportgroup = pg\n' "mac"
check "a memory size over the limit is refused" bad_vmx w3 'name = w3\nmemory_mb = 99999999\nmac = 02:00:00:00:09:03\nip = 10.0.9.3/24\nportgroup = pg\n' "mib"
check "a missing port group line is refused" bad_vmx w3 'name = w3\nmemory_mb = 16\nmac = 02:00:00:00:09:03\nip = 10.0.9.3/24\n' "lacks its portgroup"
check "a name that leaves the datastore is refused" \
	bash -c "'$ferryctl' -s '$dir/host-b.sock' vm register ../../etc datastore ds1 2>&1 | grep -q \"no '/'\""
check "bad datastores are refused with the reason" \
	bash -c "'$ferryctl' -s '$dir/host-b.sock' datastore add x relative/path 2>&1 | grep -q 'absolute' &&
		'$ferryctl' -s '$dir/host-b.sock' datastore add x /nonexistent 2>&1 | grep -q 'not a folder'"
check "a bad host name is refused" \
	bash -c "'$ferryctl' -s '$dir/host-b.sock' host name 'a/b' 2>&1 | grep -q 'letters'"
check "an unknown datastore is refused" \
	bash -c "'$ferryctl' -s '$dir/host-b.sock' vm create w2 mem 16 mac 02:00:00:00:09:02 ip 10.0.9.2/24 portgroup pg datastore nope 2>&1 | grep -q 'no datastore'"
tap_finish
