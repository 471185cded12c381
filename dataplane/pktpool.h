/* Packet buffer pools: one set of mbuf pools per NUMA socket, grown as ports are added. */
#ifndef FERRY_DATAPLANE_PKTPOOL_H
#define FERRY_DATAPLANE_PKTPOOL_H

#include <stdint.h>

#include <rte_memory.h>

struct rte_mempool;

#define PKTPOOL_MAX_PER_SOCKET    16
#define PKTPOOL_PORTS_PER_POOL    4
#define PKTPOOL_CACHE_SIZE        256
#define PKTPOOL_DEFAULT_DATA_ROOM 2176 /* RTE_MBUF_DEFAULT_BUF_SIZE: a 1518-byte frame + headroom */

struct pktpool_socket {
	struct rte_mempool *pools[PKTPOOL_MAX_PER_SOCKET];
	uint16_t data_room[PKTPOOL_MAX_PER_SOCKET]; /* bytes of each pool's buffers */
	uint32_t capacity[PKTPOOL_MAX_PER_SOCKET];  /* mbufs in each pool */
	uint32_t reserved[PKTPOOL_MAX_PER_SOCKET];  /* mbufs promised to ports */
	unsigned int nb_pools;
};

struct pktpool_set {
	char prefix[16];    /* mempool names are global to the process: keep sets apart */
	uint16_t data_room; /* the smallest buffers: every pool's are at least this big */
	uint32_t min_mbufs; /* no pool smaller than this (a replayed capture may need many) */
	struct pktpool_socket sockets[RTE_MAX_NUMA_NODES];
};

struct pktpool_info {
	char name[32];
	int socket;
	uint32_t capacity;
	uint32_t reserved;
	uint32_t in_use;
	uint16_t data_room;
};

/* Prepares an empty set; pools are created on demand, each of at least min_mbufs buffers (0 for
 * no minimum) of data_room bytes (0 for the default). prefix names its mempools. */
void pktpool_set_init(struct pktpool_set *set, const char *prefix, uint16_t data_room,
                      uint32_t min_mbufs);

/* Frees every pool of the set. The caller has closed every port that used them. */
void pktpool_set_fini(struct pktpool_set *set);

/* The data room a buffer needs to hold a whole frame of an MTU (Ethernet and two VLAN headers,
 * the CRC and the headroom), never under the set's own: what pktpool_reserve sizes pools by. */
uint16_t pktpool_data_room_for_mtu(const struct pktpool_set *set, uint16_t mtu);

/* Reserves nb_mbufs buffers for a port of an MTU on a socket (SOCKET_ID_ANY picks socket 0) and
 * returns the pool to take them from: an existing pool with room and buffers of the size that
 * MTU needs, or a new one sized for PKTPOOL_PORTS_PER_POOL such ports. So a jumbo port gets
 * jumbo buffers and the others keep small ones. Returns NULL with rte_errno set on failure
 * (ENOMEM, logged with what to change). */
struct rte_mempool *pktpool_reserve(struct pktpool_set *set, int socket, uint32_t nb_mbufs,
                                    uint16_t mtu);

/* Gives back a reservation made with pktpool_reserve on that pool. */
void pktpool_release(struct pktpool_set *set, struct rte_mempool *pool, uint32_t nb_mbufs);

/* Fills up to max entries describing the set's pools; returns the number of pools. */
unsigned int pktpool_info(const struct pktpool_set *set, struct pktpool_info *info,
                          unsigned int max);

#endif
