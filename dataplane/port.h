/* Ports: any DPDK ethdev opened from devargs, with burst rx/tx and per-port counters. */
#ifndef FERRY_DATAPLANE_PORT_H
#define FERRY_DATAPLANE_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_spinlock.h>

#include "capture.h"

struct rte_ring;

struct impair;
struct impair_config;
struct pktpool_set;

#define PORT_NAME_MAX    32
#define PORT_DEVARGS_MAX 256
#define PORT_MAX         64
#define PORT_BURST       32
#define PORT_MAX_WORKERS 8 /* forwarding workers (lcores) a port can be set up for */

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
	uint16_t nb_workers; /* 0 or 1: one; more asks for a queue pair per worker */
};

/* What one worker owns of a port, on cache lines of its own: its counters and its transmit
 * buffer. Workers never write each other's. */
struct port_worker {
	struct port_counters counters;
	uint16_t tx_queue; /* the PMD queue this worker sends on */
	uint16_t nb_tx_pending;
	struct rte_mbuf *tx_pending[PORT_BURST];
} __rte_cache_aligned;

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
	uint16_t nb_workers;   /* the workers it was set up for */
	uint16_t nb_rx_queues; /* one per worker where the PMD has them, else fewer */
	uint16_t nb_tx_queues;
	/* Fewer tx queues than workers (or link emulation, whose queue is one): transmitting
	 * takes tx_lock, once per burst. */
	bool tx_locked;
	bool rx_interrupts; /* its rx queues can wake a sleeping worker (port_rx_interrupt_ctl) */
	bool in_process;    /* a ring port: only this process's own threads feed it */
	/* Jumbo frames: a PMD that scatters takes them into chains of standard buffers (no 9 KB
	 * buffers to fill with 64-byte frames); what goes out to a port that wants one segment
	 * (a VM's or vmk's ring port, a NIC without multi-segment transmit) is made whole first. */
	bool rx_scatter;
	bool tx_needs_linear;
	struct impair *impair; /* link emulation on transmit; NULL (and free) when off */
	/* The capture taking this port's frames, NULL when none (read once a burst); the port's
	 * interface number in its file. */
	struct capture *capture;
	uint8_t capture_index;
	/* Written by every burst that takes it: on a line of its own, or the fields above, which
	 * every worker reads (worker 0 polls each port's link emulation), would move with it. */
	rte_spinlock_t tx_lock __rte_cache_aligned;
	struct port_worker workers[PORT_MAX_WORKERS];
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

/* Zeroed memory for a port or anything that holds ports inline (an interface, a VM), aligned as
 * a port's per-worker parts need: calloc's 16 bytes would let two workers' parts share a cache
 * line that then moves between their cores every burst. free() frees it; NULL if out of memory. */
void *port_holder_alloc(size_t size);

/* Probes the device named by devargs (unless EAL already did), configures an rx and a tx queue
 * per worker (as many as the PMD has, at least one), takes buffers from pools and starts it.
 * Returns 0 or a negative errno, and logs why. */
int port_open(struct port *port, const char *name, const char *devargs,
              const struct port_config *config, struct pktpool_set *pools);

/* Opens an in-process port: an ethdev whose rx queue reads rx and whose tx queue writes tx (the
 * ring PMD). Two such ports on crossed rings make a wire inside the process. */
int port_open_rings(struct port *port, const char *name, struct rte_ring *rx, struct rte_ring *tx,
                    const struct port_config *config, struct pktpool_set *pools);

/* Sends a burst now on the main worker's queue; frames the queue cannot take are freed and
 * counted. Returns how many were sent. */
uint16_t port_tx_burst(struct port *port, struct rte_mbuf **pkts, uint16_t n);

/* As port_tx_burst, on a worker's queue. */
uint16_t port_tx_burst_worker(struct port *port, unsigned int worker, struct rte_mbuf **pkts,
                              uint16_t n);

/* Turns link emulation on (or changes it) for the port's transmit side; a null configuration
 * turns it off. Returns 0 or -ENOMEM. */
int port_set_impair(struct port *port, const struct impair_config *config);

/* Sends the emulated link's frames whose time has come; returns how many, plus one if frames
 * still wait (so the loop keeps polling while a delayed frame is in flight). */
unsigned int port_impair_poll(struct port *port);

/* Adds an rx queue's interrupt to an epoll set (add) or takes it out: a worker waits on the set
 * when idle. Returns 0 or a negative errno (-ENOTSUP for a port without rx interrupts). */
int port_rx_interrupt_ctl(struct port *port, uint16_t queue, int epoll_fd, bool add);

/* A one-segment copy of a chain from the port's pool, the chain freed; NULL (the chain freed)
 * if no buffer. */
struct rte_mbuf *port_tx_linearize(struct port *port, struct rte_mbuf *m);

/* A frame this port can send: itself, or a chain made whole for a port that wants one
 * segment (port_tx_linearize). NULL (the frame freed) if no buffer. */
static inline struct rte_mbuf *port_tx_prepare(struct port *port, struct rte_mbuf *m)
{
	if (likely(m->nb_segs == 1 || !port->tx_needs_linear))
		return m;
	return port_tx_linearize(port, m);
}

/* Arms (or disarms) an rx queue's interrupt before (after) a worker waits on it. */
void port_rx_interrupt_arm(struct port *port, uint16_t queue, bool arm);

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

/* Receives a burst from one rx queue for a worker and counts it in the worker's counters. */
static inline uint16_t port_rx_burst_queue(struct port *port, unsigned int worker, uint16_t queue,
                                           struct rte_mbuf **pkts, uint16_t n)
{
	uint16_t nb = rte_eth_rx_burst(port->port_id, queue, pkts, n);
	struct port_counters *counters = &port->workers[worker].counters;
	struct capture *capture = __atomic_load_n(&port->capture, __ATOMIC_ACQUIRE);
	uint64_t bytes = 0;

	for (uint16_t i = 0; i < nb; i++)
		bytes += rte_pktmbuf_pkt_len(pkts[i]);
	counters->rx_packets += nb;
	counters->rx_bytes += bytes;
	if (unlikely(capture != NULL) && nb > 0)
		capture_burst(capture, port, worker, queue, CAPTURE_RX, pkts, nb);
	return nb;
}

/* Receives a burst on the main worker's queue (queue 0) and counts it. */
static inline uint16_t port_rx_burst(struct port *port, struct rte_mbuf **pkts, uint16_t n)
{
	return port_rx_burst_queue(port, 0, 0, pkts, n);
}

/* Sends what a worker queued for the port; frames the queue cannot take are freed and counted.
 * Returns how many were sent. */
uint16_t port_tx_flush_worker(struct port *port, unsigned int worker);

/* Sends what the main worker queued for the port. */
static inline uint16_t port_tx_flush(struct port *port)
{
	return port_tx_flush_worker(port, 0);
}

/* Queues one frame for a worker's transmit, sending a burst when the queue is full. Takes the
 * reference. */
static inline void port_tx_enqueue_worker(struct port *port, unsigned int worker,
                                          struct rte_mbuf *pkt)
{
	struct port_worker *w = &port->workers[worker];

	w->tx_pending[w->nb_tx_pending++] = pkt;
	if (w->nb_tx_pending == PORT_BURST)
		port_tx_flush_worker(port, worker);
}

/* Queues one frame for the main worker's transmit. */
static inline void port_tx_enqueue(struct port *port, struct rte_mbuf *pkt)
{
	port_tx_enqueue_worker(port, 0, pkt);
}

/* Adds every worker's counters into out (zeroed first). */
void port_counters_sum(const struct port *port, struct port_counters *out);

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
