/* libFuzzer target: arbitrary bytes as frames into a host IPv4 interface (dataplane/netif), with
 * a neighbour already known and a UDP port bound. Any input must be handled or dropped for a
 * counted reason, never crash, and never leak a buffer.
 * Input: [length: 2 bytes LE][frame]... The length's top bits steer the harness, so random
 * bytes reach past the checks real frames pass: bit 15 keeps the frame's checksums as they are
 * (else an IPv4 frame gets right ones: header, and ICMP or UDP), bit 14 addresses it to the
 * interface (its MAC and IP). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>
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

/* Points an IPv4 frame at the interface and makes its checksums right, as the record says. */
static void steer(const struct netif *netif, uint8_t *frame, size_t len, bool to_us,
                  bool fix_checksums)
{
	uint16_t ethertype;

	if (len < 14 + sizeof(struct rte_ipv4_hdr))
		return;
	if (to_us)
		memcpy(frame, netif->mac.addr_bytes, 6);
	memcpy(&ethertype, frame + 12, 2);
	if (ethertype != RTE_BE16(RTE_ETHER_TYPE_IPV4))
		return;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(frame + 14);
	size_t header = (size_t)(ip->version_ihl & 0xf) * 4;
	if (to_us)
		ip->dst_addr = netif->ip;
	if (!fix_checksums || header < 20 || 14 + header > len)
		return;
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	size_t total = rte_be_to_cpu_16(ip->total_length);
	if (total < header || 14 + total > len)
		return;
	uint8_t *l4 = frame + 14 + header;
	size_t l4_len = total - header;
	if (ip->next_proto_id == IPPROTO_ICMP && l4_len >= sizeof(struct rte_icmp_hdr)) {
		struct rte_icmp_hdr *icmp = (struct rte_icmp_hdr *)l4;
		icmp->icmp_cksum = 0;
		icmp->icmp_cksum = (uint16_t)~rte_raw_cksum(l4, l4_len);
	} else if (ip->next_proto_id == IPPROTO_UDP && l4_len >= sizeof(struct rte_udp_hdr)) {
		struct rte_udp_hdr *udp = (struct rte_udp_hdr *)l4;
		udp->dgram_len = rte_cpu_to_be_16((uint16_t)l4_len);
		udp->dgram_cksum = 0;
		udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
	}
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
		size_t len = (size_t)data[0] | (size_t)(data[1] & 0x3f) << 8;
		bool keep_checksums = data[1] & 0x80, to_us = data[1] & 0x40;
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
		steer(&f->netif, (uint8_t *)room, len, to_us, !keep_checksums);
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
