/* An emulated VM on a host: the VM model, its vnic on a port group (an in-process interface)
 * and its network services: ARP and ICMP echo, and a UDP counter whose value lives in the VM's
 * memory, so it moves with the VM. */
#ifndef FERRY_MIGRATE_GUEST_H
#define FERRY_MIGRATE_GUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "migrate/announce.h"
#include "migrate/vm.h"
#include "migrate/vm_synthetic.h"
#include "vswitch/iface.h"

#define GUEST_COUNTER_PORT 7777 /* UDP: each datagram adds one and gets the new count back */

struct guest {
	struct vm vm;
	struct iface vnic;
	struct vm_workload workload;
	uint64_t counter_page; /* the last page: the workload never writes it */
	struct announce announce;
	struct loop *loop;
};

struct guest_config {
	const char *name;
	uint64_t memory_mb;
	struct rte_ether_addr mac;
	uint32_t ip; /* network byte order */
	uint8_t prefix_len;
	struct vm_workload workload;
};

/* Creates a VM with its vnic on a port group, paused; its interface is down until it runs.
 * Returns 0 or a negative errno. */
int guest_create(struct guest *guest, struct vswitch_host *host,
                 struct vswitch_portgroup *portgroup, const struct guest_config *config,
                 struct pktpool_set *pools);

/* Frees the VM and its vnic. */
void guest_destroy(struct guest *guest);

/* Starts or stops the VM's vCPU; a paused VM's vnic drops what reaches it. */
void guest_resume(struct guest *guest);
void guest_pause(struct guest *guest);

/* Loads a vCPU state that came with a migration, and the workload it carries. Returns 0 or
 * -EINVAL if the backend refuses it. */
int guest_load_state(struct guest *guest, const void *buf, size_t len);

/* Loop poller: runs the workload. Returns the pages written when the VM runs flat out (so the
 * worker keeps going), 0 for a rate-limited one (so the worker may sleep between its steps). */
unsigned int guest_poll(void *guest);

/* The UDP counter's value, read from guest memory. */
uint64_t guest_counter(const struct guest *guest);

/* Parses "pattern[,rate=N|max][,ws=PAGES][,seed=N][,fill=PERCENT]" into a workload; -EINVAL if
 * malformed. */
int guest_parse_workload(const char *spec, struct vm_workload *workload);

#endif
