/* In-process IPv4 interfaces on a port group: a dataplane/netif plugged into the vswitch through
 * a pair of ring ports. VMkernel ports (role iface) and the emulated VMs' vnics (role vnic) are
 * both made of one. */
#include "iface.h"

#include <errno.h>
#include <stdalign.h>
#include <stdio.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_ether.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_ring.h>

#include "dataplane/pktpool.h"
#include "vswitch/vswitch.h"

static RTE_LOG_REGISTER(iface_logtype, ferry.iface, INFO);

#define IFACE_LOG(level, fmt, ...)                                                                 \
	rte_log(RTE_LOG_##level, iface_logtype, "iface: " fmt "\n", ##__VA_ARGS__)

/* The netif's transmit: into the ring toward the switch. */
static void iface_tx(void *arg, struct rte_mbuf **pkts, uint16_t n)
{
	struct iface *iface = arg;
	port_tx_burst(&iface->host_side, pkts, n);
}

unsigned int iface_poll(void *arg)
{
	struct iface *iface = arg;
	struct rte_mbuf *pkts[PORT_BURST];
	uint16_t n = port_rx_burst(&iface->host_side, pkts, PORT_BURST);

	if (n > 0 && iface->divert != NULL)
		iface->divert(iface->divert_ctx, pkts, n);
	else if (n > 0)
		netif_input(&iface->netif, pkts, n, loop_now_ns(iface->loop));
	return n;
}

void iface_divert(struct iface *iface, iface_divert_fn *fn, void *ctx)
{
	iface->divert = fn;
	iface->divert_ctx = ctx;
}

static void iface_tick(void *arg)
{
	struct iface *iface = arg;
	netif_tick(&iface->netif, loop_now_ns(iface->loop));
}

static struct rte_ring *iface_ring(const struct iface *iface, const char *what)
{
	char name[RTE_RING_NAMESIZE];

	/* Ring names are process-wide: the address keeps two hosts in one process apart. */
	snprintf(name, sizeof(name), "%s%lx", what, (unsigned long)(uintptr_t)iface & 0xffffffffff);
	return rte_ring_create(name, IFACE_RING_SIZE, (int)rte_socket_id(),
	                       RING_F_SP_ENQ | RING_F_SC_DEQ);
}

_Static_assert(alignof(struct iface) <= alignof(struct port),
               "port_holder_alloc aligns as a port: an interface must need no more");

struct iface *iface_alloc(void)
{
	return port_holder_alloc(sizeof(struct iface));
}

int iface_create(struct iface *iface, struct vswitch_table *vswitches,
                 struct vswitch_portgroup *portgroup, enum vswitch_role role,
                 const struct netif_config *config, struct pktpool_set *pools)
{
	struct port_config port_config;
	struct netif_config netif_config = *config;
	char side[PORT_NAME_MAX];
	int ret;

	memset(iface, 0, sizeof(*iface));
	snprintf(iface->name, sizeof(iface->name), "%s", config->name);
	iface->vswitches = vswitches;
	iface->loop = vswitches->loop;
	if (rte_is_zero_ether_addr(&netif_config.mac))
		rte_eth_random_addr(netif_config.mac.addr_bytes);

	iface->to_switch = iface_ring(iface, "ifs");
	iface->to_host = iface_ring(iface, "ifh");
	if (iface->to_switch == NULL || iface->to_host == NULL) {
		ret = -rte_errno;
		IFACE_LOG(ERR, "%s: cannot create rings: %s", iface->name, rte_strerror(rte_errno));
		goto fail_rings;
	}
	port_config_default(&port_config);
	port_config.mtu = config->mtu != 0 ? config->mtu : NETIF_DEFAULT_MTU;
	port_config.nb_rx_desc = port_config.nb_tx_desc = 64;
	port_config.nb_workers = (uint16_t)vswitches->nb_workers; /* the side workers send to */
	snprintf(side, sizeof(side), "%s", iface->name);
	ret = port_open_rings(&iface->switch_side, side, iface->to_switch, iface->to_host,
	                      &port_config, pools);
	if (ret < 0)
		goto fail_rings;
	port_config.nb_workers = 1; /* the host side is worker 0's alone */
	snprintf(side, sizeof(side), "%s-host", iface->name);
	ret = port_open_rings(&iface->host_side, side, iface->to_host, iface->to_switch,
	                      &port_config, pools);
	if (ret < 0)
		goto fail_switch_side;
	ret = vswitch_port_attach(portgroup->vswitch, &iface->switch_side, role, portgroup,
	                          &iface->vport);
	if (ret < 0)
		goto fail_host_side;
	ret = loop_poller_add(iface->loop, iface->name, LOOP_POLLER_DATAPLANE, iface_poll, iface);
	if (ret < 0)
		goto fail_attach;
	loop_timer_init(&iface->tick, iface_tick, iface);
	ret = loop_timer_arm(iface->loop, &iface->tick, IFACE_TICK_NS, IFACE_TICK_NS);
	if (ret < 0)
		goto fail_poller;
	ret = netif_init(&iface->netif, &netif_config, iface->host_side.pool, iface_tx, iface);
	if (ret < 0)
		goto fail_timer;
	return 0;

fail_timer:
	loop_timer_cancel(iface->loop, &iface->tick);
fail_poller:
	loop_poller_del(iface->loop, iface_poll, iface);
fail_attach:
	vswitch_port_detach(iface->vport);
fail_host_side:
	port_close(&iface->host_side);
fail_switch_side:
	port_close(&iface->switch_side);
fail_rings:
	rte_ring_free(iface->to_switch);
	rte_ring_free(iface->to_host);
	return ret;
}

void iface_destroy(struct iface *iface)
{
	netif_fini(&iface->netif);
	loop_timer_cancel(iface->loop, &iface->tick);
	loop_poller_del(iface->loop, iface_poll, iface);
	vswitch_port_detach(iface->vport);
	port_close(&iface->host_side);
	port_close(&iface->switch_side);
	/* Frames still in the rings go back to their pool. */
	struct rte_mbuf *m;
	while (rte_ring_dequeue(iface->to_switch, (void **)&m) == 0)
		rte_pktmbuf_free(m);
	while (rte_ring_dequeue(iface->to_host, (void **)&m) == 0)
		rte_pktmbuf_free(m);
	rte_ring_free(iface->to_switch);
	rte_ring_free(iface->to_host);
}
