/* One host, as an ESXi host is one: ports, vswitches, vmks, VMs and migrations on one loop. */
#ifndef FERRY_HOST_HOST_H
#define FERRY_HOST_HOST_H

#include <limits.h>
#include <stdint.h>

struct rte_ring;

#include "host/vmkping.h"
#include "dataplane/loop.h"
#include "dataplane/pktpool.h"
#include "dataplane/port.h"
#include "vm/vm.h"
#include "migrate/migration.h"
#include "vswitch/iface.h"
#include "vswitch/vswitch.h"

#define HOST_MAX_VMKS       16
#define HOST_MAX_VMS        16
#define HOST_MAX_DATASTORES 8
#define HOST_NAME_LEN       64

/* A datastore: a folder every host of a cluster mounts (NFS in production), where VMs' disks
 * live, each locked by the host that runs it. */
struct host_datastore {
	char name[HOST_NAME_LEN];
	char path[PATH_MAX];
	uint64_t lease_ns; /* a disk lock whose heartbeat stopped this long may be broken */
};

struct host_config {
	uint64_t max_sleep_ns; /* longest idle sleep of the worker; 0 = default (1 ms) */
	uint16_t mbuf_data_room;
	uint32_t min_mbufs;
	unsigned int nb_workers; /* forwarding workers, the main lcore's included; 0 = one */
};

struct host {
	struct loop loop;
	struct pktpool_set pools;
	struct port_table ports;
	struct vswitch_table vswitches;
	struct iface *vmks[HOST_MAX_VMKS];
	unsigned int nb_vmks;
	struct vmkping_table pings;
	struct vm *vms[HOST_MAX_VMS];
	unsigned int nb_vms;
	struct migration_engine migrations;
	struct capture *capture;  /* the running or last capture, NULL before the first */
	char name[HOST_NAME_LEN]; /* as the cluster knows it; the disk locks carry it */
	struct host_datastore datastores[HOST_MAX_DATASTORES];
	unsigned int nb_datastores;
	uint64_t start_ns;
};

/* Builds an empty host (no ports; vSwitch0 and nothing on it). EAL must be up. */
int host_init(struct host *host, const struct host_config *config);

/* Closes every port and frees the pools. */
void host_fini(struct host *host);

/* The VM of that name, NULL if none. */
struct vm *host_vm_find(const struct host *host, const char *name);

/* The VM with that MAC on its vnic, NULL if none. */
struct vm *host_vm_find_mac(const struct host *host, const struct rte_ether_addr *mac);

/* Puts a VM (calloc'ed, created) on the host, which frees it from then on. -ENOSPC when the host
 * runs HOST_MAX_VMS. */
int host_vm_add(struct host *host, struct vm *vm);

/* Takes a VM off the host and frees it. */
void host_vm_remove(struct host *host, struct vm *vm);

/* Ends the host's capture, if any: no port copies frames any more, no worker is inside it, its
 * file is closed; its counters stay for show capture. */
void host_capture_end(struct host *host);

/* The datastore of that name, NULL if none. */
struct host_datastore *host_datastore_find(struct host *host, const char *name);

/* A VM's disk on a datastore, as vSphere lays it out: <datastore>/<vm>/<vm>-flat.vmdk. */
int host_disk_path(const struct host_datastore *ds, const char *vm_name, char *path, size_t size);

/* The vmk of that name, NULL if none. */
struct iface *host_vmk_find(const struct host *host, const char *name);

/* The vmk whose subnet holds ip, as ESXi picks the interface for a destination; NULL if none. */
struct iface *host_vmk_on_subnet(const struct host *host, uint32_t ip);

/* Puts a vmk (calloc'ed, created) on the host, which answers its pings and frees it from then
 * on. -ENOSPC when the host has HOST_MAX_VMKS. */
int host_vmk_add(struct host *host, struct iface *vmk);

/* Takes a vmk off the host: its pings end, it stops listening for migrations, and it is freed. */
void host_vmk_remove(struct host *host, struct iface *vmk);

/* Adds an uplink made of two rings (the ring PMD) to vSwitch0: two daemons in one process, their
 * uplinks on crossed rings, are two hosts on one wire. Returns 0 or a negative errno. */
int host_uplink_add_rings(struct host *host, const char *name, struct rte_ring *rx,
                          struct rte_ring *tx, uint16_t mtu);

/* Memory a VM of that backing can have here, in MiB: MemAvailable, or the hugetlb pool's free
 * pages. */
uint32_t host_available_mb(enum machine_backing backing);

/* Reads a pre-shared migration key file (MIGRATION_KEY_MIN to MIGRATION_KEY_MAX bytes, a trailing
 * newline dropped). The file must be a regular file, not a symbolic link, owned by root (or
 * ferryd's user) and closed to group and others, as ssh wants its keys. "inline:<key>" is the
 * key itself, as a manager (ferry-center) provisions it over TLS. Returns the key's length, or
 * a negative errno with the reason in why. */
#define HOST_KEY_INLINE "inline:"
int host_key_load(const char *path, uint8_t *key, uint16_t size, char *why, size_t why_size);

#endif
