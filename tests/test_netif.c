/* Unit tests of the IPv4 host stack: two interfaces wired back to back in one process, on a
 * driven clock, and real captures played against it. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_arp.h>
#include <rte_eal.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "dataplane/netif.h"

#define SECOND 1000000000ull

/* A wire: frames one interface sent, waiting to be delivered (or inspected). */
struct wire {
	struct rte_mbuf *frames[512];
	unsigned int n;
};

static void wire_tx(void *ctx, struct rte_mbuf **pkts, uint16_t n)
{
	struct wire *w = ctx;
	for (uint16_t i = 0; i < n; i++) {
		cr_assert_lt(w->n, 512u);
		w->frames[w->n++] = pkts[i];
	}
}

static struct rte_mempool *pool;
static struct netif a, b;
static struct wire a_out, b_out;
static uint64_t now;

/* Delivers what each side sent to the other until both wires are quiet. */
static void pump(void)
{
	for (int round = 0; round < 100 && (a_out.n > 0 || b_out.n > 0); round++) {
		struct wire from_a = a_out, from_b = b_out;
		a_out.n = b_out.n = 0;
		netif_input(&b, from_a.frames, (uint16_t)from_a.n, now);
		netif_input(&a, from_b.frames, (uint16_t)from_b.n, now);
	}
}

static void wire_drop_all(struct wire *w)
{
	rte_pktmbuf_free_bulk(w->frames, w->n);
	w->n = 0;
}

static uint32_t ip4(const char *text)
{
	uint32_t ip;
	cr_assert_eq(netif_parse_ipv4(text, &ip), 0, "%s", text);
	return ip;
}

static struct netif_config config(const char *name, uint8_t last, const char *ip)
{
	struct netif_config c = {.name = name,
	                         .mac = {{0x02, 0, 0, 0, 0, last}},
	                         .ip = ip4(ip),
	                         .prefix_len = 24,
	                         .retrans_ns = SECOND,
	                         .max_probes = 3};
	return c;
}

static void setup(void)
{
	char *argv[] = {"test_netif", "--no-huge", "--no-shconf",    "-m",
	                "256",        "--no-pci",  "--no-telemetry", "--log-level=*:error"};
	cr_assert_geq(rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])), argv), 0);
	pool = rte_pktmbuf_pool_create("netif_test", 4095, 0, 0, 9216 + 128, SOCKET_ID_ANY);
	cr_assert_not_null(pool);
	now = 1000 * SECOND;
	struct netif_config ca = config("a", 1, "10.0.0.1"), cb = config("b", 2, "10.0.0.2");
	cr_assert_eq(netif_init(&a, &ca, pool, wire_tx, &a_out), 0);
	cr_assert_eq(netif_init(&b, &cb, pool, wire_tx, &b_out), 0);
	cr_assert_eq(a_out.n, 1, "a gratuitous ARP on bring-up");
	pump();
}

static void teardown(void)
{
	wire_drop_all(&a_out);
	wire_drop_all(&b_out);
	netif_fini(&a);
	netif_fini(&b);
	/* Nothing the stack took or made is left behind. */
	cr_assert_eq(rte_mempool_in_use_count(pool), 0u, "mbufs leaked");
}

TestSuite(netif, .init = setup, .fini = teardown);

struct echo_log {
	int count;
	uint32_t src;
	uint16_t id, seq, len;
};

static void on_echo(void *ctx, uint32_t src_ip, uint16_t id, uint16_t seq, uint16_t len,
                    uint8_t ttl)
{
	struct echo_log *log = ctx;
	(void)ttl;
	log->count++;
	log->src = src_ip;
	log->id = id;
	log->seq = seq;
	log->len = len;
}

Test(netif, resolves_with_arp_and_answers_ping)
{
	struct echo_log log = {0};

	netif_set_echo_handler(&a, on_echo, &log);
	cr_assert_eq(netif_ping(&a, ip4("10.0.0.2"), 7, 1, 56, true, now), 0);
	cr_assert_eq(a_out.n, 1, "the request waits; an ARP request goes out");
	pump();
	cr_assert_eq(log.count, 1);
	cr_assert_eq(log.src, ip4("10.0.0.2"));
	cr_assert_eq(log.id, 7);
	cr_assert_eq(log.seq, 1);
	cr_assert_eq(log.len, 56);
	const struct netif_neigh *n = netif_neigh_find(&a, ip4("10.0.0.2"));
	cr_assert_not_null(n);
	cr_assert_eq(n->state, NETIF_NEIGH_REACHABLE);
	cr_assert_eq(b.counters.echo_requests_rx, 1);
	cr_assert_eq(b.counters.arp_replies_tx, 1);
	cr_assert_not_null(netif_neigh_find(&b, ip4("10.0.0.1")), "b learned a from its request");
	/* Resolved: the next ping leaves at once. */
	cr_assert_eq(netif_ping(&a, ip4("10.0.0.2"), 7, 2, 1472, true, now), 0);
	cr_assert_eq(a_out.n, 1);
	pump();
	cr_assert_eq(log.count, 2);
	cr_assert_eq(log.len, 1472);
}

struct udp_log {
	int count;
	uint32_t src;
	uint16_t src_port;
	char payload[64];
};

static void on_udp(void *ctx, uint32_t src_ip, uint16_t src_port, const uint8_t *payload,
                   uint16_t len, uint16_t dst_port)
{
	(void)dst_port;
	struct udp_log *log = ctx;
	log->count++;
	log->src = src_ip;
	log->src_port = src_port;
	snprintf(log->payload, sizeof(log->payload), "%.*s", (int)len, (const char *)payload);
}

static void echo_back(void *ctx, uint32_t src_ip, uint16_t src_port, const uint8_t *payload,
                      uint16_t len, uint16_t dst_port)
{
	struct netif *self = ctx;
	netif_udp_send(self, src_ip, src_port, dst_port, payload, len, now);
}

Test(netif, udp_bind_send_and_echo)
{
	struct udp_log log = {0};

	cr_assert_eq(netif_udp_bind(&b, 7, echo_back, &b), 0);
	cr_assert_eq(netif_udp_bind(&b, 7, echo_back, &b), -EADDRINUSE);
	cr_assert_eq(netif_udp_bind(&a, 40000, on_udp, &log), 0);
	cr_assert_eq(netif_udp_send(&a, ip4("10.0.0.2"), 7, 40000, "hello", 5, now), 0);
	pump();
	cr_assert_eq(log.count, 1);
	cr_assert_str_eq(log.payload, "hello");
	cr_assert_eq(log.src_port, 7);
	cr_assert_eq(b.counters.udp_rx, 1);
	cr_assert_eq(a.counters.udp_rx, 1);
	netif_udp_unbind(&b, 7);
	cr_assert_eq(netif_udp_send(&a, ip4("10.0.0.2"), 7, 40000, "again", 5, now), 0);
	pump();
	cr_assert_eq(log.count, 1, "nobody listens any more");
	cr_assert_eq(b.counters.drops[NETIF_DROP_UDP_NO_LISTENER], 1);
	cr_assert_eq(b.counters.unreach_tx, 1, "a port unreachable went back");
	cr_assert_eq(a.counters.drops[NETIF_DROP_ICMP_TYPE], 1, "and a counted it");
}

/* A VM that just moved holds no neighbours: gleaning one from the datagram it answers sends the
 * answer at once; without it, the answer waits for ARP. */
Test(netif, a_gleaning_interface_answers_an_unknown_peer_without_asking)
{
	struct udp_log log = {0};

	cr_assert_eq(netif_udp_bind(&b, 7, echo_back, &b), 0);
	cr_assert_eq(netif_udp_bind(&a, 40000, on_udp, &log), 0);
	cr_assert_eq(netif_udp_send(&a, ip4("10.0.0.2"), 7, 40000, "one", 3, now), 0);
	pump();
	cr_assert_eq(log.count, 1);

	netif_neigh_flush(&b);
	uint64_t asked = b.counters.arp_requests_tx;
	cr_assert_eq(netif_udp_send(&a, ip4("10.0.0.2"), 7, 40000, "two", 3, now), 0);
	cr_assert_eq(a_out.n, 1, "a knows b: the datagram goes alone");
	pump();
	cr_assert_eq(log.count, 2);
	cr_assert_eq(b.counters.arp_requests_tx, asked + 1, "without gleaning, b asked for a");

	netif_neigh_flush(&b);
	b.glean = true;
	asked = b.counters.arp_requests_tx;
	cr_assert_eq(netif_udp_send(&a, ip4("10.0.0.2"), 7, 40000, "three", 5, now), 0);
	netif_input(&b, a_out.frames, (uint16_t)a_out.n, now);
	a_out.n = 0;
	/* The answer goes at once, beside the check of the gleaned entry (a request to its MAC). */
	bool answered = false;
	for (unsigned int f = 0; f < b_out.n; f++) {
		const struct rte_ether_hdr *eth =
		        rte_pktmbuf_mtod(b_out.frames[f], const struct rte_ether_hdr *);
		cr_assert(rte_is_same_ether_addr(&eth->dst_addr, &a.mac),
		          "to the MAC it came from");
		answered |= eth->ether_type == RTE_BE16(RTE_ETHER_TYPE_IPV4);
	}
	cr_assert(answered, "the answer went without waiting for ARP");
	pump();
	cr_assert_eq(log.count, 3);
	cr_assert_str_eq(log.payload, "three");
	const struct netif_neigh *n = netif_neigh_find(&b, ip4("10.0.0.1"));
	cr_assert_not_null(n);
	cr_assert_eq(n->state, NETIF_NEIGH_REACHABLE, "checked in passing, and confirmed");
}

/* A sealed payload goes without a UDP checksum (0: none, as IPv4 allows), and arrives. */
Test(netif, a_sealed_datagram_goes_without_a_checksum)
{
	struct udp_log log = {0};

	cr_assert_eq(netif_udp_bind(&b, 7, on_udp, &log), 0);
	netif_ping(&a, ip4("10.0.0.2"), 1, 1, 16, false, now); /* resolve b first */
	pump();
	cr_assert_eq(netif_udp_send_sealed(&a, ip4("10.0.0.2"), 7, 40000, "sealed", 6, now), 0);
	cr_assert_eq(a_out.n, 1);
	const struct rte_udp_hdr *udp =
	        rte_pktmbuf_mtod_offset(a_out.frames[0], const struct rte_udp_hdr *, 14 + 20);
	cr_assert_eq(udp->dgram_cksum, 0);
	pump();
	cr_assert_eq(log.count, 1);
	cr_assert_str_eq(log.payload, "sealed");
}

/* A free binding slot has port 0: a datagram to port 0 once found it and called a NULL handler
 * (fuzz_netif found it, seeded from real captures). It is a closed port like any other. */
Test(netif, a_datagram_to_port_zero_finds_no_listener)
{
	cr_assert_eq(netif_udp_send(&a, ip4("10.0.0.2"), 0, 40000, "zero", 4, now), 0);
	pump();
	cr_assert_eq(b.counters.udp_rx, 0);
	cr_assert_eq(b.counters.drops[NETIF_DROP_UDP_NO_LISTENER], 1);
}

Test(netif, port_unreachable_is_rate_limited)
{
	netif_ping(&a, ip4("10.0.0.2"), 1, 1, 8, false, now); /* resolve b first */
	pump();
	for (int i = 0; i < 30; i++)
		netif_udp_send(&a, ip4("10.0.0.2"), 9999, 40000, "x", 1, now);
	pump();
	cr_assert_eq(b.counters.drops[NETIF_DROP_UDP_NO_LISTENER], 30);
	cr_assert_eq(b.counters.unreach_tx, NETIF_UNREACH_PER_SEC);
	cr_assert_eq(b.counters.unreach_limited, 30 - NETIF_UNREACH_PER_SEC);
	now += SECOND;
	netif_udp_send(&a, ip4("10.0.0.2"), 9999, 40000, "x", 1, now);
	pump();
	cr_assert_eq(b.counters.unreach_tx, NETIF_UNREACH_PER_SEC + 1, "a new second, a new quota");
}

Test(netif, an_unanswered_neighbour_holds_a_bounded_queue_then_gives_up)
{
	uint32_t ghost = ip4("10.0.0.99");

	for (int i = 0; i < NETIF_NEIGH_QUEUE + 2; i++)
		netif_udp_send(&a, ghost, 9, 9, "x", 1, now);
	cr_assert_eq(a.counters.drops[NETIF_DROP_NEIGH_QUEUE_FULL], 2);
	cr_assert_eq(a.counters.arp_requests_tx, 2, "bring-up's gratuitous ARP and one request");
	wire_drop_all(&a_out);
	for (int t = 1; t <= 5; t++) {
		now += SECOND;
		netif_tick(&a, now);
	}
	cr_assert_eq(a.counters.arp_requests_tx, 4, "three requests in all, then it gives up");
	cr_assert_eq(a.counters.drops[NETIF_DROP_NEIGH_UNRESOLVED], NETIF_NEIGH_QUEUE);
	cr_assert_null(netif_neigh_find(&a, ghost));
	wire_drop_all(&a_out);
}

Test(netif, neighbours_go_stale_then_away_on_the_driven_clock)
{
	netif_ping(&a, ip4("10.0.0.2"), 1, 1, 8, false, now);
	pump();
	const struct netif_neigh *n = netif_neigh_find(&a, ip4("10.0.0.2"));
	cr_assert_eq(n->state, NETIF_NEIGH_REACHABLE);
	now += 30 * SECOND;
	netif_tick(&a, now);
	cr_assert_eq(n->state, NETIF_NEIGH_STALE);
	now += 60 * SECOND;
	netif_tick(&a, now);
	cr_assert_null(netif_neigh_find(&a, ip4("10.0.0.2")));
}

Test(netif, off_link_goes_to_the_gateway_or_nowhere)
{
	cr_assert_eq(netif_udp_send(&a, ip4("192.0.2.1"), 9, 9, "x", 1, now), -ENETUNREACH);
	cr_assert_eq(a.counters.drops[NETIF_DROP_NO_ROUTE], 1);
	cr_assert_eq(netif_set_address(&a, ip4("10.0.0.1"), 24, ip4("10.0.0.2")), 0);
	cr_assert_eq(netif_udp_send(&a, ip4("192.0.2.1"), 9, 9, "x", 1, now), 0);
	pump();
	cr_assert_not_null(netif_neigh_find(&a, ip4("10.0.0.2")), "the gateway was resolved");
	cr_assert_eq(b.counters.drops[NETIF_DROP_IP_NOT_OURS], 1, "b is no router");
}

Test(netif, datagrams_over_the_mtu_are_refused)
{
	cr_assert_eq(netif_ping(&a, ip4("10.0.0.2"), 1, 1, 1473, true, now), -EMSGSIZE);
	cr_assert_eq(a.counters.drops[NETIF_DROP_TOO_BIG], 1);
}

/* A valid echo request from a to b, as bytes, for the malformed cases. */
static struct rte_mbuf *captured_ping(void)
{
	netif_ping(&a, ip4("10.0.0.2"), 1, 1, 16, false, now);
	pump();
	netif_ping(&a, ip4("10.0.0.2"), 1, 2, 16, false, now);
	cr_assert_eq(a_out.n, 1);
	a_out.n = 0;
	return a_out.frames[0];
}

Test(netif, malformed_ipv4_is_dropped_and_counted_by_reason)
{
	struct rte_mbuf *good = captured_ping();
	struct {
		enum netif_drop_reason reason;
		void (*mangle)(uint8_t *frame, struct rte_mbuf *m);
	} cases[] = {
	        {NETIF_DROP_IP_CHECKSUM, NULL}, {NETIF_DROP_IP_VERSION, NULL},
	        {NETIF_DROP_IP_FRAGMENT, NULL}, {NETIF_DROP_IP_LENGTH, NULL},
	        {NETIF_DROP_IP_TTL, NULL},      {NETIF_DROP_ICMP_MALFORMED, NULL},
	};
	for (unsigned int i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rte_mbuf *m = rte_pktmbuf_copy(good, pool, 0, UINT32_MAX);
		uint8_t *f = rte_pktmbuf_mtod(m, uint8_t *);
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(f + 14);
		switch (cases[i].reason) {
		case NETIF_DROP_IP_CHECKSUM:
			ip->hdr_checksum ^= 1;
			break;
		case NETIF_DROP_IP_VERSION:
			ip->version_ihl = 0x65;
			break;
		case NETIF_DROP_IP_FRAGMENT:
			ip->fragment_offset = RTE_BE16(RTE_IPV4_HDR_MF_FLAG);
			ip->hdr_checksum = 0;
			ip->hdr_checksum = rte_ipv4_cksum(ip);
			break;
		case NETIF_DROP_IP_LENGTH:
			ip->total_length = rte_cpu_to_be_16(1400);
			ip->hdr_checksum = 0;
			ip->hdr_checksum = rte_ipv4_cksum(ip);
			break;
		case NETIF_DROP_IP_TTL:
			ip->time_to_live = 0;
			ip->hdr_checksum = 0;
			ip->hdr_checksum = rte_ipv4_cksum(ip);
			break;
		default:
			f[14 + 20 + 8] ^= 0xff; /* ICMP payload: its checksum no longer holds */
			break;
		}
		netif_input(&b, &m, 1, now);
		cr_assert_eq(b.counters.drops[cases[i].reason], 1, "case %u (%s)", i,
		             netif_drop_names[cases[i].reason]);
	}
	cr_assert_eq(b_out.n, 0, "nothing answered");
	netif_input(&b, &good, 1, now);
	cr_assert_eq(b_out.n, 1, "the good one is answered");
}

/* A UDP datagram from a to b on a closed port, as bytes, for the lying-header cases. */
static struct rte_mbuf *captured_udp(void)
{
	netif_ping(&a, ip4("10.0.0.2"), 1, 1, 16, false, now);
	pump();
	netif_udp_send(&a, ip4("10.0.0.2"), 9, 9, "12345678", 8, now);
	cr_assert_eq(a_out.n, 1);
	a_out.n = 0;
	return a_out.frames[0];
}

Test(netif, lying_udp_lengths_are_dropped_and_counted)
{
	struct rte_mbuf *good = captured_udp();
	const uint16_t lies[] = {0, 7, 17, 60000};

	for (unsigned int i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		struct rte_mbuf *m = rte_pktmbuf_copy(good, pool, 0, UINT32_MAX);
		struct rte_udp_hdr *udp = rte_pktmbuf_mtod_offset(m, struct rte_udp_hdr *, 14 + 20);
		udp->dgram_len = rte_cpu_to_be_16(lies[i]);
		netif_input(&b, &m, 1, now);
	}
	cr_assert_eq(b.counters.drops[NETIF_DROP_UDP_MALFORMED], 4);
	/* A wrong checksum is caught too. */
	struct rte_mbuf *m = rte_pktmbuf_copy(good, pool, 0, UINT32_MAX);
	rte_pktmbuf_mtod_offset(m, uint8_t *, 14 + 20 + 8)[0] ^= 1;
	netif_input(&b, &m, 1, now);
	cr_assert_eq(b.counters.drops[NETIF_DROP_UDP_MALFORMED], 5);
	cr_assert_eq(b_out.n, 0, "no port unreachable for a malformed datagram");
	rte_pktmbuf_free(good);
}

Test(netif, odd_arp_a_flood_and_broadcast_icmp_are_dropped_and_counted)
{
	/* ARP with odd lengths: a request for b whose hardware length is 14. */
	uint8_t frame[60] = {0};
	memset(frame, 0xff, 6);
	memcpy(frame + 6, a.mac.addr_bytes, 6);
	frame[12] = 0x08;
	frame[13] = 0x06;
	struct rte_arp_hdr *arp = (struct rte_arp_hdr *)(frame + 14);
	arp->arp_hardware = RTE_BE16(RTE_ARP_HRD_ETHER);
	arp->arp_protocol = RTE_BE16(RTE_ETHER_TYPE_IPV4);
	arp->arp_hlen = 14;
	arp->arp_plen = 4;
	arp->arp_opcode = RTE_BE16(RTE_ARP_OP_REQUEST);
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	memcpy(rte_pktmbuf_append(m, sizeof(frame)), frame, sizeof(frame));
	netif_input(&b, &m, 1, now);
	cr_assert_eq(b.counters.drops[NETIF_DROP_ARP_MALFORMED], 1);

	/* A flood of requests for other addresses: nothing answered, nothing kept. */
	arp->arp_hlen = 6;
	for (uint32_t i = 0; i < 1000; i++) {
		arp->arp_data.arp_sha = a.mac;
		arp->arp_data.arp_sip = rte_cpu_to_be_32(0x0a000100 + i);
		arp->arp_data.arp_tip = rte_cpu_to_be_32(0x0a000200 + i);
		m = rte_pktmbuf_alloc(pool);
		memcpy(rte_pktmbuf_append(m, sizeof(frame)), frame, sizeof(frame));
		netif_input(&b, &m, 1, now);
	}
	cr_assert_eq(b_out.n, 0);
	cr_assert_eq(b.counters.arp_requests_rx, 1 + 1000,
	             "a's gratuitous ARP at bring-up, then the flood: all counted");

	/* An echo request to the subnet's broadcast address is not answered (no smurf). */
	netif_ping(&a, ip4("10.0.0.255"), 1, 1, 8, false, now);
	pump();
	cr_assert_eq(b.counters.drops[NETIF_DROP_ICMP_BROADCAST], 1);
	cr_assert_eq(b.counters.echo_replies_tx, 0);
}

/* Plays a real capture's frames into an interface that owns one of its addresses. */
static unsigned int play(const char *file, struct netif *netif, unsigned int *frames)
{
	char path[512], errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *hdr;
	const unsigned char *data;

	snprintf(path, sizeof(path), "%s/%s", getenv("FERRY_SHARED_PCAPS"), file);
	pcap_t *p = pcap_open_offline(path, errbuf);
	if (p == NULL)
		return 0;
	*frames = 0;
	while (pcap_next_ex(p, &hdr, &data) == 1) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
		uint16_t len = (uint16_t)RTE_MIN(hdr->caplen, 9000u);
		memcpy(rte_pktmbuf_append(m, len), data, len);
		netif_input(netif, &m, 1, now);
		(*frames)++;
	}
	pcap_close(p);
	return 1;
}

Test(netif, answers_a_real_peer_byte_for_byte)
{
	/* cloudshark-arp: 10.10.10.2 asks for 10.10.10.1 (00:1d:09:f0:92:ab), then pings it. Be
	 * 10.10.10.1: our ARP reply and echo reply must carry what the real host's did. */
	struct netif real;
	struct wire out = {0};
	struct netif_config c = {.name = "real",
	                         .mac = {{0x00, 0x1d, 0x09, 0xf0, 0x92, 0xab}},
	                         .ip = ip4("10.10.10.1"),
	                         .prefix_len = 24};
	unsigned int frames;

	cr_assert_eq(netif_init(&real, &c, pool, wire_tx, &out), 0);
	wire_drop_all(&out);
	cr_assert(play("arkime--cloudshark-arp.pcap", &real, &frames));
	cr_assert_eq(frames, 6);
	cr_assert_eq(real.counters.arp_replies_tx, 1);
	cr_assert_eq(real.counters.echo_replies_tx, 1);

	char errbuf[PCAP_ERRBUF_SIZE], path[512];
	struct pcap_pkthdr *hdr;
	const unsigned char *data;
	snprintf(path, sizeof(path), "%s/arkime--cloudshark-arp.pcap",
	         getenv("FERRY_SHARED_PCAPS"));
	pcap_t *p = pcap_open_offline(path, errbuf);
	unsigned int checked = 0;
	for (unsigned int i = 1; pcap_next_ex(p, &hdr, &data) == 1; i++) {
		if (i == 2) { /* the real ARP reply: same Ethernet header and ARP body */
			const uint8_t *ours = rte_pktmbuf_mtod(out.frames[0], const uint8_t *);
			cr_assert_eq(memcmp(ours, data, 14 + 28), 0, "ARP reply differs");
			checked++;
		}
		if (i == 4) { /* the real echo reply: same ICMP message */
			const uint8_t *ours = rte_pktmbuf_mtod(out.frames[1], const uint8_t *);
			cr_assert_eq(memcmp(ours, data, 14), 0, "Ethernet header differs");
			cr_assert_eq(memcmp(ours + 34, data + 34, hdr->caplen - 34), 0,
			             "ICMP echo reply differs");
			checked++;
		}
	}
	pcap_close(p);
	cr_assert_eq(checked, 2);
	wire_drop_all(&out);
	netif_fini(&real);
}

Test(netif, every_real_capture_is_counted_and_nothing_leaks)
{
	DIR *d = opendir(getenv("FERRY_SHARED_PCAPS"));
	struct dirent *e;
	unsigned int files = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)) != NULL) {
		unsigned int frames = 0;
		if (strstr(e->d_name, ".pcap") == NULL || !play(e->d_name, &b, &frames))
			continue;
		files++;
		wire_drop_all(&b_out);
	}
	closedir(d);
	cr_assert_geq(files, 20);
	/* Every frame was handled or dropped for a counted reason. */
	const struct netif_counters *c = &b.counters;
	uint64_t dropped = 0;
	for (unsigned int r = 0; r < NETIF_DROP_MAX; r++)
		dropped += c->drops[r];
	uint64_t handled = c->arp_requests_rx + c->arp_replies_rx + c->arp_other_rx +
	                   c->echo_requests_rx + c->echo_replies_rx + c->udp_rx;
	cr_assert_gt(c->rx_packets, 3000);
	cr_assert_eq(c->rx_packets, dropped + handled, "rx %lu, dropped %lu, handled %lu",
	             (unsigned long)c->rx_packets, (unsigned long)dropped, (unsigned long)handled);
	cr_assert_gt(c->drops[NETIF_DROP_ARP_MALFORMED], 0, "the fuzzed ARP frames");
	cr_assert_gt(c->drops[NETIF_DROP_NOT_FOR_US], 0);
}
