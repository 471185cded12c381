/* The forwarding core of a virtual switch: moves frames between the ports attached to it. */
#ifndef FERRY_VSWITCH_BRIDGE_H
#define FERRY_VSWITCH_BRIDGE_H

#include <stdint.h>

struct port;

#define BRIDGE_NAME_MAX  32
#define BRIDGE_MAX_PORTS 64

/* For now a bridge floods every frame to every other attached port, as a hub does; MAC
 * learning, port groups and VLANs build on this. */
struct bridge {
	char name[BRIDGE_NAME_MAX];
	struct port *ports[BRIDGE_MAX_PORTS];
	unsigned int nb_ports;
};

/* Initialises an empty bridge. */
void bridge_init(struct bridge *bridge, const char *name);

/* Attaches a port: frames it receives are switched, and it gets flooded frames. -EEXIST if
 * attached already, -ENOSPC when full. */
int bridge_port_attach(struct bridge *bridge, struct port *port);

/* Detaches a port (before it is closed). -ENOENT if it is not attached. */
int bridge_port_detach(struct bridge *bridge, struct port *port);

/* Loop poller: receives a burst from every port, switches it and flushes the transmit queues.
 * Returns the number of frames received. */
unsigned int bridge_poll(void *bridge);

#endif
