/* VMkernel ports: a host IPv4 interface (dataplane/netif) plugged into a port group through a
 * pair of in-process ring ports, as ESXi's vmk interfaces sit on a vSwitch. */
#ifndef FERRY_VSWITCH_VMK_H
#define FERRY_VSWITCH_VMK_H

#include "dataplane/loop.h"
#include "dataplane/netif.h"
#include "dataplane/port.h"

struct pktpool_set;
struct rte_ring;
struct vswitch_host;
struct vswitch_port;
struct vswitch_portgroup;

#define VMK_NAME_MAX  16
#define VMK_RING_SIZE 1024
#define VMK_TICK_NS   (100ull * 1000 * 1000)

struct vmk {
	char name[VMK_NAME_MAX];
	struct vswitch_host *host;
	struct loop *loop;
	struct rte_ring *to_switch; /* frames the host sends */
	struct rte_ring *to_host;   /* frames the switch delivers */
	struct port switch_side;    /* on the vswitch, role vmk */
	struct port host_side;      /* polled for the netif */
	struct vswitch_port *vport;
	struct netif netif;
	struct loop_timer tick;
};

/* Creates a VMkernel interface on a port group: its ring ports, its netif (which announces itself
 * with a gratuitous ARP), its poller and timers. A zero MAC in config picks a random local one.
 * Returns 0 or a negative errno (nothing is left behind). */
int vmk_create(struct vmk *vmk, struct vswitch_host *host, struct vswitch_portgroup *portgroup,
               const struct netif_config *config, struct pktpool_set *pools);

/* Detaches and frees everything vmk_create made. */
void vmk_destroy(struct vmk *vmk);

/* Loop poller: hands the frames the switch delivered to the netif. */
unsigned int vmk_poll(void *vmk);

#endif
