/* Ports: any DPDK ethdev opened from devargs, with burst rx/tx and per-port counters. */
#include "port.h"

#include <errno.h>
#include <stdalign.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_interrupts.h>
#include <rte_bus_vdev.h>
#include <rte_cycles.h>
#include <rte_log.h>
#include <rte_malloc.h>

#include "impair.h"
#include "loop.h"
#include "pktpool.h"

/* What net_af_xdp holds beyond its descriptors: its fill and completion rings (see port_open). */
#define PORT_AF_XDP_UMEM_MBUFS (2 * 2048 + 2048)

static RTE_LOG_REGISTER(port_logtype, ferry.port, INFO);

#define PORT_LOG(level, fmt, ...)                                                                  \
	rte_log(RTE_LOG_##level, port_logtype, "port: " fmt "\n", ##__VA_ARGS__)

const char *const port_drop_names[PORT_DROP_MAX] = {
#define PORT_DROP_NAME(e, name, text, side) [PORT_DROP_##e] = name,
        PORT_DROP_REASONS(PORT_DROP_NAME)
#undef PORT_DROP_NAME
};

const char *const port_drop_descriptions[PORT_DROP_MAX] = {
#define PORT_DROP_TEXT(e, name, text, side) [PORT_DROP_##e] = text,
        PORT_DROP_REASONS(PORT_DROP_TEXT)
#undef PORT_DROP_TEXT
};

const enum port_drop_side port_drop_sides[PORT_DROP_MAX] = {
#define PORT_DROP_SIDE(e, name, text, side) [PORT_DROP_##e] = PORT_DROP_SIDE_##side,
        PORT_DROP_REASONS(PORT_DROP_SIDE)
#undef PORT_DROP_SIDE
};

void port_config_default(struct port_config *config)
{
	config->mtu = PORT_DEFAULT_MTU;
	config->nb_rx_desc = PORT_DEFAULT_RX_DESC;
	config->nb_tx_desc = PORT_DEFAULT_TX_DESC;
	config->nb_workers = 1;
}

/* Claims the ethdev, so that two ports (or two tables in one process) never drive one device. */
static int port_take_ownership(struct port *port)
{
	struct rte_eth_dev_owner owner;
	int ret = rte_eth_dev_owner_get(port->port_id, &owner);

	if (ret == 0 && owner.id != RTE_ETH_DEV_NO_OWNER) {
		PORT_LOG(ERR, "%s: device '%s' is already owned by %s", port->name, port->devargs,
		         owner.name);
		return -EBUSY;
	}
	memset(&owner, 0, sizeof(owner));
	ret = rte_eth_dev_owner_new(&owner.id);
	if (ret == 0) {
		snprintf(owner.name, sizeof(owner.name), "ferry:%s", port->name);
		ret = rte_eth_dev_owner_set(port->port_id, &owner);
	}
	if (ret < 0) {
		PORT_LOG(ERR, "%s: cannot take ownership of ethdev %u: %s", port->name,
		         port->port_id, rte_strerror(-ret));
		return ret;
	}
	port->owner_id = owner.id;
	return 0;
}

/* Finds the ethdev a devargs string names. EAL may have probed it at start-up (PCI devices given
 * with -a), or we probe it now (virtual devices, hot-plugged NICs). */
static int port_probe(struct port *port, const char *devargs)
{
	struct rte_devargs da;
	int ret;

	ret = rte_devargs_parse(&da, devargs);
	if (ret < 0) {
		/* No bus took the name: no PCI address, and no virtual driver of that name. */
		PORT_LOG(ERR, "%s: no DPDK bus or driver knows '%s': %s", port->name, devargs,
		         rte_strerror(-ret));
		return -ENXIO;
	}
	/* Virtual drivers fail their probe with -1 whatever went wrong, and leave the cause (an
	 * interface that does not exist, a socket that cannot be bound) in errno. */
	errno = 0;
	ret = rte_dev_probe(devargs);
	if (ret == -EPERM && errno != 0 && errno != EPERM)
		ret = -errno;
	if (ret == 0) {
		port->hotplugged = true;
	} else if (ret != -EEXIST) {
		PORT_LOG(ERR, "%s: cannot probe '%s': %s", port->name, devargs, rte_strerror(-ret));
		rte_devargs_reset(&da);
		return ret;
	}

	uint16_t port_id;
	struct rte_dev_iterator it;
	ret = rte_eth_dev_get_port_by_name(da.name, &port->port_id);
	if (ret < 0) {
		/* The bus may spell the name its own way (PCI domain prefix, for one). */
		RTE_ETH_FOREACH_MATCHING_DEV(port_id, devargs, &it)
		{
			port->port_id = port_id;
			rte_eth_iterator_cleanup(&it);
			ret = 0;
			break;
		}
	}
	if (ret < 0) {
		PORT_LOG(ERR, "%s: '%s' is not an ethernet device", port->name, da.name);
		if (port->hotplugged)
			rte_eal_hotplug_remove(rte_bus_name(da.bus), da.name);
		rte_devargs_reset(&da);
		return -ENODEV;
	}
	ret = port_take_ownership(port);
	if (ret < 0 && port->hotplugged)
		rte_eal_hotplug_remove(rte_bus_name(da.bus), da.name);
	rte_devargs_reset(&da);
	return ret;
}

/* A device on the virtual bus (net_af_packet, net_tap, net_pcap, ...), not a NIC. */
static bool port_is_virtual(const struct rte_eth_dev_info *dev_info)
{
	return dev_info->device != NULL &&
	       strcmp(rte_bus_name(rte_dev_bus(dev_info->device)), "vdev") == 0;
}

/* Whether the started port's rx queue 0 can join an epoll set (the PMD made its interrupt
 * vector). */
static bool port_rx_interrupts_work(struct port *port)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);

	if (fd < 0)
		return false;
	bool works = rte_eth_dev_rx_intr_ctl_q(port->port_id, 0, fd, RTE_INTR_EVENT_ADD, NULL) == 0;
	if (works)
		rte_eth_dev_rx_intr_ctl_q(port->port_id, 0, fd, RTE_INTR_EVENT_DEL, NULL);
	close(fd);
	return works;
}

struct rte_mbuf *port_tx_linearize(struct port *port, struct rte_mbuf *m)
{
	struct rte_mbuf *whole = rte_pktmbuf_alloc(port->pool);
	char *data = whole != NULL ? rte_pktmbuf_append(whole, (uint16_t)m->pkt_len) : NULL;
	const void *from = data != NULL ? rte_pktmbuf_read(m, 0, m->pkt_len, data) : NULL;
	if (from == NULL) {
		rte_pktmbuf_free(whole);
		rte_pktmbuf_free(m);
		return NULL;
	}
	/* rte_pktmbuf_read copies only what spans segments; the rest it points at. */
	if (from != data)
		memcpy(data, from, m->pkt_len);
	whole->port = m->port;
	rte_pktmbuf_free(m);
	return whole;
}

int port_rx_interrupt_ctl(struct port *port, uint16_t queue, int epoll_fd, bool add)
{
	if (!port->rx_interrupts)
		return -ENOTSUP;
	return rte_eth_dev_rx_intr_ctl_q(port->port_id, queue, epoll_fd,
	                                 add ? RTE_INTR_EVENT_ADD : RTE_INTR_EVENT_DEL, NULL);
}

void port_rx_interrupt_arm(struct port *port, uint16_t queue, bool arm)
{
	/* A PMD whose interrupt is its queue's file descriptor (tap) has nothing to arm. */
	if (arm)
		rte_eth_dev_rx_intr_enable(port->port_id, queue);
	else
		rte_eth_dev_rx_intr_disable(port->port_id, queue);
}

static int port_configure(struct port *port, const struct port_config *config)
{
	struct rte_eth_dev_info dev_info;
	struct rte_eth_conf conf;
	int ret;

	ret = rte_eth_dev_info_get(port->port_id, &dev_info);
	if (ret < 0) {
		PORT_LOG(ERR, "%s: cannot read device info: %s", port->name, rte_strerror(-ret));
		return ret;
	}
	port->socket = rte_eth_dev_socket_id(port->port_id);

	/* A queue pair per worker where the PMD has them (a NIC, or a vdev given as many queues);
	 * the workers share what there is otherwise. RSS spreads a NIC's flows over the rx queues,
	 * so one flow always lands on one queue and one worker: never reordered. */
	port->nb_workers = RTE_MAX(config->nb_workers, (uint16_t)1);
	port->nb_rx_queues = RTE_MAX(RTE_MIN(port->nb_workers, dev_info.max_rx_queues), 1);
	port->nb_tx_queues = RTE_MAX(RTE_MIN(port->nb_workers, dev_info.max_tx_queues), 1);
	port->tx_locked = port->nb_tx_queues < port->nb_workers;
	rte_spinlock_init(&port->tx_lock);
	for (unsigned int w = 0; w < PORT_MAX_WORKERS; w++)
		port->workers[w].tx_queue = (uint16_t)(w % port->nb_tx_queues);
	memset(&conf, 0, sizeof(conf));
	/* Rx interrupts where the PMD has them (a NIC, tap, memif): an idle worker sleeps on
	 * them. The other virtual PMDs ignore the setting or refuse it, so they are not asked. */
	bool interrupts = !port_is_virtual(&dev_info) ||
	                  strcmp(dev_info.driver_name, "net_tap") == 0 ||
	                  strcmp(dev_info.driver_name, "net_memif") == 0;
	conf.intr_conf.rxq = interrupts;
	if (port->nb_rx_queues > 1 && dev_info.flow_type_rss_offloads != 0) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
		        (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) &
		        dev_info.flow_type_rss_offloads;
	}
	uint16_t mtu = config->mtu != 0 ? config->mtu : PORT_DEFAULT_MTU;
	/* Not our ring ports: the IPv4 stack behind them reads and builds whole frames. */
	port->rx_scatter = mtu > PORT_DEFAULT_MTU && !port->in_process &&
	                   (dev_info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER) != 0;
	if (port->rx_scatter)
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
	if (dev_info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
	/* Software PMDs copy a chain out segment by segment whatever they advertise; a NIC
	 * without the offload and our own ring ports (read by the IPv4 stack) need one segment. */
	port->tx_needs_linear =
	        port->in_process || (!(dev_info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) &&
	                             !port_is_virtual(&dev_info));
	ret = rte_eth_dev_configure(port->port_id, port->nb_rx_queues, port->nb_tx_queues, &conf);
	if (ret < 0) {
		PORT_LOG(ERR, "%s: cannot configure: %s", port->name, rte_strerror(-ret));
		return ret;
	}

	port->nb_rx_desc = config->nb_rx_desc;
	port->nb_tx_desc = config->nb_tx_desc;
	ret = rte_eth_dev_adjust_nb_rx_tx_desc(port->port_id, &port->nb_rx_desc, &port->nb_tx_desc);
	if (ret < 0) {
		PORT_LOG(ERR, "%s: cannot size queues: %s", port->name, rte_strerror(-ret));
		return ret;
	}

	/* Buffers for full rx and tx rings and a burst in flight each way, per queue. */
	port->reserved_mbufs = port->nb_rx_queues * (port->nb_rx_desc + PORT_BURST) +
	                       port->nb_tx_queues * (port->nb_tx_desc + PORT_BURST);
	/* net_af_xdp's rings are not the descriptors asked for: in zero-copy mode it keeps its UMEM's
	 * fill ring (twice libxdp's default of 2048) stocked from the pool and frees what it sent
	 * only as its completion ring (2048) fills; it holds that many more. */
	if (strcmp(dev_info.driver_name, "net_af_xdp") == 0)
		port->reserved_mbufs += PORT_AF_XDP_UMEM_MBUFS;
	port->pool = pktpool_reserve(port->pools, port->socket, port->reserved_mbufs,
	                             port->rx_scatter ? PORT_DEFAULT_MTU : mtu);
	if (port->pool == NULL)
		return -rte_errno;

	for (uint16_t q = 0; q < port->nb_rx_queues; q++) {
		ret = rte_eth_rx_queue_setup(port->port_id, q, port->nb_rx_desc, port->socket, NULL,
		                             port->pool);
		if (ret < 0) {
			PORT_LOG(ERR, "%s: cannot set up rx queue %u: %s", port->name, q,
			         rte_strerror(-ret));
			return ret;
		}
	}
	for (uint16_t q = 0; q < port->nb_tx_queues; q++) {
		ret = rte_eth_tx_queue_setup(port->port_id, q, port->nb_tx_desc, port->socket,
		                             NULL);
		if (ret < 0) {
			PORT_LOG(ERR, "%s: cannot set up tx queue %u: %s", port->name, q,
			         rte_strerror(-ret));
			return ret;
		}
	}

	ret = rte_eth_dev_set_mtu(port->port_id, mtu);
	if (ret == -ENOTSUP || (ret == -EINVAL && port_is_virtual(&dev_info))) {
		/* Virtual devices either have no MTU, or (af_packet) report a fixed 1518-byte
		 * maximum while their kernel interface decides: ferry enforces the MTU itself. */
		if (ret == -EINVAL)
			PORT_LOG(WARNING,
			         "%s: %s reports at most %u-byte frames; MTU %u is enforced "
			         "by ferry only (its buffers and the interface must fit it)",
			         port->name, dev_info.driver_name, dev_info.max_rx_pktlen, mtu);
		port->mtu = mtu;
	} else if (ret < 0) {
		PORT_LOG(ERR, "%s: cannot set MTU %u: %s", port->name, mtu, rte_strerror(-ret));
		return ret;
	} else {
		port->mtu = mtu;
	}

	ret = rte_eth_dev_start(port->port_id);
	if (ret < 0) {
		PORT_LOG(ERR, "%s: cannot start: %s", port->name, rte_strerror(-ret));
		return ret;
	}
	port->rx_interrupts = interrupts && port_rx_interrupts_work(port);
	/* A switch port sees every frame on the wire. */
	ret = rte_eth_promiscuous_enable(port->port_id);
	if (ret < 0 && ret != -ENOTSUP)
		PORT_LOG(WARNING, "%s: cannot enable promiscuous mode: %s", port->name,
		         rte_strerror(-ret));
	return 0;
}

static void port_remove_device(struct port *port, struct rte_device *device)
{
	if (!port->hotplugged || device == NULL)
		return;
	int ret = rte_dev_remove(device);
	if (ret < 0)
		PORT_LOG(WARNING, "%s: cannot remove device: %s", port->name, rte_strerror(-ret));
}

/* Configures and starts a port whose ethdev is found (and owned); undoes everything on failure. */
static int port_setup(struct port *port, const struct port_config *config)
{
	struct port_config defaults;
	struct rte_eth_dev_info dev_info;
	struct rte_device *device = NULL;

	if (config == NULL) {
		port_config_default(&defaults);
		config = &defaults;
	}
	if (rte_eth_dev_info_get(port->port_id, &dev_info) == 0)
		device = dev_info.device;
	int ret = port_configure(port, config);
	if (ret < 0) {
		rte_eth_dev_stop(port->port_id);
		rte_eth_dev_owner_unset(port->port_id, port->owner_id);
		if (port->hotplugged)
			rte_eth_dev_close(port->port_id);
		port_remove_device(port, device);
		if (port->pool != NULL)
			pktpool_release(port->pools, port->pool, port->reserved_mbufs);
		return ret;
	}
	PORT_LOG(INFO, "%s: opened '%s' as ethdev %u (%s), mtu %u, %u/%u descriptors, %u/%u queues",
	         port->name, port->devargs, port->port_id, dev_info.driver_name, port->mtu,
	         port->nb_rx_desc, port->nb_tx_desc, port->nb_rx_queues, port->nb_tx_queues);
	return 0;
}

void *port_holder_alloc(size_t size)
{
	/* aligned_alloc wants a multiple of the alignment; a struct that holds a port is one. */
	size = RTE_ALIGN_CEIL(size, alignof(struct port));
	void *memory = aligned_alloc(alignof(struct port), size);

	if (memory != NULL)
		memset(memory, 0, size);
	return memory;
}

int port_open(struct port *port, const char *name, const char *devargs,
              const struct port_config *config, struct pktpool_set *pools)
{
	memset(port, 0, sizeof(*port));
	snprintf(port->name, sizeof(port->name), "%s", name);
	snprintf(port->devargs, sizeof(port->devargs), "%s", devargs);
	port->pools = pools;
	int ret = port_probe(port, devargs);
	if (ret < 0)
		return ret;
	return port_setup(port, config);
}

int port_open_rings(struct port *port, const char *name, struct rte_ring *rx, struct rte_ring *tx,
                    const struct port_config *config, struct pktpool_set *pools)
{
	char vdev[24];

	memset(port, 0, sizeof(*port));
	snprintf(port->name, sizeof(port->name), "%s", name);
	/* The ring PMD names the device net_ring_<vdev>, in at most 28 characters, and the name
	 * must be unique in the process: the port's address serves. */
	snprintf(vdev, sizeof(vdev), "p%lx", (unsigned long)(uintptr_t)port & 0xffffffffffful);
	snprintf(port->devargs, sizeof(port->devargs), "net_ring_%s (in-process rings)", vdev);
	port->pools = pools;
	int port_id = rte_eth_from_rings(vdev, &rx, 1, &tx, 1, (unsigned int)rte_socket_id());
	if (port_id < 0) {
		PORT_LOG(ERR, "%s: cannot make an ethdev from rings: %s", name,
		         rte_strerror(rte_errno));
		return -rte_errno;
	}
	port->port_id = (uint16_t)port_id;
	port->hotplugged = true;
	port->in_process = true;
	int ret = port_take_ownership(port);
	if (ret < 0) {
		char device[RTE_DEV_NAME_MAX_LEN];
		snprintf(device, sizeof(device), "net_ring_%s", vdev);
		rte_eth_dev_close(port->port_id);
		rte_vdev_uninit(device);
		return ret;
	}
	return port_setup(port, config);
}

/* Hands a burst to the PMD on a worker's queue; what it cannot take is freed and counted. */
static uint16_t port_tx_raw(struct port *port, unsigned int worker, struct rte_mbuf **pkts,
                            uint16_t n)
{
	struct port_worker *w = &port->workers[worker];
	uint64_t bytes = 0;

	for (uint16_t i = 0; i < n; i++)
		bytes += rte_pktmbuf_pkt_len(pkts[i]);
	struct capture *capture = __atomic_load_n(&port->capture, __ATOMIC_ACQUIRE);
	if (unlikely(capture != NULL) && n > 0)
		capture_burst(capture, port, worker, w->tx_queue, CAPTURE_TX, pkts, n);
	uint16_t sent = rte_eth_tx_burst(port->port_id, w->tx_queue, pkts, n);
	if (unlikely(sent < n)) {
		for (uint16_t i = sent; i < n; i++)
			bytes -= rte_pktmbuf_pkt_len(pkts[i]);
		rte_pktmbuf_free_bulk(&pkts[sent], n - sent);
		w->counters.drops[PORT_DROP_TX_FULL] += n - sent;
	}
	w->counters.tx_packets += sent;
	w->counters.tx_bytes += bytes;
	return sent;
}

/* Frames through the emulated link: some lost, some held back, some sent now. */
static uint16_t port_tx_impaired(struct port *port, unsigned int worker, struct rte_mbuf **pkts,
                                 uint16_t n)
{
	struct rte_mbuf *ready[2 * PORT_BURST];
	struct impair *impair = port->impair;
	struct port_counters *counters = &port->workers[worker].counters;
	uint64_t lost = impair->stats.lost, overflow = impair->stats.overflow;
	uint16_t sent = 0;

	for (uint16_t done = 0; done < n;) {
		uint16_t chunk = (uint16_t)RTE_MIN(n - done, PORT_BURST);
		uint16_t nb = impair_admit(impair, &pkts[done], chunk, loop_tsc_now_ns(), ready);
		sent += port_tx_raw(port, worker, ready, nb);
		done += chunk;
	}
	counters->drops[PORT_DROP_IMPAIR_LOSS] += impair->stats.lost - lost;
	counters->drops[PORT_DROP_IMPAIR_QUEUE_FULL] += impair->stats.overflow - overflow;
	return sent;
}

/* The emulated link is one queue and its state one struct: with several workers it is taken
 * under the lock, as a shared tx queue is. */
static inline bool port_tx_needs_lock(const struct port *port)
{
	return port->tx_locked || (port->impair != NULL && port->nb_workers > 1);
}

uint16_t port_tx_burst_worker(struct port *port, unsigned int worker, struct rte_mbuf **pkts,
                              uint16_t n)
{
	if (likely(!port_tx_needs_lock(port)))
		return unlikely(port->impair != NULL) ? port_tx_impaired(port, worker, pkts, n)
		                                      : port_tx_raw(port, worker, pkts, n);
	rte_spinlock_lock(&port->tx_lock);
	uint16_t sent = port->impair != NULL ? port_tx_impaired(port, worker, pkts, n)
	                                     : port_tx_raw(port, worker, pkts, n);
	rte_spinlock_unlock(&port->tx_lock);
	return sent;
}

uint16_t port_tx_burst(struct port *port, struct rte_mbuf **pkts, uint16_t n)
{
	return port_tx_burst_worker(port, 0, pkts, n);
}

unsigned int port_impair_poll(struct port *port)
{
	struct rte_mbuf *due[PORT_BURST];
	unsigned int total = 0;
	uint16_t n;

	if (port->impair == NULL)
		return 0;
	bool lock = port_tx_needs_lock(port);
	if (lock)
		rte_spinlock_lock(&port->tx_lock);
	uint64_t now = loop_tsc_now_ns();
	while ((n = impair_release(port->impair, now, due, PORT_BURST)) > 0)
		total += port_tx_raw(port, 0, due, n);
	total += port->impair->count > 0;
	if (lock)
		rte_spinlock_unlock(&port->tx_lock);
	return total;
}

int port_set_impair(struct port *port, const struct impair_config *config)
{
	if (impair_config_is_null(config)) {
		if (port->impair != NULL) {
			impair_flush(port->impair);
			rte_free(port->impair);
			port->impair = NULL;
		}
		return 0;
	}
	if (port->impair == NULL) {
		port->impair = rte_zmalloc("impair", sizeof(*port->impair), RTE_CACHE_LINE_SIZE);
		if (port->impair == NULL)
			return -ENOMEM;
	} else {
		impair_flush(port->impair);
	}
	impair_init(port->impair, config);
	return 0;
}

void port_close(struct port *port)
{
	struct rte_eth_dev_info dev_info;
	struct rte_device *device = NULL;

	if (rte_eth_dev_info_get(port->port_id, &dev_info) == 0)
		device = dev_info.device;
	for (unsigned int w = 0; w < PORT_MAX_WORKERS; w++) {
		rte_pktmbuf_free_bulk(port->workers[w].tx_pending, port->workers[w].nb_tx_pending);
		port->workers[w].nb_tx_pending = 0;
	}
	if (port->impair != NULL) {
		impair_flush(port->impair);
		rte_free(port->impair);
		port->impair = NULL;
	}
	int ret = rte_eth_dev_stop(port->port_id);
	if (ret < 0)
		PORT_LOG(WARNING, "%s: cannot stop: %s", port->name, rte_strerror(-ret));
	rte_eth_dev_owner_unset(port->port_id, port->owner_id);
	/* A device EAL probed at start-up (-a on the command line) stays probed and stopped, so
	 * that a later `port add` can configure it again. */
	if (port->hotplugged)
		rte_eth_dev_close(port->port_id);
	port_remove_device(port, device);
	pktpool_release(port->pools, port->pool, port->reserved_mbufs);
	PORT_LOG(INFO, "%s: closed", port->name);
}

int port_set_mtu(struct port *port, uint16_t mtu)
{
	uint16_t room = rte_pktmbuf_data_room_size(port->pool);
	uint16_t needed = pktpool_data_room_for_mtu(port->pools, mtu);

	if (needed > room) {
		PORT_LOG(ERR,
		         "%s: MTU %u needs %u-byte buffers and the port's are %u: add the port "
		         "again with mtu %u",
		         port->name, mtu, needed, room, mtu);
		return -ENOBUFS;
	}
	int ret = rte_eth_dev_set_mtu(port->port_id, mtu);

	if (ret < 0 && ret != -ENOTSUP) {
		PORT_LOG(ERR, "%s: cannot set MTU %u: %s", port->name, mtu, rte_strerror(-ret));
		return ret;
	}
	port->mtu = mtu;
	return 0;
}

void port_get_info(const struct port *port, struct port_info *info)
{
	struct rte_eth_dev_info dev_info;
	struct rte_ether_addr mac;
	struct rte_eth_link link;

	memset(info, 0, sizeof(*info));
	info->socket = port->socket;
	if (rte_eth_dev_info_get(port->port_id, &dev_info) == 0)
		snprintf(info->driver, sizeof(info->driver), "%s", dev_info.driver_name);
	if (rte_eth_macaddr_get(port->port_id, &mac) == 0)
		rte_ether_format_addr(info->mac, sizeof(info->mac), &mac);
	if (rte_eth_link_get_nowait(port->port_id, &link) == 0) {
		info->link_up = link.link_status == RTE_ETH_LINK_UP;
		info->link_speed_mbps = link.link_speed;
		info->full_duplex = link.link_duplex == RTE_ETH_LINK_FULL_DUPLEX;
	}
}

int port_get_hw_stats(const struct port *port, struct port_hw_stats *stats)
{
	struct rte_eth_stats eth;
	int ret = rte_eth_stats_get(port->port_id, &eth);

	memset(stats, 0, sizeof(*stats));
	if (ret < 0)
		return ret;
	stats->ipackets = eth.ipackets;
	stats->opackets = eth.opackets;
	stats->ibytes = eth.ibytes;
	stats->obytes = eth.obytes;
	stats->imissed = eth.imissed;
	stats->ierrors = eth.ierrors;
	stats->oerrors = eth.oerrors;
	stats->rx_nombuf = eth.rx_nombuf;
	return 0;
}

void port_clear_stats(struct port *port)
{
	for (unsigned int w = 0; w < PORT_MAX_WORKERS; w++)
		memset(&port->workers[w].counters, 0, sizeof(port->workers[w].counters));
	rte_eth_stats_reset(port->port_id);
}

uint16_t port_tx_flush_worker(struct port *port, unsigned int worker)
{
	struct port_worker *w = &port->workers[worker];
	uint16_t n = w->nb_tx_pending;

	if (n == 0)
		return 0;
	w->nb_tx_pending = 0;
	return port_tx_burst_worker(port, worker, w->tx_pending, n);
}

void port_counters_sum(const struct port *port, struct port_counters *out)
{
	const uint64_t *in;
	uint64_t *sum = (uint64_t *)out;

	_Static_assert(sizeof(*out) % sizeof(uint64_t) == 0, "counters are all 64-bit");
	memset(out, 0, sizeof(*out));
	for (unsigned int w = 0; w < PORT_MAX_WORKERS; w++) {
		in = (const uint64_t *)&port->workers[w].counters;
		for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
			sum[i] += in[i];
	}
}

void port_table_init(struct port_table *table)
{
	memset(table, 0, sizeof(*table));
}

struct port *port_table_find(const struct port_table *table, const char *name)
{
	for (unsigned int i = 0; i < table->nb_ports; i++)
		if (strcmp(table->ports[i]->name, name) == 0)
			return table->ports[i];
	return NULL;
}

/* Checks a new port's name against the table and allocates it; NULL with *ret set if not. */
static struct port *table_new_port(const struct port_table *table, const char *name,
                                   const char *devargs, int *ret)
{
	struct port *port = NULL;

	if (strlen(name) >= PORT_NAME_MAX || strlen(devargs) >= PORT_DEVARGS_MAX)
		*ret = -ENAMETOOLONG;
	else if (port_table_find(table, name) != NULL)
		*ret = -EEXIST;
	else if (table->nb_ports == PORT_MAX)
		*ret = -ENOSPC;
	else if ((port = port_holder_alloc(sizeof(*port))) == NULL)
		*ret = -ENOMEM;
	return port;
}

/* Puts an opened port in the table, or frees it if it did not open. */
static int table_insert(struct port_table *table, struct port *port, int ret,
                        struct port **port_out)
{
	if (ret < 0) {
		free(port);
		return ret;
	}
	table->ports[table->nb_ports++] = port;
	*port_out = port;
	return 0;
}

int port_table_add(struct port_table *table, const char *name, const char *devargs,
                   const struct port_config *config, struct pktpool_set *pools,
                   struct port **port_out)
{
	int ret;
	struct port *port = table_new_port(table, name, devargs, &ret);

	if (port == NULL)
		return ret;
	return table_insert(table, port, port_open(port, name, devargs, config, pools), port_out);
}

int port_table_add_rings(struct port_table *table, const char *name, struct rte_ring *rx,
                         struct rte_ring *tx, const struct port_config *config,
                         struct pktpool_set *pools, struct port **port_out)
{
	int ret;
	struct port *port = table_new_port(table, name, "", &ret);

	if (port == NULL)
		return ret;
	return table_insert(table, port, port_open_rings(port, name, rx, tx, config, pools),
	                    port_out);
}

void port_table_del(struct port_table *table, struct port *port)
{
	for (unsigned int i = 0; i < table->nb_ports; i++) {
		if (table->ports[i] != port)
			continue;
		port_close(port);
		free(port);
		memmove(&table->ports[i], &table->ports[i + 1],
		        (table->nb_ports - i - 1) * sizeof(table->ports[0]));
		table->nb_ports--;
		return;
	}
}

void port_table_fini(struct port_table *table)
{
	while (table->nb_ports > 0)
		port_table_del(table, table->ports[table->nb_ports - 1]);
}
