/* Packet buffer pools: one set of mbuf pools per NUMA socket, grown as ports are added. */
#include "pktpool.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_ether.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

static RTE_LOG_REGISTER(pktpool_logtype, ferry.pktpool, INFO);

#define PKTPOOL_LOG(level, fmt, ...)                                                               \
	rte_log(RTE_LOG_##level, pktpool_logtype, "pktpool: " fmt "\n", ##__VA_ARGS__)

void pktpool_set_init(struct pktpool_set *set, const char *prefix, uint16_t data_room,
                      uint32_t min_mbufs)
{
	memset(set, 0, sizeof(*set));
	snprintf(set->prefix, sizeof(set->prefix), "%s", prefix);
	set->data_room = data_room != 0 ? data_room : PKTPOOL_DEFAULT_DATA_ROOM;
	set->min_mbufs = min_mbufs;
}

void pktpool_set_fini(struct pktpool_set *set)
{
	for (unsigned int s = 0; s < RTE_MAX_NUMA_NODES; s++) {
		struct pktpool_socket *sock = &set->sockets[s];
		for (unsigned int i = 0; i < sock->nb_pools; i++)
			rte_mempool_free(sock->pools[i]);
		sock->nb_pools = 0;
	}
}

uint16_t pktpool_data_room_for_mtu(const struct pktpool_set *set, uint16_t mtu)
{
	uint32_t room = RTE_PKTMBUF_HEADROOM + RTE_ETHER_HDR_LEN + 2 * RTE_VLAN_HLEN + mtu +
	                RTE_ETHER_CRC_LEN;

	room = RTE_ALIGN_CEIL(room, 128);
	return (uint16_t)RTE_MIN(RTE_MAX(room, (uint32_t)set->data_room), (uint32_t)UINT16_MAX);
}

static struct rte_mempool *pktpool_create(struct pktpool_set *set, int socket, uint32_t nb_mbufs,
                                          uint16_t data_room)
{
	struct pktpool_socket *sock = &set->sockets[socket];
	char name[RTE_MEMPOOL_NAMESIZE];

	/* Every lcore may keep a cache of buffers; the pool must outlast those caches. */
	uint32_t capacity =
	        nb_mbufs * PKTPOOL_PORTS_PER_POOL + PKTPOOL_CACHE_SIZE * rte_lcore_count();
	capacity = RTE_MAX(capacity, set->min_mbufs);
	snprintf(name, sizeof(name), "%s_s%d_%u", set->prefix, socket, sock->nb_pools);
	struct rte_mempool *pool =
	        rte_pktmbuf_pool_create(name, capacity, PKTPOOL_CACHE_SIZE, 0, data_room, socket);
	if (pool == NULL && rte_errno == ENOMEM) {
		PKTPOOL_LOG(ERR,
		            "cannot create %s: %u buffers of %u bytes (%u MiB) do not fit DPDK's "
		            "memory on socket %d: give the EAL more (-m or --socket-mem), or the "
		            "port fewer descriptors (rxd, txd)",
		            name, capacity, data_room,
		            (unsigned int)(((uint64_t)capacity * (data_room + 256)) >> 20), socket);
		return NULL;
	}
	if (pool == NULL) {
		PKTPOOL_LOG(ERR, "cannot create %s (%u mbufs of %u bytes on socket %d): %s", name,
		            capacity, data_room, socket, rte_strerror(rte_errno));
		return NULL;
	}
	PKTPOOL_LOG(INFO, "created %s: %u mbufs of %u bytes on socket %d", name, capacity,
	            data_room, socket);
	sock->pools[sock->nb_pools] = pool;
	sock->data_room[sock->nb_pools] = data_room;
	sock->capacity[sock->nb_pools] = capacity;
	sock->reserved[sock->nb_pools] = 0;
	sock->nb_pools++;
	return pool;
}

struct rte_mempool *pktpool_reserve(struct pktpool_set *set, int socket, uint32_t nb_mbufs,
                                    uint16_t mtu)
{
	uint16_t data_room = pktpool_data_room_for_mtu(set, mtu);

	if (socket == SOCKET_ID_ANY)
		socket = 0;
	if (socket < 0 || socket >= RTE_MAX_NUMA_NODES) {
		rte_errno = EINVAL;
		return NULL;
	}
	struct pktpool_socket *sock = &set->sockets[socket];
	for (unsigned int i = 0; i < sock->nb_pools; i++) {
		if (sock->data_room[i] == data_room &&
		    sock->capacity[i] - sock->reserved[i] >= nb_mbufs) {
			sock->reserved[i] += nb_mbufs;
			return sock->pools[i];
		}
	}
	if (sock->nb_pools == PKTPOOL_MAX_PER_SOCKET) {
		PKTPOOL_LOG(ERR, "socket %d already has %u pools", socket, sock->nb_pools);
		rte_errno = ENOSPC;
		return NULL;
	}
	struct rte_mempool *pool = pktpool_create(set, socket, nb_mbufs, data_room);
	if (pool != NULL)
		sock->reserved[sock->nb_pools - 1] += nb_mbufs;
	return pool;
}

void pktpool_release(struct pktpool_set *set, struct rte_mempool *pool, uint32_t nb_mbufs)
{
	for (unsigned int s = 0; s < RTE_MAX_NUMA_NODES; s++) {
		struct pktpool_socket *sock = &set->sockets[s];
		for (unsigned int i = 0; i < sock->nb_pools; i++) {
			if (sock->pools[i] != pool)
				continue;
			sock->reserved[i] -= RTE_MIN(sock->reserved[i], nb_mbufs);
			return;
		}
	}
}

unsigned int pktpool_info(const struct pktpool_set *set, struct pktpool_info *info,
                          unsigned int max)
{
	unsigned int n = 0;

	for (unsigned int s = 0; s < RTE_MAX_NUMA_NODES; s++) {
		const struct pktpool_socket *sock = &set->sockets[s];
		for (unsigned int i = 0; i < sock->nb_pools; i++, n++) {
			if (n >= max)
				continue;
			snprintf(info[n].name, sizeof(info[n].name), "%s", sock->pools[i]->name);
			info[n].socket = (int)s;
			info[n].capacity = sock->capacity[i];
			info[n].reserved = sock->reserved[i];
			info[n].in_use = rte_mempool_in_use_count(sock->pools[i]);
			info[n].data_room = sock->data_room[i];
		}
	}
	return n;
}
