/* Two forwarding workers in one process: the second learns through its ring while the first
 * learns, applies, grows the MAC table and ages it, on real ring ports. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dataplane/loop.h"
#include "dataplane/pktpool.h"
#include "dataplane/port.h"
#include "vswitch/iface.h"
#include "vswitch/vswitch.h"

#define NB_PORTS  4
#define NB_MACS   6000  /* per sending port */
#define LIMIT     10000 /* fewer than the hosts: learning evicts as it goes */
#define RING_SIZE 1024
#define SECOND    1000000000ull

static void eal_up(void)
{
	static char *argv[] = {"test_workers",
	                       "--no-huge",
	                       "--no-shconf",
	                       "-m",
	                       "512",
	                       "--no-pci",
	                       "--no-telemetry",
	                       "--lcores=(0-1)@(0-1)",
	                       "--log-level=*:error"};
	cr_assert_geq(rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])), argv), 0);
}

TestSuite(workers, .init = eal_up, .timeout = 120);

struct bench {
	struct loop loop;
	struct pktpool_set pools;
	struct vswitch_table vswitches;
	struct rte_ring *in[NB_PORTS], *out[NB_PORTS]; /* what a port reads, what it writes */
	struct port ports[NB_PORTS];
	struct vswitch_port *vports[NB_PORTS];
	struct rte_mempool *frames;
};

static struct rte_ether_addr host_mac(unsigned int port, unsigned int n)
{
	return (struct rte_ether_addr){
	        {0x02, 0x77, (uint8_t)port, (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n}};
}

/* A frame from src to a MAC no port has: it floods to the other ports. */
static struct rte_mbuf *frame_from(struct bench *b, const struct rte_ether_addr *src)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(b->frames);
	cr_assert_not_null(m);
	char *data = rte_pktmbuf_append(m, 60);
	cr_assert_not_null(data);
	memset(data, 0, 60);
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)data;
	eth->dst_addr = (struct rte_ether_addr){{0x02, 0xdd, 0, 0, 0, 1}};
	eth->src_addr = *src;
	eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
	return m;
}

/* Runs worker 0 once and frees what the switch sent out. */
static void pump(struct bench *b)
{
	void *sent[64];
	unsigned int n;

	loop_run_once(&b->loop);
	for (unsigned int p = 0; p < NB_PORTS; p++)
		while ((n = rte_ring_dequeue_burst(b->out[p], sent, 64, NULL)) > 0)
			rte_pktmbuf_free_bulk((struct rte_mbuf **)sent, n);
}

static void bench_up(struct bench *b)
{
	char name[32];
	struct port_config config;

	cr_assert_eq(loop_init(&b->loop, NULL, NULL, NULL), 0);
	pktpool_set_init(&b->pools, "wk", 0, 0);
	cr_assert_eq(vswitch_table_init(&b->vswitches, &b->loop, 2), 0);
	cr_assert_eq(vswitch_workers_launch(&b->vswitches), 0, "a second lcore for worker 1");
	struct vswitch *vswitch = vswitch_find(&b->vswitches, VSWITCH_DEFAULT_NAME);
	fdb_set_limit(&vswitch->fdb, LIMIT);
	struct vswitch_portgroup *pg;
	cr_assert_eq(vswitch_portgroup_add(&b->vswitches, "pg", vswitch, 0, &pg), 0);
	/* Room for every ring full at once, however far worker 1 lags. */
	b->frames = rte_pktmbuf_pool_create("wk_frames", 32767, 256, 0, 2176, 0);
	cr_assert_not_null(b->frames);
	port_config_default(&config);
	config.nb_workers = 2;
	for (unsigned int p = 0; p < NB_PORTS; p++) {
		snprintf(name, sizeof(name), "wk_in%u", p);
		b->in[p] = rte_ring_create(name, RING_SIZE, 0, 0);
		snprintf(name, sizeof(name), "wk_out%u", p);
		b->out[p] = rte_ring_create(name, RING_SIZE, 0, 0);
		cr_assert(b->in[p] != NULL && b->out[p] != NULL);
		snprintf(name, sizeof(name), "wk%u", p);
		cr_assert_eq(port_open_rings(&b->ports[p], name, b->in[p], b->out[p], &config,
		                             &b->pools),
		             0);
		cr_assert_eq(vswitch_port_attach(vswitch, &b->ports[p], VSWITCH_ROLE_VNIC, pg,
		                                 &b->vports[p]),
		             0);
	}
	/* Ports 0 and 2 are worker 0's, 1 and 3 worker 1's. */
	cr_assert_eq(b->vswitches.workers[0]->nb_rx, 2);
	cr_assert_eq(b->vswitches.workers[1]->nb_rx, 2);
}

/* Frames from NB_MACS hosts behind port 0 (worker 0) and as many behind port 1 (worker 1), fed
 * a little at a time while worker 0 runs, and 500 of port 0's hosts moving to port 3 (worker 1)
 * half-way: both workers learn at once, the table grows under them and evicts (it holds fewer
 * than all), and in the end every host it holds is on its port; then it ages empty. */
Test(workers, two_workers_learn_move_evict_and_age_while_the_table_grows)
{
	static struct bench b;
	struct vswitch *vswitch;

	bench_up(&b);
	vswitch = b.vports[0]->vswitch;
	for (unsigned int n = 0; n < NB_MACS; n += 100) {
		for (unsigned int p = 0; p < 2; p++) {
			for (unsigned int i = n; i < n + 100; i++) {
				struct rte_ether_addr mac = host_mac(p, i);
				struct rte_mbuf *m = frame_from(&b, &mac);
				while (rte_ring_enqueue(b.in[p], m) != 0)
					pump(&b);
			}
		}
		if (n == NB_MACS / 2)
			for (unsigned int i = 0; i < 500; i++) {
				struct rte_ether_addr mac = host_mac(0, i);
				struct rte_mbuf *m = frame_from(&b, &mac);
				while (rte_ring_enqueue(b.in[3], m) != 0)
					pump(&b);
			}
		pump(&b);
	}
	/* Until every frame is in and every request applied. */
	uint64_t deadline = loop_tsc_now_ns() + 20 * SECOND;
	while ((fdb_lookup(&vswitch->fdb, 0,
	                   &(struct rte_ether_addr){
	                           {0x02, 0x77, 1, 0, (NB_MACS - 1) >> 8, (NB_MACS - 1) & 0xff}}) !=
	                b.vports[1]->index ||
	        rte_ring_count(b.in[0]) + rte_ring_count(b.in[1]) + rte_ring_count(b.in[3]) > 0) &&
	       loop_tsc_now_ns() < deadline)
		pump(&b);
	for (unsigned int i = 0; i < 200; i++)
		pump(&b);

	cr_assert_eq(vswitch->fdb.count, LIMIT, "full (%u)", vswitch->fdb.count);
	cr_assert_gt(vswitch->fdb.stats.evicted, 0);
	cr_assert_eq(vswitch->fdb.slot_mask + 1, 32768, "the table grew to its full size");
	unsigned int found = 0;
	for (unsigned int p = 0; p < 2; p++) {
		for (unsigned int i = 0; i < NB_MACS; i++) {
			struct rte_ether_addr mac = host_mac(p, i);
			uint16_t port = fdb_lookup(&vswitch->fdb, 0, &mac);
			if (port == FDB_PORT_NONE)
				continue; /* evicted */
			found++;
			/* The movers were seen on both ports; the two workers raced them. */
			if (p == 0 && i < 500)
				cr_assert(port == b.vports[0]->index || port == b.vports[3]->index,
				          "mover %u on port %u", i, port);
			else
				cr_assert_eq(port, b.vports[p]->index, "host %u of port %u", i, p);
		}
	}
	cr_assert_eq(found, LIMIT, "every entry is one of the hosts, found by its key");
	cr_assert_eq(b.vswitches.workers[1]->learn_dropped, 0, "no request lost");
	cr_assert_geq(vswitch->fdb.stats.moved, 1, "the movers moved");

	vswitch_clock_advance(&b.vswitches, 400 * SECOND);
	cr_assert_eq(vswitch->fdb.count, 0, "aged empty");
	vswitch_table_fini(&b.vswitches);
}

/* What each worker writes of a port (its counters, its transmit buffer) starts a cache line of
 * its own in a port the table made or an interface holds, whatever the allocator gives: two
 * workers that shared a line would pass it between their cores every burst. Four of each, so
 * four different offsets from a 16-byte-aligned allocator. */
Test(workers, each_workers_part_of_a_port_has_cache_lines_of_its_own)
{
	struct port_table table;
	struct pktpool_set pools;
	struct port_config config;
	struct rte_ring *rings[4][2];
	char name[32];

	port_table_init(&table);
	pktpool_set_init(&pools, "al", 0, 0);
	port_config_default(&config);
	config.nb_workers = 2;
	for (unsigned int p = 0; p < 4; p++) {
		struct port *port;
		for (unsigned int r = 0; r < 2; r++) {
			snprintf(name, sizeof(name), "al%u_%u", p, r);
			rings[p][r] = rte_ring_create(name, RING_SIZE, 0, 0);
			cr_assert_not_null(rings[p][r]);
		}
		snprintf(name, sizeof(name), "al%u", p);
		cr_assert_eq(port_table_add_rings(&table, name, rings[p][0], rings[p][1], &config,
		                                  &pools, &port),
		             0);
		for (unsigned int w = 0; w < PORT_MAX_WORKERS; w++)
			cr_assert_eq((uintptr_t)&port->workers[w] % RTE_CACHE_LINE_SIZE, 0,
			             "port %u, worker %u's part at %p", p, w,
			             (void *)&port->workers[w]);
	}
	port_table_fini(&table);
	pktpool_set_fini(&pools);
	/* Interfaces (a vmk's, a VM's vnic) hold their two ports inline. */
	struct iface *ifaces[4];
	for (unsigned int i = 0; i < 4; i++) {
		ifaces[i] = iface_alloc();
		cr_assert_not_null(ifaces[i]);
		for (unsigned int w = 0; w < PORT_MAX_WORKERS; w++) {
			cr_assert_eq((uintptr_t)&ifaces[i]->switch_side.workers[w] %
			                     RTE_CACHE_LINE_SIZE,
			             0);
			cr_assert_eq((uintptr_t)&ifaces[i]->host_side.workers[w] %
			                     RTE_CACHE_LINE_SIZE,
			             0);
		}
	}
	for (unsigned int i = 0; i < 4; i++)
		free(ifaces[i]);
	for (unsigned int p = 0; p < 4; p++)
		for (unsigned int r = 0; r < 2; r++)
			rte_ring_free(rings[p][r]);
}
