#!/bin/bash
# Sourced by the benchmarks: reserves at least $1 2 MiB hugepages and mounts hugetlbfs (without
# them DPDK runs about 4x slower here).
reserve_hugepages() {
	if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt "$1" ]; then
		echo "$1" >/proc/sys/vm/nr_hugepages
	fi
	if ! grep -q "hugetlbfs" /proc/mounts; then
		mkdir -p /dev/hugepages
		mount -t hugetlbfs nodev /dev/hugepages
	fi
}
