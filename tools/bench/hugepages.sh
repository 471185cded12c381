#!/bin/bash
# Sourced by the benchmarks: reserves at least $1 2 MiB hugepages and mounts hugetlbfs (without
# them DPDK runs about 4x slower here).
reserve_hugepages() {
	hugepages_before=${hugepages_before:-$(cat /proc/sys/vm/nr_hugepages)}
	if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt "$1" ]; then
		echo "$1" >/proc/sys/vm/nr_hugepages
	fi
	if ! grep -q "hugetlbfs" /proc/mounts; then
		mkdir -p /dev/hugepages
		mount -t hugetlbfs nodev /dev/hugepages
	fi
}

# Writes every free hugepage of the pool once. On a virtual machine (this project's development
# host is one) the hypervisor backs guest memory only when it is first written, and that first
# write costs an exit per page: about 3 Gbit/s here, against 60 for memory written before. A
# hugepage stays in the pool, and stays backed, once written. So a benchmark pays that once,
# here, and not inside the first migration it measures, as a bare-metal host never pays it.
warm_hugepages() {
	python3 - <<'PY'
import mmap
free = 0
for line in open("/proc/meminfo"):
    if line.startswith("HugePages_Free:"):
        free = int(line.split()[1])
size = free * (2 << 20)
if size:
    MAP_HUGETLB = 0x40000
    m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_HUGETLB)
    for offset in range(0, size, 2 << 20):
        m[offset] = 1
    m.close()
PY
}

# Gives the pool back to what it was before reserve_hugepages (a benchmark that reserved most of
# the machine's memory must not leave it so: a 16 GiB sparse VM's test admits by MemAvailable).
restore_hugepages() {
	[ -n "${hugepages_before:-}" ] && echo "$hugepages_before" >/proc/sys/vm/nr_hugepages
	return 0
}
