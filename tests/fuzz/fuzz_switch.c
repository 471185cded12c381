/* libFuzzer target: arbitrary bytes become frames on the ports of a real vswitch (two uplinks,
 * two VM ports, two VLANs). Any input must be forwarded or dropped for a counted reason, never
 * crash, and never leak a buffer.
 *
 * Input: a sequence of records [port: 1 byte][length: 2 bytes, little endian][frame bytes]. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "dataplane/loop.h"
#include "dataplane/pktpool.h"
#include "dataplane/port.h"
#include "vswitch/vswitch.h"

#define FUZZ_PORTS 4

struct fuzz_switch {
	struct loop loop;
	struct pktpool_set pools;
	struct port_table ports;
	struct vswitch_table vswitches;
	struct vswitch_port *vports[FUZZ_PORTS];
	struct rte_mempool *frames;
	uint64_t now_ns;
};

static uint64_t fuzz_clock(void *arg)
{
	return ((struct fuzz_switch *)arg)->now_ns;
}

static void die(const char *what)
{
	fprintf(stderr, "fuzz_switch: %s\n", what);
	abort();
}

static struct fuzz_switch *fuzz_setup(void)
{
	static struct fuzz_switch fs;
	char *argv[] = {"fuzz_switch", "--no-huge", "--no-shconf",    "-m",
	                "256",         "--no-pci",  "--no-telemetry", "--log-level=*:error"};

	if (rte_eal_init((int)RTE_DIM(argv), argv) < 0)
		die("EAL");
	if (loop_init(&fs.loop, NULL, fuzz_clock, &fs) < 0)
		die("loop");
	pktpool_set_init(&fs.pools, "fuzz", 0, 0);
	port_table_init(&fs.ports);
	if (vswitch_table_init(&fs.vswitches, &fs.loop, 1) < 0)
		die("vswitch");
	struct vswitch *vs = vswitch_find(&fs.vswitches, VSWITCH_DEFAULT_NAME);
	struct vswitch_portgroup *native, *v10;
	if (vswitch_portgroup_add(&fs.vswitches, "native", vs, 0, &native) < 0 ||
	    vswitch_portgroup_add(&fs.vswitches, "v10", vs, 10, &v10) < 0)
		die("portgroups");
	/* A small table so that eviction runs too. */
	if (fdb_set_limit(&vs->fdb, 16) < 0)
		die("fdb limit");
	for (int i = 0; i < FUZZ_PORTS; i++) {
		char name[16], devargs[64];
		struct port *port;
		snprintf(name, sizeof(name), "p%d", i);
		snprintf(devargs, sizeof(devargs), "net_null%d,no-rx=1", i);
		if (port_table_add(&fs.ports, name, devargs, NULL, &fs.pools, &port) < 0)
			die("port");
		enum vswitch_role role = i < 2 ? VSWITCH_ROLE_UPLINK : VSWITCH_ROLE_VNIC;
		struct vswitch_portgroup *pg = i < 2 ? NULL : (i == 2 ? native : v10);
		if (vswitch_port_attach(vs, port, role, pg, &fs.vports[i]) < 0)
			die("attach");
	}
	fs.frames = rte_pktmbuf_pool_create("fuzz_frames", 1023, 0, 0, 2048 + 128, SOCKET_ID_ANY);
	if (fs.frames == NULL)
		die("frame pool");
	return &fs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_switch *fs;
	struct rte_mbuf *burst[FUZZ_PORTS][PORT_BURST];
	unsigned int nb[FUZZ_PORTS] = {0};

	if (fs == NULL)
		fs = fuzz_setup();
	while (size >= 3) {
		unsigned int port = data[0] % FUZZ_PORTS;
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;
		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		if (len > 2048)
			len = 2048;
		struct rte_mbuf *m = rte_pktmbuf_alloc(fs->frames);
		if (m == NULL)
			die("frame pool exhausted: a leak");
		memcpy(rte_pktmbuf_append(m, (uint16_t)len) ?: rte_pktmbuf_mtod(m, void *), data,
		       len);
		data += len;
		size -= len;
		burst[port][nb[port]++] = m;
		if (nb[port] == PORT_BURST) {
			vswitch_input(fs->vports[port], 0, burst[port], nb[port], fs->now_ns);
			nb[port] = 0;
		}
		fs->now_ns += 1000000000ull; /* a second per frame: aging happens too */
	}
	for (unsigned int p = 0; p < FUZZ_PORTS; p++)
		if (nb[p] > 0)
			vswitch_input(fs->vports[p], 0, burst[p], nb[p], fs->now_ns);
	vswitch_table_flush(&fs->vswitches, 0);
	fdb_age(&fs->vports[0]->vswitch->fdb, fs->now_ns);
	/* Every buffer came back: nothing is held between inputs. */
	if (rte_mempool_in_use_count(fs->frames) != 0)
		die("a frame buffer leaked");
	return 0;
}
