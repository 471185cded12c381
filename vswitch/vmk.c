/* VMkernel ports: a host IPv4 interface (dataplane/netif) plugged into a port group through a
 * pair of in-process ring ports, as ESXi's vmk interfaces sit on a vSwitch. */
#include "vmk.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_ether.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_ring.h>

#include "dataplane/pktpool.h"
#include "vswitch/vswitch.h"

static RTE_LOG_REGISTER(vmk_logtype, ferry.vmk, INFO);

#define VMK_LOG(level, fmt, ...)                                                                   \
	rte_log(RTE_LOG_##level, vmk_logtype, "vmk: " fmt "\n", ##__VA_ARGS__)

/* The netif's transmit: into the ring toward the switch. */
static void vmk_tx(void *arg, struct rte_mbuf **pkts, uint16_t n)
{
	struct vmk *vmk = arg;
	port_tx_burst(&vmk->host_side, pkts, n);
}

unsigned int vmk_poll(void *arg)
{
	struct vmk *vmk = arg;
	struct rte_mbuf *pkts[PORT_BURST];
	uint16_t n = port_rx_burst(&vmk->host_side, pkts, PORT_BURST);

	if (n > 0)
		netif_input(&vmk->netif, pkts, n, loop_now_ns(vmk->loop));
	return n;
}

static void vmk_tick(void *arg)
{
	struct vmk *vmk = arg;
	netif_tick(&vmk->netif, loop_now_ns(vmk->loop));
}

static struct rte_ring *vmk_ring(const struct vmk *vmk, const char *what)
{
	char name[RTE_RING_NAMESIZE];

	/* Ring names are process-wide: the address keeps two hosts in one process apart. */
	snprintf(name, sizeof(name), "%s%lx", what, (unsigned long)(uintptr_t)vmk & 0xffffffffff);
	return rte_ring_create(name, VMK_RING_SIZE, (int)rte_socket_id(),
	                       RING_F_SP_ENQ | RING_F_SC_DEQ);
}

int vmk_create(struct vmk *vmk, struct vswitch_host *host, struct vswitch_portgroup *portgroup,
               const struct netif_config *config, struct pktpool_set *pools)
{
	struct port_config port_config;
	struct netif_config netif_config = *config;
	char side[PORT_NAME_MAX];
	int ret;

	memset(vmk, 0, sizeof(*vmk));
	snprintf(vmk->name, sizeof(vmk->name), "%s", config->name);
	vmk->host = host;
	vmk->loop = host->loop;
	if (rte_is_zero_ether_addr(&netif_config.mac))
		rte_eth_random_addr(netif_config.mac.addr_bytes);

	vmk->to_switch = vmk_ring(vmk, "vmks");
	vmk->to_host = vmk_ring(vmk, "vmkh");
	if (vmk->to_switch == NULL || vmk->to_host == NULL) {
		ret = -rte_errno;
		VMK_LOG(ERR, "%s: cannot create rings: %s", vmk->name, rte_strerror(rte_errno));
		goto fail_rings;
	}
	port_config_default(&port_config);
	port_config.mtu = config->mtu != 0 ? config->mtu : NETIF_DEFAULT_MTU;
	port_config.nb_rx_desc = port_config.nb_tx_desc = 64;
	snprintf(side, sizeof(side), "%s", vmk->name);
	ret = port_open_rings(&vmk->switch_side, side, vmk->to_switch, vmk->to_host, &port_config,
	                      pools);
	if (ret < 0)
		goto fail_rings;
	snprintf(side, sizeof(side), "%s-host", vmk->name);
	ret = port_open_rings(&vmk->host_side, side, vmk->to_host, vmk->to_switch, &port_config,
	                      pools);
	if (ret < 0)
		goto fail_switch_side;
	ret = vswitch_port_attach(portgroup->vswitch, &vmk->switch_side, VSWITCH_ROLE_VMK,
	                          portgroup, &vmk->vport);
	if (ret < 0)
		goto fail_host_side;
	ret = loop_poller_add(vmk->loop, vmk->name, LOOP_POLLER_DATAPLANE, vmk_poll, vmk);
	if (ret < 0)
		goto fail_attach;
	loop_timer_init(&vmk->tick, vmk_tick, vmk);
	ret = loop_timer_arm(vmk->loop, &vmk->tick, VMK_TICK_NS, VMK_TICK_NS);
	if (ret < 0)
		goto fail_poller;
	ret = netif_init(&vmk->netif, &netif_config, vmk->host_side.pool, vmk_tx, vmk,
	                 loop_now_ns(vmk->loop));
	if (ret < 0)
		goto fail_timer;
	return 0;

fail_timer:
	loop_timer_cancel(vmk->loop, &vmk->tick);
fail_poller:
	loop_poller_del(vmk->loop, vmk_poll, vmk);
fail_attach:
	vswitch_port_detach(vmk->vport);
fail_host_side:
	port_close(&vmk->host_side);
fail_switch_side:
	port_close(&vmk->switch_side);
fail_rings:
	rte_ring_free(vmk->to_switch);
	rte_ring_free(vmk->to_host);
	return ret;
}

void vmk_destroy(struct vmk *vmk)
{
	netif_fini(&vmk->netif);
	loop_timer_cancel(vmk->loop, &vmk->tick);
	loop_poller_del(vmk->loop, vmk_poll, vmk);
	vswitch_port_detach(vmk->vport);
	port_close(&vmk->host_side);
	port_close(&vmk->switch_side);
	/* Frames still in the rings go back to their pool. */
	struct rte_mbuf *m;
	while (rte_ring_dequeue(vmk->to_switch, (void **)&m) == 0)
		rte_pktmbuf_free(m);
	while (rte_ring_dequeue(vmk->to_host, (void **)&m) == 0)
		rte_pktmbuf_free(m);
	rte_ring_free(vmk->to_switch);
	rte_ring_free(vmk->to_host);
}
