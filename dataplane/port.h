/* Ports: any DPDK ethdev opened from devargs, with burst rx/tx and per-port counters. */
#ifndef FERRY_DATAPLANE_PORT_H
#define FERRY_DATAPLANE_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>

struct rte_ring;

struct impair;
struct impair_config;
struct pktpool_set;

#define PORT_NAME_MAX    32
#define PORT_DEVARGS_MAX 256
#define PORT_MAX         64
#define PORT_BURST       32

#define PORT_DEFAULT_RX_DESC 512
#define PORT_DEFAULT_TX_DESC 512
#define PORT_DEFAULT_MTU     1500

/* The reasons a port itself drops a frame, in one table: the enum, the counter names, the help
 * text and the side all come from here (X(enum suffix, name, description, side)). The layer a
 * port is attached to counts its own reasons in upper_drops and names them (the vswitch's). */
#define PORT_DROP_REASONS(X)                                                                       \
	X(IMPAIR_LOSS, "impair_loss", "lost by link emulation", TX)                                \
	X(IMPAIR_QUEUE_FULL, "impair_queue_full", "link emulation queue full", TX)                 \
	X(TX_FULL, "tx_full", "transmit queue full", TX)

#define PORT_UPPER_DROPS 16 /* drop counters the layer above a port may use */

enum port_drop_side { PORT_DROP_SIDE_RX, PORT_DROP_SIDE_TX };

enum port_drop_reason {
#define PORT_DROP_ENUM(e, name, text, side) PORT_DROP_##e,
	PORT_DROP_REASONS(PORT_DROP_ENUM)
#undef PORT_DROP_ENUM
	        PORT_DROP_MAX
};

struct port_counters {
	uint64_t rx_forwarded; /* received frames that left by at least one port */
	uint64_t rx_packets;
	uint64_t rx_bytes;
	uint64_t tx_packets;
	uint64_t tx_bytes;
	uint64_t upper_drops[PORT_UPPER_DROPS]; /* counted and named by the layer above */
	uint64_t drops[PORT_DROP_MAX];
};

struct port_config {
	uint16_t mtu; /* 0 = PORT_DEFAULT_MTU */
	uint16_t nb_rx_desc;
	uint16_t nb_tx_desc;
};

struct port {
	char name[PORT_NAME_MAX];
	char devargs[PORT_DEVARGS_MAX];
	uint16_t port_id;
	uint16_t mtu;
	uint16_t nb_rx_desc;
	uint16_t nb_tx_desc;
	int socket;
	bool hotplugged; /* probed by us, so removed by us */
	uint64_t owner_id;
	struct rte_mempool *pool;
	struct pktpool_set *pools;
	uint32_t reserved_mbufs;
	struct port_counters counters;
	struct impair *impair; /* link emulation on transmit; NULL (and free) when off */
	uint16_t nb_tx_pending;
	struct rte_mbuf *tx_pending[PORT_BURST];
};

/* What `show ports` reports of a port. */
struct port_info {
	char driver[32];
	char mac[RTE_ETHER_ADDR_FMT_SIZE];
	bool link_up;
	uint32_t link_speed_mbps;
	bool full_duplex;
	int socket;
};

/* The hardware's (or PMD's) own counters, beside ours. */
struct port_hw_stats {
	uint64_t ipackets, opackets, ibytes, obytes;
	uint64_t imissed, ierrors, oerrors, rx_nombuf;
};

/* Counter names, indexed by enum port_drop_reason. */
extern const char *const port_drop_names[PORT_DROP_MAX];
/* Counter descriptions, indexed by enum port_drop_reason. */
extern const char *const port_drop_descriptions[PORT_DROP_MAX];
/* Which side counts each reason, indexed by enum port_drop_reason. */
extern const enum port_drop_side port_drop_sides[PORT_DROP_MAX];

/* Fills a configuration with the defaults. */
void port_config_default(struct port_config *config);

/* Probes the device named by devargs (unless EAL already did), configures one rx and one tx
 * queue, takes buffers from pools and starts it. Returns 0 or a negative errno, and logs why. */
int port_open(struct port *port, const char *name, const char *devargs,
              const struct port_config *config, struct pktpool_set *pools);

/* Opens an in-process port: an ethdev whose rx queue reads rx and whose tx queue writes tx (the
 * ring PMD). Two such ports on crossed rings make a wire inside the process. */
int port_open_rings(struct port *port, const char *name, struct rte_ring *rx, struct rte_ring *tx,
                    const struct port_config *config, struct pktpool_set *pools);

/* Sends a burst now; frames the queue cannot take are freed and counted. Returns how many
 * were sent. */
uint16_t port_tx_burst(struct port *port, struct rte_mbuf **pkts, uint16_t n);

/* Turns link emulation on (or changes it) for the port's transmit side; a null configuration
 * turns it off. Returns 0 or -ENOMEM. */
int port_set_impair(struct port *port, const struct impair_config *config);

/* Sends the emulated link's frames whose time has come; returns how many, plus one if frames
 * still wait (so the loop keeps polling while a delayed frame is in flight). */
unsigned int port_impair_poll(struct port *port);

/* Stops and closes the port, frees queued frames and removes the device if we probed it. */
void port_close(struct port *port);

/* Changes the MTU of a running port. */
int port_set_mtu(struct port *port, uint16_t mtu);

/* Reads driver, MAC and link state without waiting for the link. */
void port_get_info(const struct port *port, struct port_info *info);

/* Reads the PMD's counters; returns 0 or a negative errno. */
int port_get_hw_stats(const struct port *port, struct port_hw_stats *stats);

/* Zeroes our counters and the PMD's. */
void port_clear_stats(struct port *port);

/* Receives a burst and counts it. */
static inline uint16_t port_rx_burst(struct port *port, struct rte_mbuf **pkts, uint16_t n)
{
	uint16_t nb = rte_eth_rx_burst(port->port_id, 0, pkts, n);

	port->counters.rx_packets += nb;
	for (uint16_t i = 0; i < nb; i++)
		port->counters.rx_bytes += rte_pktmbuf_pkt_len(pkts[i]);
	return nb;
}

/* Sends what is queued for the port; frames the queue cannot take are freed and counted. Returns
 * how many were sent. */
uint16_t port_tx_flush(struct port *port);

/* Queues one frame for transmit, sending a burst when the queue is full. Takes the reference. */
static inline void port_tx_enqueue(struct port *port, struct rte_mbuf *pkt)
{
	port->tx_pending[port->nb_tx_pending++] = pkt;
	if (port->nb_tx_pending == PORT_BURST)
		port_tx_flush(port);
}

/* Counts one dropped frame for a reason. */
static inline void port_count_drop(struct port *port, enum port_drop_reason reason)
{
	port->counters.drops[reason]++;
}

/* The set of ports of one ferryd, by name. */
struct port_table {
	struct port *ports[PORT_MAX];
	unsigned int nb_ports;
};

/* Initialises an empty table. */
void port_table_init(struct port_table *table);

/* Opens a port and adds it; -EEXIST if the name or device is taken, -ENOSPC when full, -ENXIO
 * when no DPDK bus or driver knows the device, -ENOMEM when its buffers do not fit DPDK's
 * memory, or the driver's own cause. */
int port_table_add(struct port_table *table, const char *name, const char *devargs,
                   const struct port_config *config, struct pktpool_set *pools,
                   struct port **port_out);

/* Opens a port of two rings (port_open_rings) and adds it, with the same checks. */
int port_table_add_rings(struct port_table *table, const char *name, struct rte_ring *rx,
                         struct rte_ring *tx, const struct port_config *config,
                         struct pktpool_set *pools, struct port **port_out);

/* Looks a port up by name; NULL if absent. */
struct port *port_table_find(const struct port_table *table, const char *name);

/* Closes a port and removes it from the table. */
void port_table_del(struct port_table *table, struct port *port);

/* Closes every port. */
void port_table_fini(struct port_table *table);

#endif
