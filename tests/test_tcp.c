/* Unit tests of the VM's TCP on a driven clock, against a reference peer of our own that builds
 * and reads segments byte by byte: the handshake, echo and the line counter, the peer's window,
 * retransmission and its backoff, FIN and RST as RFC 9293 says, bad segments counted, a real
 * Linux SYN taken as it came, and a connection whose memory moves to another VM going on
 * byte-exactly. */
#include <criterion/criterion.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_arp.h>
#include <rte_eal.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "dataplane/netif.h"
#include "vm/machine.h"
#include "vm/tcp.h"
#include "vm/vm.h"
#include "vm/vm_synthetic.h"

#define MS       1000000ull
#define PEER_IP  RTE_BE32(RTE_IPV4(10, 0, 0, 99))
#define VM_IP    RTE_BE32(RTE_IPV4(10, 0, 0, 10))
#define PEER     40000
#define VM_PAGES 256 /* 1 MiB */

static struct rte_mempool *pool;
static struct machine memory;
static struct netif vnic;
static struct tcp tcp;
static struct rte_mbuf *sent[512];
static unsigned int nb_sent;
static uint64_t now;
static const struct rte_ether_addr peer_mac = {{0x02, 0x99, 0, 0, 0, 0x99}};

static void vm_tx(void *ctx, struct rte_mbuf **pkts, uint16_t n)
{
	(void)ctx;
	for (uint16_t i = 0; i < n; i++) {
		cr_assert_lt(nb_sent, 512u);
		sent[nb_sent++] = pkts[i];
	}
}

/* The VM's vnic (gleaning, as a VM's is) and its TCP over a machine's memory. */
static void stack_up(struct tcp *stack, struct machine *machine)
{
	struct netif_config config = {.name = "vm",
	                              .mac = {{0x02, 0, 0, 0, 0, 0x0a}},
	                              .ip = VM_IP,
	                              .prefix_len = 24,
	                              .glean = true};
	cr_assert_eq(netif_init(&vnic, &config, pool, vm_tx, NULL), 0);
	cr_assert_eq(tcp_init(stack, machine, vm_services_first_page(VM_PAGES), &vnic), 0);
	tcp_format(stack);
	rte_pktmbuf_free_bulk(sent, nb_sent); /* the gratuitous ARP */
	nb_sent = 0;
}

static void setup(void)
{
	static bool eal;
	char *argv[] = {"test_tcp", "--no-huge", "--no-shconf",    "-m",
	                "128",      "--no-pci",  "--no-telemetry", "--log-level=*:error"};
	if (!eal) {
		cr_assert_geq(rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])), argv), 0);
		pool = rte_pktmbuf_pool_create("tcp_test", 2047, 0, 0, 2048 + 128, SOCKET_ID_ANY);
		cr_assert_not_null(pool);
		eal = true;
	}
	now = 1000 * 1000 * MS;
	struct vm_workload idle = {.idle = true, .working_set_pages = 1};
	cr_assert_eq(machine_create(&memory, "vm", VM_PAGES / 256, MACHINE_BACKING_ANONYMOUS,
	                            &vm_synthetic_ops, &idle),
	             0);
	stack_up(&tcp, &memory);
}

static void teardown(void)
{
	rte_pktmbuf_free_bulk(sent, nb_sent);
	nb_sent = 0;
	netif_fini(&vnic);
	machine_destroy(&memory);
	cr_assert_eq(rte_mempool_in_use_count(pool), 0u, "mbufs leaked");
}

TestSuite(tcp, .init = setup, .fini = teardown);

/* A segment as the peer sends it or reads it. */
struct segment {
	uint16_t src_port, dst_port;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t window;
	uint16_t mss; /* a SYN's option, 0 if none */
	uint8_t data[2048];
	uint16_t len;
};

/* The peer sends a segment to the VM (options: raw bytes after the header). */
static void peer_send_raw(const struct segment *s, const uint8_t *options, uint8_t options_len,
                          bool corrupt)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	cr_assert_not_null(m);
	uint16_t tcp_len = (uint16_t)(sizeof(struct rte_tcp_hdr) + options_len + s->len);
	uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(14 + 20 + tcp_len));
	cr_assert_not_null(p);
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)p;
	eth->dst_addr = vnic.mac;
	eth->src_addr = peer_mac;
	eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(p + 14);
	*ip = (struct rte_ipv4_hdr){.version_ihl = RTE_IPV4_VHL_DEF,
	                            .total_length = rte_cpu_to_be_16((uint16_t)(20 + tcp_len)),
	                            .time_to_live = 64,
	                            .next_proto_id = IPPROTO_TCP,
	                            .src_addr = PEER_IP,
	                            .dst_addr = VM_IP};
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	struct rte_tcp_hdr *h = (struct rte_tcp_hdr *)(ip + 1);
	*h = (struct rte_tcp_hdr){.src_port = rte_cpu_to_be_16(s->src_port),
	                          .dst_port = rte_cpu_to_be_16(s->dst_port),
	                          .sent_seq = rte_cpu_to_be_32(s->seq),
	                          .recv_ack = rte_cpu_to_be_32(s->ack),
	                          .data_off = (uint8_t)(((20 + options_len) / 4) << 4),
	                          .tcp_flags = s->flags,
	                          .rx_win = rte_cpu_to_be_16(s->window)};
	if (options_len != 0)
		memcpy(h + 1, options, options_len);
	memcpy((uint8_t *)(h + 1) + options_len, s->data, s->len);
	h->cksum = rte_ipv4_udptcp_cksum(ip, h);
	if (corrupt)
		h->cksum ^= 0x1234;
	netif_input(&vnic, &m, 1, now);
}

static void peer_send(uint16_t port, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t window,
                      const char *data)
{
	struct segment s = {.src_port = PEER,
	                    .dst_port = port,
	                    .seq = seq,
	                    .ack = ack,
	                    .flags = flags,
	                    .window = window,
	                    .len = data != NULL ? (uint16_t)strlen(data) : 0};
	if (data != NULL)
		memcpy(s.data, data, s.len);
	peer_send_raw(&s, NULL, 0, false);
}

/* The peer answers the VM's ARP request (a host the VM just moved to knows no neighbour). */
static void peer_arp_reply(void)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	cr_assert_not_null(m);
	uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, 14 + sizeof(struct rte_arp_hdr));
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)p;
	eth->dst_addr = vnic.mac;
	eth->src_addr = peer_mac;
	eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_ARP);
	struct rte_arp_hdr *arp = (struct rte_arp_hdr *)(eth + 1);
	*arp = (struct rte_arp_hdr){.arp_hardware = RTE_BE16(RTE_ARP_HRD_ETHER),
	                            .arp_protocol = RTE_BE16(RTE_ETHER_TYPE_IPV4),
	                            .arp_hlen = 6,
	                            .arp_plen = 4,
	                            .arp_opcode = RTE_BE16(RTE_ARP_OP_REPLY)};
	arp->arp_data.arp_sha = peer_mac;
	arp->arp_data.arp_sip = PEER_IP;
	arp->arp_data.arp_tha = vnic.mac;
	arp->arp_data.arp_tip = VM_IP;
	netif_input(&vnic, &m, 1, now);
}

/* The next TCP segment the VM sent (ARP passed over); false when none. */
static bool vm_sent(struct segment *s)
{
	while (nb_sent > 0) {
		struct rte_mbuf *m = sent[0];
		memmove(sent, sent + 1, (nb_sent - 1) * sizeof(sent[0]));
		nb_sent--;
		const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
		const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(p + 14);
		if (((const struct rte_ether_hdr *)p)->ether_type !=
		            RTE_BE16(RTE_ETHER_TYPE_IPV4) ||
		    ip->next_proto_id != IPPROTO_TCP) {
			rte_pktmbuf_free(m);
			continue;
		}
		const struct rte_tcp_hdr *h = (const struct rte_tcp_hdr *)(ip + 1);
		cr_assert_eq(rte_ipv4_udptcp_cksum_verify(ip, h), 0, "our checksum is right");
		cr_assert_eq(ip->dst_addr, PEER_IP);
		cr_assert(rte_is_same_ether_addr(&((const struct rte_ether_hdr *)p)->dst_addr,
		                                 &peer_mac),
		          "to the peer's MAC, gleaned");
		uint16_t header = (uint16_t)((h->data_off >> 4) * 4);
		memset(s, 0, sizeof(*s));
		s->src_port = rte_be_to_cpu_16(h->src_port);
		s->dst_port = rte_be_to_cpu_16(h->dst_port);
		s->seq = rte_be_to_cpu_32(h->sent_seq);
		s->ack = rte_be_to_cpu_32(h->recv_ack);
		s->flags = h->tcp_flags;
		s->window = rte_be_to_cpu_16(h->rx_win);
		const uint8_t *o = (const uint8_t *)(h + 1);
		if (header == 24 && o[0] == 2 && o[1] == 4)
			s->mss = (uint16_t)(o[2] << 8 | o[3]);
		s->len = (uint16_t)(rte_be_to_cpu_16(ip->total_length) - 20 - header);
		memcpy(s->data, (const uint8_t *)h + header, s->len);
		rte_pktmbuf_free(m);
		return true;
	}
	return false;
}

/* The handshake with a service: returns the VM's ISS; the peer's ISS is 1000. */
static uint32_t connect_to(uint16_t port)
{
	struct segment s;
	const uint8_t mss[4] = {2, 4, 0x05, 0xb4};
	struct segment syn = {.src_port = PEER,
	                      .dst_port = port,
	                      .seq = 1000,
	                      .flags = RTE_TCP_SYN_FLAG,
	                      .window = 65535};
	peer_send_raw(&syn, mss, sizeof(mss), false);
	cr_assert(vm_sent(&s), "a SYN-ACK");
	cr_assert_eq(s.flags, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);
	cr_assert_eq(s.ack, 1001);
	cr_assert_eq(s.mss, TCP_MSS);
	cr_assert_eq(s.src_port, port);
	cr_assert_eq(tcp_connection(&tcp, 0)->state, TCP_SYN_RECEIVED);
	now += MS;
	peer_send(port, 1001, s.seq + 1, RTE_TCP_ACK_FLAG, 65535, NULL);
	cr_assert_eq(tcp_connection(&tcp, 0)->state, TCP_ESTABLISHED);
	cr_assert_not(vm_sent(&s), "nothing to say to a bare ACK");
	return s.seq;
}

Test(tcp, handshake_echo_and_close)
{
	struct segment s;
	uint32_t iss = connect_to(TCP_ECHO_PORT);

	peer_send(TCP_ECHO_PORT, 1001, iss + 1, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, 65535,
	          "hello");
	cr_assert(vm_sent(&s));
	cr_assert_eq(s.seq, iss + 1);
	cr_assert_eq(s.ack, 1006, "the data acknowledged");
	cr_assert_eq(s.len, 5);
	cr_assert_eq(memcmp(s.data, "hello", 5), 0, "and echoed");
	cr_assert_eq(s.window, TCP_BUFFER, "the service took it all");
	/* The peer closes: we acknowledge its FIN and, everything sent, close too. */
	peer_send(TCP_ECHO_PORT, 1006, iss + 6, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, 65535, NULL);
	cr_assert(vm_sent(&s));
	cr_assert_eq(s.flags, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG);
	cr_assert_eq(s.ack, 1007, "the FIN takes a number");
	cr_assert_eq(s.seq, iss + 6);
	cr_assert_eq(tcp_connection(&tcp, 0)->state, TCP_LAST_ACK);
	peer_send(TCP_ECHO_PORT, 1007, iss + 7, RTE_TCP_ACK_FLAG, 65535, NULL);
	cr_assert_eq(tcp_connection(&tcp, 0)->state, TCP_FREE, "closed");
	cr_assert_eq(tcp.stats.connections, 1);
}

Test(tcp, the_counter_answers_each_line_with_the_running_total)
{
	struct segment s;
	uint32_t iss = connect_to(TCP_COUNTER_PORT);

	peer_send(TCP_COUNTER_PORT, 1001, iss + 1, RTE_TCP_ACK_FLAG, 65535, "5\n7\nhello\n");
	cr_assert(vm_sent(&s));
	cr_assert_eq(s.len, 8);
	cr_assert_eq(memcmp(s.data, "5\n12\n13\n", 8), 0, "%.*s", s.len, s.data);
	/* A line split across segments is one line. */
	peer_send(TCP_COUNTER_PORT, 1011, s.seq + s.len, RTE_TCP_ACK_FLAG, 65535, "10");
	cr_assert(vm_sent(&s));
	cr_assert_eq(s.len, 0, "an ACK alone, no answer yet");
	peer_send(TCP_COUNTER_PORT, 1013, s.seq, RTE_TCP_ACK_FLAG, 65535, "0\n");
	cr_assert(vm_sent(&s));
	cr_assert_eq(memcmp(s.data, "113\n", 4), 0, "%.*s", s.len, s.data);
	cr_assert_eq(tcp_connection(&tcp, 0)->total, 113, "the total lives in the VM's memory");
}

Test(tcp, the_peers_window_and_a_retransmission_with_backoff)
{
	struct segment s;
	uint32_t iss = connect_to(TCP_ECHO_PORT);

	/* The peer opens only 3 bytes of window: 3 go, the rest wait. */
	peer_send(TCP_ECHO_PORT, 1001, iss + 1, RTE_TCP_ACK_FLAG, 3, "abcdefghij");
	cr_assert(vm_sent(&s));
	cr_assert_eq(s.len, 3);
	cr_assert_eq(memcmp(s.data, "abc", 3), 0);
	cr_assert_not(vm_sent(&s));
	/* No ACK: after the timeout (RFC 6298, 200 ms at least), the same bytes again. */
	uint32_t rto = tcp_connection(&tcp, 0)->rto_ms;
	cr_assert_geq(rto, TCP_RTO_MIN_MS);
	now += (uint64_t)rto * MS - 1;
	tcp_poll(&tcp, now);
	cr_assert_not(vm_sent(&s), "not before the timeout");
	now += 2;
	tcp_poll(&tcp, now);
	cr_assert(vm_sent(&s), "resent at the timeout");
	cr_assert_eq(s.seq, iss + 1);
	cr_assert_eq(memcmp(s.data, "abc", 3), 0);
	cr_assert_eq(tcp_connection(&tcp, 0)->rto_ms, 2 * rto, "the timeout doubled");
	cr_assert_eq(tcp.stats.retransmits, 1);
	/* The peer acknowledges 3 and opens its window: the rest goes. */
	peer_send(TCP_ECHO_PORT, 1011, iss + 4, RTE_TCP_ACK_FLAG, 100, NULL);
	cr_assert(vm_sent(&s));
	cr_assert_eq(s.seq, iss + 4);
	cr_assert_eq(s.len, 7);
	cr_assert_eq(memcmp(s.data, "defghij", 7), 0);
}

/* The echo's buffers fill while the peer acknowledges nothing and opens 1 byte of window: our
 * window shuts. The peer's ACK at the next byte is still taken for its acknowledgement (RFC 9293's
 * "special allowance"), the echo drains, the window opens again and the peer hears so. */
Test(tcp, an_ack_is_heard_with_our_window_shut)
{
	struct segment s;
	uint32_t iss = connect_to(TCP_ECHO_PORT), seq = 1001;
	char chunk[1025];

	memset(chunk, 'x', 1024);
	chunk[1024] = '\0';
	/* The peer's window is one byte: our echo waits in the send buffer, then the receive one. */
	for (int k = 0; k < 8; k++, seq += 1024)
		peer_send(TCP_ECHO_PORT, seq, iss + 1, RTE_TCP_ACK_FLAG, 1, chunk);
	const struct tcp_tcb *tcb = tcp_connection(&tcp, 0);
	cr_assert_eq(tcb->tx_len, TCP_BUFFER);
	cr_assert_eq(tcb->rx_len, TCP_BUFFER, "both buffers full: our window is shut");
	while (vm_sent(&s))
		;
	/* The peer probes the shut window with a byte, and its ACK of the one byte we could send
	 * rides on the probe (as Linux's persist timer sends it): the data is dropped, the ACK
	 * taken. */
	peer_send(TCP_ECHO_PORT, seq, iss + 2, RTE_TCP_ACK_FLAG, 65535, "p");
	cr_assert_eq(tcb->snd_una, iss + 2, "the ACK was taken though our window was shut");
	cr_assert_eq(tcp.stats.drops[TCP_DROP_OUT_OF_WINDOW], 1, "the probe's byte was not");
	/* The echo moved on: data goes out, and what it freed opens our window. */
	cr_assert(vm_sent(&s));
	cr_assert_eq(s.seq, iss + 2);
	cr_assert_gt(s.window, 0, "the window opened");
	cr_assert_eq(tcb->state, TCP_ESTABLISHED);
}

Test(tcp, resets_as_rfc_9293_says)
{
	struct segment s;

	/* A SYN to a closed port: RST and ACK of what it took. */
	peer_send(9, 5000, 0, RTE_TCP_SYN_FLAG, 1000, NULL);
	cr_assert(vm_sent(&s));
	cr_assert_eq(s.flags, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG);
	cr_assert_eq(s.seq, 0);
	cr_assert_eq(s.ack, 5001);
	/* An ACK for no connection: a RST at the number it acknowledged. */
	peer_send(TCP_ECHO_PORT, 6000, 777, RTE_TCP_ACK_FLAG, 1000, "x");
	cr_assert(vm_sent(&s));
	cr_assert_eq(s.flags, RTE_TCP_RST_FLAG);
	cr_assert_eq(s.seq, 777);
	cr_assert_eq(tcp.stats.drops[TCP_DROP_NO_CONNECTION], 2);
	/* A RST for no connection is not answered. */
	peer_send(TCP_ECHO_PORT, 6000, 0, RTE_TCP_RST_FLAG, 0, NULL);
	cr_assert_not(vm_sent(&s));

	uint32_t iss = connect_to(TCP_ECHO_PORT);
	/* A RST in the window but not at the next byte: a challenge ACK, the connection stays. */
	peer_send(TCP_ECHO_PORT, 1005, 0, RTE_TCP_RST_FLAG, 0, NULL);
	cr_assert(vm_sent(&s));
	cr_assert_eq(s.flags, RTE_TCP_ACK_FLAG);
	cr_assert_eq(s.ack, 1001);
	cr_assert_eq(tcp_connection(&tcp, 0)->state, TCP_ESTABLISHED);
	/* At the next byte: gone. */
	peer_send(TCP_ECHO_PORT, 1001, iss + 1, RTE_TCP_RST_FLAG, 0, NULL);
	cr_assert_eq(tcp_connection(&tcp, 0)->state, TCP_FREE);
}

Test(tcp, bad_segments_are_dropped_and_counted)
{
	struct segment s;
	uint32_t iss = connect_to(TCP_ECHO_PORT);
	struct segment bad = {.src_port = PEER,
	                      .dst_port = TCP_ECHO_PORT,
	                      .seq = 1001,
	                      .ack = iss + 1,
	                      .flags = RTE_TCP_ACK_FLAG,
	                      .window = 1000,
	                      .len = 4};
	memcpy(bad.data, "evil", 4);
	peer_send_raw(&bad, NULL, 0, true);
	cr_assert_eq(tcp.stats.drops[TCP_DROP_CHECKSUM], 1);
	cr_assert_not(vm_sent(&s), "nothing echoed");
	/* Far outside the window: acknowledged (where we are), dropped. */
	peer_send(TCP_ECHO_PORT, 1001 + 100000, iss + 1, RTE_TCP_ACK_FLAG, 1000, "late");
	cr_assert_eq(tcp.stats.drops[TCP_DROP_OUT_OF_WINDOW], 1);
	cr_assert(vm_sent(&s));
	cr_assert_eq(s.ack, 1001);
	cr_assert_eq(s.len, 0);
	/* Past the next byte with every range taken: dropped, for the peer to send again. */
	for (uint32_t gap = 0; gap < TCP_HELD_RANGES; gap++) {
		peer_send(TCP_ECHO_PORT, 1003 + 10 * gap, iss + 1, RTE_TCP_ACK_FLAG, 1000, "gap");
		cr_assert(vm_sent(&s));
	}
	cr_assert_eq(tcp.stats.drops[TCP_DROP_OUT_OF_ORDER], 0);
	peer_send(TCP_ECHO_PORT, 1003 + 10 * TCP_HELD_RANGES, iss + 1, RTE_TCP_ACK_FLAG, 1000,
	          "gap");
	cr_assert_eq(tcp.stats.drops[TCP_DROP_OUT_OF_ORDER], 1);
	cr_assert(vm_sent(&s));
	cr_assert_eq(s.ack, 1001, "a duplicate ACK");
	/* Acknowledging what was never sent. */
	peer_send(TCP_ECHO_PORT, 1001, iss + 500, RTE_TCP_ACK_FLAG, 1000, NULL);
	cr_assert_eq(tcp.stats.drops[TCP_DROP_BAD_ACK], 1);
	/* A header cut short. */
	struct segment runt = {.src_port = PEER, .dst_port = TCP_ECHO_PORT};
	const uint8_t big_offset[40] = {0};
	peer_send_raw(&runt, big_offset, 40, false);
	cr_assert_eq(tcp_connection(&tcp, 0)->state, TCP_ESTABLISHED, "nothing changed");
}

/* The move: the memory, page for page, into a new VM with a new stack (as a migration copies
 * it). */
static void move_to(struct machine *moved, struct tcp *there)
{
	struct vm_workload idle = {.idle = true, .working_set_pages = 1};

	cr_assert_eq(machine_create(moved, "moved", VM_PAGES / 256, MACHINE_BACKING_ANONYMOUS,
	                            &vm_synthetic_ops, &idle),
	             0);
	for (uint64_t p = 0; p < memory.nb_pages; p++)
		machine_page_load(moved, p, machine_page(&memory, p));
	netif_fini(&vnic);
	stack_up(there, moved);
}

/* A flight reordered on its way (as at a switchover, where part of it comes through the
 * source): what comes past a gap is held at its place and acknowledged as a duplicate; the
 * segment that fills the gap takes it all, and the service sees the bytes in order. */
Test(tcp, data_past_a_gap_is_held_until_the_gap_fills)
{
	struct segment s;
	uint32_t iss = connect_to(TCP_ECHO_PORT);
	const struct tcp_tcb *tcb = tcp_connection(&tcp, 0);

	peer_send(TCP_ECHO_PORT, 1006, iss + 1, RTE_TCP_ACK_FLAG, 65535, "world");
	cr_assert(vm_sent(&s));
	cr_assert_eq(s.ack, 1001, "a duplicate ACK, at once");
	cr_assert_eq(s.len, 0, "nothing for the service yet");
	cr_assert_not(vm_sent(&s));
	/* Touching the held range: one range. A second gap: two. */
	peer_send(TCP_ECHO_PORT, 1011, iss + 1, RTE_TCP_ACK_FLAG, 65535, "!!");
	cr_assert(vm_sent(&s));
	peer_send(TCP_ECHO_PORT, 1020, iss + 1, RTE_TCP_ACK_FLAG, 65535, "xyz");
	cr_assert(vm_sent(&s));
	cr_assert_eq(s.ack, 1001);
	cr_assert_eq(tcb->nb_held, 2);
	cr_assert_eq(tcb->held[0].start, 1006);
	cr_assert_eq(tcb->held[0].end, 1013);
	cr_assert_eq(tcb->held[1].start, 1020);
	cr_assert_eq(tcp.stats.segments_held, 3);
	/* The first gap fills: everything up to the second is the service's, echoed in order. */
	peer_send(TCP_ECHO_PORT, 1001, iss + 1, RTE_TCP_ACK_FLAG, 65535, "hello");
	cr_assert(vm_sent(&s));
	cr_assert_eq(s.ack, 1013, "what was held is acknowledged with it");
	cr_assert_eq(s.len, 12);
	cr_assert_eq(memcmp(s.data, "helloworld!!", 12), 0, "%.*s", s.len, s.data);
	cr_assert_eq(tcb->nb_held, 1);
	/* A segment over the second gap and part of what is held: the rest, in order. */
	peer_send(TCP_ECHO_PORT, 1013, iss + 13, RTE_TCP_ACK_FLAG, 65535, "12345678y");
	cr_assert(vm_sent(&s));
	cr_assert_eq(s.ack, 1023);
	cr_assert_eq(memcmp(s.data, "12345678yz", 10), 0, "%.*s", s.len, s.data);
	cr_assert_eq(tcb->nb_held, 0);
	cr_assert_eq(tcp.stats.drops[TCP_DROP_OUT_OF_ORDER], 0);
}

/* Held data is the VM's memory too: it moves with it, and the gap filled on the host the VM
 * moved to gives the service every byte. */
Test(tcp, held_data_moves_with_the_memory)
{
	struct segment s;
	uint32_t iss = connect_to(TCP_ECHO_PORT);

	peer_send(TCP_ECHO_PORT, 1004, iss + 1, RTE_TCP_ACK_FLAG, 65535, "held");
	cr_assert(vm_sent(&s));
	struct machine moved;
	struct tcp there;
	move_to(&moved, &there);
	peer_send(TCP_ECHO_PORT, 1001, iss + 1, RTE_TCP_ACK_FLAG, 65535, "is ");
	peer_arp_reply(); /* the new host asked who the peer is */
	cr_assert(vm_sent(&s));
	cr_assert_eq(s.ack, 1008);
	cr_assert_eq(memcmp(s.data, "is held", 7), 0, "%.*s", s.len, s.data);
	machine_destroy(&moved);
}

/* A block whose numbers the buffers cannot hold (memory from another host, written by no
 * stack of ours) is never used: a segment for it finds no connection, and the poll frees it. */
Test(tcp, a_block_the_buffers_cannot_hold_is_discarded)
{
	struct segment s;
	uint32_t iss = connect_to(TCP_ECHO_PORT);
	struct tcp_tcb *tcb = (struct tcp_tcb *)tcp_connection(&tcp, 0);

	tcb->rx_head = TCP_BUFFER + 100;
	peer_send(TCP_ECHO_PORT, 1001, iss + 1, RTE_TCP_ACK_FLAG, 65535, "hello");
	cr_assert_eq(tcp.stats.drops[TCP_DROP_NO_CONNECTION], 1);
	cr_assert(vm_sent(&s));
	cr_assert(s.flags & RTE_TCP_RST_FLAG, "answered with a RST");
	tcb->rx_head = 0;
	tcb->mss = 0; /* would send empty segments for ever */
	tcp_poll(&tcp, now);
	cr_assert_eq(tcb->state, TCP_FREE);
	cr_assert_eq(tcp.stats.blocks_discarded, 1);
	cr_assert_not(vm_sent(&s));
}

/* A SYN with the options in the order and layout Linux sends them (MSS 1460, SACK permitted,
 * timestamps, window scale 7; written here, the captures' own SYNs are the next test): taken
 * with its MSS, the rest of the options passed over. */
Test(tcp, a_syn_with_linux_options)
{
	struct segment s;
	const uint8_t options[20] = {2,    4,    0x05, 0xb4, 4, 2, 8, 10, 0x8a, 0x3c,
	                             0x1d, 0x5e, 0,    0,    0, 0, 1, 3,  3,    7};
	struct segment syn = {.src_port = PEER,
	                      .dst_port = TCP_COUNTER_PORT,
	                      .seq = 0x9d2f6a11,
	                      .flags = RTE_TCP_SYN_FLAG,
	                      .window = 64240};
	peer_send_raw(&syn, options, sizeof(options), false);
	cr_assert(vm_sent(&s));
	cr_assert_eq(s.flags, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);
	cr_assert_eq(s.ack, 0x9d2f6a12);
	cr_assert_eq(tcp_connection(&tcp, 0)->mss, 1460);
	cr_assert_eq(tcp_connection(&tcp, 0)->snd_wnd, 64240);
}

/* Every SYN in the real captures that hold some (a browser's, Windows' MAPI client's, nmap's
 * probes: their own options in their own order), sent to the echo port from the peer: each gets
 * our SYN-ACK for its number, and its MSS is read (or 536 without one). */
Test(tcp, real_syns_from_captures)
{
	const char *dir = getenv("FERRY_SHARED_PCAPS");
	const char *files[] = {"zeek--cooper-grill-dvwa.pcapng", "zeek--dce-rpc-mapi.pcap",
	                       "zeek--nmap-vsn.pcap"};
	unsigned int syns = 0;

	cr_assert_not_null(dir, "FERRY_SHARED_PCAPS names the captures");
	for (unsigned int f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		char path[512], error[PCAP_ERRBUF_SIZE];
		snprintf(path, sizeof(path), "%s/%s", dir, files[f]);
		pcap_t *pcap = pcap_open_offline(path, error);
		cr_assert_not_null(pcap, "%s: %s", path, error);
		cr_assert_eq(pcap_datalink(pcap), DLT_EN10MB);
		struct pcap_pkthdr *hdr;
		const uint8_t *frame;
		while (pcap_next_ex(pcap, &hdr, &frame) == 1) {
			if (hdr->caplen < 14 + 20 + 20 || frame[12] != 0x08 || frame[13] != 0x00)
				continue;
			const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(frame + 14);
			uint32_t ihl = rte_ipv4_hdr_len(ip);
			if (ip->next_proto_id != IPPROTO_TCP || hdr->caplen < 14 + ihl + 20)
				continue;
			const struct rte_tcp_hdr *h =
			        (const struct rte_tcp_hdr *)((const uint8_t *)ip + ihl);
			uint32_t header = (uint32_t)(h->data_off >> 4) * 4;
			if ((h->tcp_flags & (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG)) !=
			            RTE_TCP_SYN_FLAG ||
			    header < 20 || hdr->caplen < 14 + ihl + header)
				continue;
			struct segment syn = {.src_port = PEER,
			                      .dst_port = TCP_ECHO_PORT,
			                      .seq = rte_be_to_cpu_32(h->sent_seq),
			                      .flags = h->tcp_flags,
			                      .window = rte_be_to_cpu_16(h->rx_win)};
			peer_send_raw(&syn, (const uint8_t *)(h + 1), (uint8_t)(header - 20),
			              false);
			struct segment s;
			cr_assert(vm_sent(&s), "%s: SYN %u answered", files[f], syns);
			cr_assert_eq(s.flags, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);
			cr_assert_eq(s.ack, syn.seq + 1);
			cr_assert_eq(s.mss, TCP_MSS);
			const struct tcp_tcb *tcb = tcp_connection(&tcp, 0);
			cr_assert(tcb->mss >= 64 && tcb->mss <= TCP_MSS, "MSS %u", tcb->mss);
			/* Gone again (a RST at the next byte), so the next has the slot. */
			peer_send(TCP_ECHO_PORT, syn.seq + 1, 0, RTE_TCP_RST_FLAG, 0, NULL);
			cr_assert_eq(tcb->state, TCP_FREE);
			syns++;
		}
		pcap_close(pcap);
	}
	cr_assert_geq(syns, 20, "the captures hold 27 SYNs (%u taken)", syns);
}

/* The connection's state is the VM's memory: copied into another VM (as a migration copies it),
 * the conversation goes on there byte for byte, and the unacknowledged bytes are resent from
 * there after its own timeout. */
Test(tcp, a_connection_goes_on_in_the_memory_it_moved_to)
{
	struct segment s;
	uint32_t iss = connect_to(TCP_COUNTER_PORT);

	peer_send(TCP_COUNTER_PORT, 1001, iss + 1, RTE_TCP_ACK_FLAG, 65535, "40\n");
	cr_assert(vm_sent(&s));
	cr_assert_eq(memcmp(s.data, "40\n", 3), 0);
	uint32_t unacked = s.seq;
	struct machine moved;
	struct tcp there;
	move_to(&moved, &there);
	cr_assert_eq(tcp_connection(&there, 0)->state, TCP_ESTABLISHED, "it came along");
	/* The answer "40\n" was never acknowledged: the new host's timer sends it again. */
	tcp_poll(&there, now);
	now += (uint64_t)tcp_connection(&there, 0)->rto_ms * MS;
	tcp_poll(&there, now);
	peer_arp_reply(); /* the new host asked who the peer is */
	cr_assert(vm_sent(&s), "resent from the new host");
	cr_assert_eq(s.seq, unacked);
	cr_assert_eq(memcmp(s.data, "40\n", 3), 0);
	/* And the total goes on where it was. */
	peer_send(TCP_COUNTER_PORT, 1004, unacked + 3, RTE_TCP_ACK_FLAG, 65535, "2\n");
	cr_assert(vm_sent(&s));
	cr_assert_eq(s.seq, unacked + 3);
	cr_assert_eq(memcmp(s.data, "42\n", 3), 0, "%.*s", s.len, s.data);
	machine_destroy(&moved);
}
