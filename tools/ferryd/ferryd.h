/* One ferryd: the dataplane state the worker owns, and the command table that drives it. */
#ifndef FERRY_TOOLS_FERRYD_H
#define FERRY_TOOLS_FERRYD_H

#include <stdint.h>

struct rte_ring;

#include "cli.h"
#include "vmkping.h"
#include "dataplane/loop.h"
#include "dataplane/pktpool.h"
#include "dataplane/port.h"
#include "migrate/guest.h"
#include "migrate/migration.h"
#include "vswitch/iface.h"
#include "vswitch/vswitch.h"

#define FERRYD_MAX_VMKS 16
#define FERRYD_MAX_VMS  16

struct ferryd_config {
	uint64_t max_sleep_ns; /* longest idle sleep of the worker; 0 = default (1 ms) */
	uint16_t mbuf_data_room;
	uint32_t min_mbufs;
};

struct ferryd {
	struct loop loop;
	struct pktpool_set pools;
	struct port_table ports;
	struct vswitch_host vswitches;
	struct iface *vmks[FERRYD_MAX_VMKS];
	unsigned int nb_vmks;
	struct vmkping_table pings;
	struct guest *guests[FERRYD_MAX_VMS];
	unsigned int nb_guests;
	struct migration_engine migrations;
	struct cli_table cli;
	uint64_t start_ns;
};

/* Builds an empty daemon (no ports) and registers every command. EAL must be up. */
int ferryd_init(struct ferryd *ferryd, const struct ferryd_config *config);

/* Closes every port and frees the pools. */
void ferryd_fini(struct ferryd *ferryd);

/* The VM of that name, NULL if none. */
struct guest *ferryd_guest_find(const struct ferryd *ferryd, const char *name);

/* Takes a VM off the host and frees it. */
void ferryd_guest_remove(struct ferryd *ferryd, struct guest *guest);

/* The vmk of that name, NULL if none. */
struct iface *ferryd_vmk_find(const struct ferryd *ferryd, const char *name);

/* Adds an uplink made of two rings (the ring PMD) to vSwitch0: two daemons in one process, their
 * uplinks on crossed rings, are two hosts on one wire. Returns 0 or a negative errno. */
int ferryd_uplink_add_rings(struct ferryd *ferryd, const char *name, struct rte_ring *rx,
                            struct rte_ring *tx, uint16_t mtu);

/* Runs a startup file: one command per line, # comments. Stops at the first failing line and
 * logs "file:line: reason". Returns 0 or that line's negative errno. */
int ferryd_run_file(struct ferryd *ferryd, const char *path);

#endif
