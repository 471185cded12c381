/* libFuzzer target: arbitrary bytes as frames into a host IPv4 interface (dataplane/netif), with
 * a neighbour already known and a UDP port bound. Any input must be handled or dropped for a
 * counted reason, never crash, and never leak a buffer. Input: [length: 2 bytes LE][frame]... */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "dataplane/netif.h"

struct fuzz_netif {
	struct netif netif;
	struct rte_mempool *pool;
	uint64_t now_ns;
	uint8_t sink;
};

static void die(const char *what)
{
	fprintf(stderr, "fuzz_netif: %s\n", what);
	abort();
}

/* What the stack sends is dropped at once: only its buffers matter. */
static void discard(void *ctx, struct rte_mbuf **pkts, uint16_t n)
{
	(void)ctx;
	rte_pktmbuf_free_bulk(pkts, n);
}

static void swallow(void *ctx, uint32_t src_ip, uint16_t src_port, const uint8_t *payload,
                    uint16_t len, uint16_t dst_port)
{
	(void)src_ip;
	(void)src_port;
	(void)dst_port;
	/* Touch every byte, so a payload running past the frame shows up under ASan. */
	uint8_t sum = 0;
	for (uint16_t i = 0; i < len; i++)
		sum ^= payload[i];
	*(volatile uint8_t *)ctx = sum;
}

static struct fuzz_netif *fuzz_setup(void)
{
	static struct fuzz_netif f;
	char *argv[] = {"fuzz_netif", "--no-huge", "--no-shconf",    "-m",
	                "128",        "--no-pci",  "--no-telemetry", "--log-level=*:error"};
	struct netif_config config = {.name = "fuzz",
	                              .mac = {{0x02, 0, 0, 0, 0, 1}},
	                              .prefix_len = 24,
	                              .retrans_ns = 1000000000ull};

	if (rte_eal_init((int)RTE_DIM(argv), argv) < 0)
		die("EAL");
	f.pool = rte_pktmbuf_pool_create("fuzz_netif", 1023, 0, 0, 2048 + 128, SOCKET_ID_ANY);
	if (f.pool == NULL || netif_parse_ipv4("10.0.0.1", &config.ip) < 0 ||
	    netif_init(&f.netif, &config, f.pool, discard, NULL) < 0 ||
	    netif_udp_bind(&f.netif, 7, swallow, &f.sink) < 0)
		die("setup");
	return &f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_netif *f;

	if (f == NULL)
		f = fuzz_setup();
	while (size >= 2) {
		size_t len = (size_t)data[0] | (size_t)data[1] << 8;
		data += 2;
		size -= 2;
		if (len > size)
			len = size;
		if (len > 2048)
			len = 2048;
		struct rte_mbuf *m = rte_pktmbuf_alloc(f->pool);
		if (m == NULL)
			die("pool exhausted: a leak");
		char *room = rte_pktmbuf_append(m, (uint16_t)len);
		if (len > 0)
			memcpy(room, data, len);
		data += len;
		size -= len;
		netif_input(&f->netif, &m, 1, f->now_ns);
		f->now_ns += 100000000ull; /* a tenth of a second a frame: the timers run too */
		netif_tick(&f->netif, f->now_ns);
	}
	/* Frames may wait for ARP between inputs, at most the bounded queues' worth. */
	netif_neigh_flush(&f->netif);
	if (rte_mempool_in_use_count(f->pool) != 0)
		die("a buffer leaked");
	return 0;
}
