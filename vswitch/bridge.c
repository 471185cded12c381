/* The forwarding core of a virtual switch: moves frames between the ports attached to it. */
#include "bridge.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_mbuf.h>

#include "dataplane/port.h"

void bridge_init(struct bridge *bridge, const char *name)
{
	memset(bridge, 0, sizeof(*bridge));
	snprintf(bridge->name, sizeof(bridge->name), "%s", name);
}

int bridge_port_attach(struct bridge *bridge, struct port *port)
{
	for (unsigned int i = 0; i < bridge->nb_ports; i++)
		if (bridge->ports[i] == port)
			return -EEXIST;
	if (bridge->nb_ports == BRIDGE_MAX_PORTS)
		return -ENOSPC;
	bridge->ports[bridge->nb_ports++] = port;
	return 0;
}

int bridge_port_detach(struct bridge *bridge, struct port *port)
{
	for (unsigned int i = 0; i < bridge->nb_ports; i++) {
		if (bridge->ports[i] != port)
			continue;
		port_tx_flush(port);
		memmove(&bridge->ports[i], &bridge->ports[i + 1],
		        (bridge->nb_ports - i - 1) * sizeof(bridge->ports[0]));
		bridge->nb_ports--;
		return 0;
	}
	return -ENOENT;
}

/* Sends a frame out of every port but the one it came in on. The copies share one buffer: each
 * output takes a reference, so nothing is copied. */
static void bridge_flood(struct bridge *bridge, unsigned int in, struct rte_mbuf *pkt)
{
	unsigned int nb_out = bridge->nb_ports - 1;

	if (nb_out == 0) {
		port_count_drop(bridge->ports[in], PORT_DROP_NO_DESTINATION);
		rte_pktmbuf_free(pkt);
		return;
	}
	if (nb_out > 1)
		rte_mbuf_refcnt_update(pkt, (int16_t)(nb_out - 1));
	for (unsigned int i = 0; i < bridge->nb_ports; i++)
		if (i != in)
			port_tx_enqueue(bridge->ports[i], pkt);
}

unsigned int bridge_poll(void *arg)
{
	struct bridge *bridge = arg;
	struct rte_mbuf *pkts[PORT_BURST];
	unsigned int total = 0;

	for (unsigned int in = 0; in < bridge->nb_ports; in++) {
		uint16_t nb = port_rx_burst(bridge->ports[in], pkts, PORT_BURST);
		for (uint16_t i = 0; i < nb; i++)
			bridge_flood(bridge, in, pkts[i]);
		total += nb;
	}
	if (total > 0)
		for (unsigned int i = 0; i < bridge->nb_ports; i++)
			port_tx_flush(bridge->ports[i]);
	return total;
}
