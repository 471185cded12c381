/* In-process IPv4 interfaces on a port group: a dataplane/netif plugged into the vswitch through
 * a pair of ring ports. VMkernel ports (role iface) and the emulated VMs' vnics (role vnic) are
 * both made of one. */
#ifndef FERRY_VSWITCH_IFACE_H
#define FERRY_VSWITCH_IFACE_H

#include "dataplane/loop.h"
#include "dataplane/netif.h"
#include "dataplane/port.h"
#include "vswitch/vswitch.h"

struct pktpool_set;
struct rte_ring;
struct vswitch_table;
struct vswitch_port;
struct vswitch_portgroup;

#define IFACE_NAME_MAX  16
#define IFACE_RING_SIZE 1024
#define IFACE_TICK_NS   (100ull * 1000 * 1000)

/* Takes frames the switch delivered to an interface instead of its netif (the mbufs). */
typedef void iface_divert_fn(void *ctx, struct rte_mbuf **pkts, uint16_t n);

struct iface {
	char name[IFACE_NAME_MAX];
	struct vswitch_table *vswitches;
	struct loop *loop;
	struct rte_ring *to_switch; /* frames the host sends */
	struct rte_ring *to_host;   /* frames the switch delivers */
	struct port switch_side;    /* on the vswitch, in the interface's role */
	struct port host_side;      /* polled for the netif */
	struct vswitch_port *vport;
	struct netif netif;
	struct loop_timer tick;
	iface_divert_fn *divert; /* while set, received frames go there, not to the netif */
	void *divert_ctx;
};

/* A zeroed interface to iface_create, aligned for the ports it holds (port_holder_alloc); free()
 * frees it. NULL if out of memory. */
struct iface *iface_alloc(void);

/* Creates an interface on a port group in a role (iface or vnic): its ring ports, its netif (which
 * announces itself with a gratuitous ARP), its poller and timers. A zero MAC in config picks a
 * random local one. Returns 0 or a negative errno (nothing is left behind). */
int iface_create(struct iface *iface, struct vswitch_table *vswitches,
                 struct vswitch_portgroup *portgroup, enum vswitch_role role,
                 const struct netif_config *config, struct pktpool_set *pools);

/* Detaches and frees everything iface_create made. */
void iface_destroy(struct iface *iface);

/* Sends what the switch delivers from now on (and what waits in the ring) to fn instead of the
 * netif: a migration holds a VM's frames while it moves. NULL gives them back to the netif. */
void iface_divert(struct iface *iface, iface_divert_fn *fn, void *ctx);

/* Loop poller: hands the frames the switch delivered to the netif (or to the divert). */
unsigned int iface_poll(void *iface);

#endif
