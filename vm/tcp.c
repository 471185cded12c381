/* The emulated VM's TCP: a small RFC 9293 server whose connections live in the VM's memory. */
#include "tcp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_random.h>
#include <rte_tcp.h>

#include "dataplane/netif.h"
#include "vm/machine.h"

const char *const tcp_drop_names[TCP_DROP_MAX] = {
#define TCP_DROP_NAME(e, name, text) [TCP_DROP_##e] = name,
        TCP_DROP_REASONS(TCP_DROP_NAME)
#undef TCP_DROP_NAME
};

const char *const tcp_drop_descriptions[TCP_DROP_MAX] = {
#define TCP_DROP_TEXT(e, name, text) [TCP_DROP_##e] = text,
        TCP_DROP_REASONS(TCP_DROP_TEXT)
#undef TCP_DROP_TEXT
};

#define TCP_HEADER 20

/* Sequence numbers compare modulo 2^32 (RFC 9293 3.4). */
static inline bool seq_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static inline bool seq_leq(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) <= 0;
}

static struct tcp_region *region(const struct tcp *tcp)
{
	return (struct tcp_region *)machine_page(tcp->machine, tcp->first_page);
}

static uint8_t *rx_buffer(const struct tcp *tcp, unsigned int i)
{
	return machine_page(tcp->machine, tcp->first_page + 1 + 2 * i);
}

static uint8_t *tx_buffer(const struct tcp *tcp, unsigned int i)
{
	return machine_page(tcp->machine, tcp->first_page + 2 + 2 * i);
}

/* The host wrote a connection's state and buffers: the VM's dirty log says so, so a migration
 * sends them again. */
static void written(struct tcp *tcp, unsigned int i)
{
	machine_dirty(tcp->machine, tcp->first_page);
	machine_dirty(tcp->machine, tcp->first_page + 1 + 2 * i);
	machine_dirty(tcp->machine, tcp->first_page + 2 + 2 * i);
}

const char *tcp_state_name(enum tcp_state state)
{
	static const char *const names[TCP_STATE_MAX] = {
	        [TCP_FREE] = "free",
	        [TCP_SYN_RECEIVED] = "syn-received",
	        [TCP_ESTABLISHED] = "established",
	        [TCP_CLOSE_WAIT] = "close-wait",
	        [TCP_LAST_ACK] = "last-ack",
	};
	return (unsigned int)state < TCP_STATE_MAX ? names[state] : "?";
}

const struct tcp_tcb *tcp_connection(const struct tcp *tcp, unsigned int i)
{
	return i < TCP_CONNECTIONS ? &region(tcp)->tcbs[i] : NULL;
}

/* A checksum over the pseudo-header and the segment (RFC 9293 3.1). */
static uint16_t checksum(uint32_t src_ip, uint32_t dst_ip, const void *segment, uint16_t len)
{
	struct rte_ipv4_hdr ip = {
	        .version_ihl = RTE_IPV4_VHL_DEF,
	        .total_length = rte_cpu_to_be_16((uint16_t)(sizeof(ip) + len)),
	        .next_proto_id = IPPROTO_TCP,
	        .src_addr = src_ip,
	        .dst_addr = dst_ip,
	};
	return rte_ipv4_udptcp_cksum(&ip, segment);
}

static uint16_t window_of(const struct tcp_tcb *tcb)
{
	return (uint16_t)(TCP_BUFFER - tcb->rx_len);
}

/* Sends one segment: flags, a sequence number, and len bytes of the send buffer from offset
 * (the ring wraps; a SYN-ACK also says our MSS). */
static void send_segment(struct tcp *tcp, unsigned int i, uint8_t flags, uint32_t seq,
                         uint32_t offset, uint16_t len, uint64_t now)
{
	struct tcp_tcb *tcb = &region(tcp)->tcbs[i];
	uint8_t segment[TCP_HEADER + 4 + TCP_MSS];
	uint16_t header = (flags & RTE_TCP_SYN_FLAG) ? TCP_HEADER + 4 : TCP_HEADER;
	struct rte_tcp_hdr *h = (struct rte_tcp_hdr *)segment;

	*h = (struct rte_tcp_hdr){
	        .src_port = rte_cpu_to_be_16(tcb->local_port),
	        .dst_port = tcb->remote_port,
	        .sent_seq = rte_cpu_to_be_32(seq),
	        .recv_ack = rte_cpu_to_be_32(tcb->rcv_nxt),
	        .data_off = (uint8_t)((header / 4) << 4),
	        .tcp_flags = flags,
	        .rx_win = rte_cpu_to_be_16(window_of(tcb)),
	};
	if (flags & RTE_TCP_SYN_FLAG) {
		const uint8_t mss[4] = {2, 4, TCP_MSS >> 8, TCP_MSS & 0xff};
		memcpy(segment + TCP_HEADER, mss, sizeof(mss));
	}
	const uint8_t *buffer = tx_buffer(tcp, i);
	for (uint16_t b = 0; b < len; b++)
		segment[header + b] = buffer[(offset + b) % TCP_BUFFER];
	h->cksum = checksum(tcp->netif->ip, tcb->remote_ip, segment, (uint16_t)(header + len));
	if (netif_ip_send(tcp->netif, tcb->remote_ip, IPPROTO_TCP, segment,
	                  (uint16_t)(header + len), now) == 0)
		tcp->stats.segments_tx++;
}

/* A RST for a segment no connection takes (RFC 9293 3.10.7.1). */
static void send_reset(struct tcp *tcp, uint32_t src_ip, const struct rte_tcp_hdr *in,
                       uint32_t seg_len, uint64_t now)
{
	struct rte_tcp_hdr h = {
	        .src_port = in->dst_port,
	        .dst_port = in->src_port,
	        .data_off = (TCP_HEADER / 4) << 4,
	};
	if (in->tcp_flags & RTE_TCP_ACK_FLAG) {
		h.sent_seq = in->recv_ack;
		h.tcp_flags = RTE_TCP_RST_FLAG;
	} else {
		h.recv_ack = rte_cpu_to_be_32(rte_be_to_cpu_32(in->sent_seq) + seg_len);
		h.tcp_flags = RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG;
	}
	h.cksum = checksum(tcp->netif->ip, src_ip, &h, sizeof(h));
	if (netif_ip_send(tcp->netif, src_ip, IPPROTO_TCP, &h, sizeof(h), now) == 0)
		tcp->stats.resets_tx++;
}

static void release(struct tcp *tcp, unsigned int i)
{
	memset(&region(tcp)->tcbs[i], 0, sizeof(struct tcp_tcb));
	tcp->deadline_ns[i] = 0;
	tcp->rtt_start_ns[i] = 0;
	written(tcp, i);
}

static void send_ack(struct tcp *tcp, unsigned int i, uint64_t now)
{
	send_segment(tcp, i, RTE_TCP_ACK_FLAG, region(tcp)->tcbs[i].snd_nxt, 0, 0, now);
}

/* Sends what the send buffer holds past snd_nxt, as the peer's window allows, then our FIN once
 * the service is done (the peer closed, and everything went); arms the timer. */
static void output(struct tcp *tcp, unsigned int i, uint64_t now)
{
	struct tcp_tcb *tcb = &region(tcp)->tcbs[i];

	if (tcb->state == TCP_SYN_RECEIVED || tcb->state == TCP_FREE)
		return;
	for (;;) {
		uint32_t sent = tcb->snd_nxt - tcb->snd_una - (tcb->fin_sent ? 1 : 0);
		if (tcb->fin_sent || sent >= tcb->tx_len)
			break;
		uint32_t window = tcb->snd_una + tcb->snd_wnd - tcb->snd_nxt;
		if ((int32_t)window <= 0)
			break;
		uint32_t len = RTE_MIN(RTE_MIN(tcb->tx_len - sent, tcb->mss), window);
		uint32_t offset = tcb->snd_nxt - tcb->iss - 1;
		send_segment(tcp, i, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, tcb->snd_nxt, offset,
		             (uint16_t)len, now);
		if (tcp->rtt_start_ns[i] == 0) {
			tcp->rtt_start_ns[i] = now;
			tcp->rtt_seq[i] = tcb->snd_nxt + len;
		}
		tcb->snd_nxt += len;
	}
	bool all_sent = tcb->snd_nxt - tcb->snd_una == tcb->tx_len;
	if (tcb->state == TCP_CLOSE_WAIT && all_sent && !tcb->fin_sent) {
		send_segment(tcp, i, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, tcb->snd_nxt, 0, 0, now);
		tcb->snd_nxt++;
		tcb->fin_sent = 1;
		tcb->state = TCP_LAST_ACK;
	}
	if (tcb->snd_nxt != tcb->snd_una && tcp->deadline_ns[i] == 0)
		tcp->deadline_ns[i] = now + (uint64_t)tcb->rto_ms * 1000000;
	written(tcp, i);
}

/* Appends to the send buffer; returns the bytes taken. */
static uint32_t tx_append(struct tcp *tcp, unsigned int i, const uint8_t *data, uint32_t len)
{
	struct tcp_tcb *tcb = &region(tcp)->tcbs[i];
	uint8_t *buffer = tx_buffer(tcp, i);
	uint32_t room = TCP_BUFFER - tcb->tx_len, end = tcb->snd_una - tcb->iss - 1 + tcb->tx_len;

	/* Past a FIN sent, the sequence space holds one more: nothing is appended then. */
	if (tcb->fin_sent)
		return 0;
	len = RTE_MIN(len, room);
	for (uint32_t b = 0; b < len; b++)
		buffer[(end + b) % TCP_BUFFER] = data[b];
	tcb->tx_len += len;
	return len;
}

/* The services take what came: echo sends it back as far as the send buffer has room; the
 * counter reads lines and answers each with the running total. */
static void serve(struct tcp *tcp, unsigned int i)
{
	struct tcp_tcb *tcb = &region(tcp)->tcbs[i];
	const uint8_t *buffer = rx_buffer(tcp, i);

	while (tcb->rx_len > 0) {
		uint8_t byte = buffer[tcb->rx_head];
		if (tcb->local_port == TCP_ECHO_PORT) {
			if (tx_append(tcp, i, &byte, 1) == 0)
				break;
		} else if (byte == '\n') {
			char answer[24];
			uint64_t total = tcb->total + (tcb->line_digits != 0 ? tcb->line_value : 1);
			int n = snprintf(answer, sizeof(answer), "%lu\n", (unsigned long)total);
			if (TCP_BUFFER - tcb->tx_len < (uint32_t)n || tcb->fin_sent)
				break; /* the answer waits for room, and so does the rest */
			tx_append(tcp, i, (const uint8_t *)answer, (uint32_t)n);
			tcb->total = total;
			tcb->line_value = 0;
			tcb->line_digits = 0;
		} else if (byte >= '0' && byte <= '9' && tcb->line_digits < 19) {
			tcb->line_value = tcb->line_value * 10 + (uint64_t)(byte - '0');
			tcb->line_digits++;
		}
		tcb->rx_head = (tcb->rx_head + 1) % TCP_BUFFER;
		tcb->rx_len--;
	}
}

/* RFC 6298: a round-trip sample updates the estimate and the timeout. */
static void rtt_sample(struct tcp_tcb *tcb, uint64_t sample_ns)
{
	uint32_t r = (uint32_t)RTE_MIN(sample_ns / 1000, UINT32_MAX);

	if (tcb->srtt_us == 0) {
		tcb->srtt_us = r;
		tcb->rttvar_us = r / 2;
	} else {
		uint32_t diff = tcb->srtt_us > r ? tcb->srtt_us - r : r - tcb->srtt_us;
		tcb->rttvar_us = (3 * tcb->rttvar_us + diff) / 4;
		tcb->srtt_us = (7 * tcb->srtt_us + r) / 8;
	}
	uint32_t rto = (tcb->srtt_us + RTE_MAX(1000u, 4 * tcb->rttvar_us)) / 1000;
	tcb->rto_ms = RTE_MIN(RTE_MAX(rto, (uint32_t)TCP_RTO_MIN_MS), (uint32_t)TCP_RTO_MAX_MS);
}

/* Whether a block's numbers may size and index the buffers: the VM's memory may have come
 * from another host, so they are checked before they are used. */
static bool tcb_sane(const struct tcp_tcb *tcb)
{
	return tcb->state < TCP_STATE_MAX && tcb->rx_head < TCP_BUFFER &&
	       tcb->rx_len <= TCP_BUFFER && tcb->tx_len <= TCP_BUFFER &&
	       tcb->nb_held <= TCP_HELD_RANGES && tcb->mss >= 64 && tcb->mss <= TCP_MSS;
}

static unsigned int find(const struct tcp *tcp, uint32_t ip, uint16_t port, uint16_t local)
{
	const struct tcp_region *r = region(tcp);

	for (unsigned int i = 0; i < TCP_CONNECTIONS; i++)
		if (r->tcbs[i].state != TCP_FREE && tcb_sane(&r->tcbs[i]) &&
		    r->tcbs[i].remote_ip == ip && r->tcbs[i].remote_port == port &&
		    r->tcbs[i].local_port == local)
			return i;
	return TCP_CONNECTIONS;
}

/* The MSS option of a SYN (RFC 9293 3.7.1), 536 without one. */
static uint32_t peer_mss(const uint8_t *options, uint16_t len)
{
	for (uint16_t at = 0; at < len;) {
		uint8_t kind = options[at];
		if (kind == 0)
			break;
		if (kind == 1) {
			at++;
			continue;
		}
		if (at + 1 >= len || options[at + 1] < 2 || at + options[at + 1] > len)
			break;
		if (kind == 2 && options[at + 1] == 4) {
			uint32_t mss = (uint32_t)options[at + 2] << 8 | options[at + 3];
			return RTE_MIN(RTE_MAX(mss, 64u), (uint32_t)TCP_MSS);
		}
		at = (uint16_t)(at + options[at + 1]);
	}
	return 536;
}

/* LISTEN: a SYN to a service opens a connection (SYN-RECEIVED) and is answered with our SYN. */
static void open_passive(struct tcp *tcp, uint32_t src_ip, const struct rte_tcp_hdr *h,
                         uint16_t header, uint64_t now)
{
	struct tcp_region *r = region(tcp);
	unsigned int i = 0;

	while (i < TCP_CONNECTIONS && r->tcbs[i].state != TCP_FREE)
		i++;
	if (i == TCP_CONNECTIONS) {
		tcp->stats.drops[TCP_DROP_NO_ROOM]++;
		send_reset(tcp, src_ip, h, 1, now);
		return;
	}
	struct tcp_tcb *tcb = &r->tcbs[i];
	memset(tcb, 0, sizeof(*tcb));
	tcb->state = TCP_SYN_RECEIVED;
	tcb->local_port = rte_be_to_cpu_16(h->dst_port);
	tcb->remote_port = h->src_port;
	tcb->remote_ip = src_ip;
	tcb->irs = rte_be_to_cpu_32(h->sent_seq);
	tcb->rcv_nxt = tcb->irs + 1;
	tcb->iss = r->iss_next;
	r->iss_next += 0x10000 + (uint32_t)(rte_rand() & 0xffff);
	tcb->snd_una = tcb->iss;
	tcb->snd_nxt = tcb->iss + 1;
	tcb->snd_wnd = rte_be_to_cpu_16(h->rx_win);
	tcb->mss = peer_mss((const uint8_t *)(h + 1), (uint16_t)(header - TCP_HEADER));
	tcb->rto_ms = TCP_RTO_INITIAL_MS;
	tcp->stats.connections++;
	send_segment(tcp, i, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, tcb->iss, 0, 0, now);
	tcp->deadline_ns[i] = now + (uint64_t)tcb->rto_ms * 1000000;
	tcp->rtt_start_ns[i] = now;
	tcp->rtt_seq[i] = tcb->snd_nxt;
	written(tcp, i);
}

/* RFC 9293 3.10.7.4's acceptability test, with our receive window. */
static bool acceptable(const struct tcp_tcb *tcb, uint32_t seq, uint32_t seg_len)
{
	uint32_t wnd = window_of(tcb);

	if (seg_len == 0)
		return wnd == 0 ? seq == tcb->rcv_nxt
		                : seq_leq(tcb->rcv_nxt, seq) && seq_lt(seq, tcb->rcv_nxt + wnd);
	if (wnd == 0)
		return false;
	uint32_t last = seq + seg_len - 1;
	return (seq_leq(tcb->rcv_nxt, seq) && seq_lt(seq, tcb->rcv_nxt + wnd)) ||
	       (seq_leq(tcb->rcv_nxt, last) && seq_lt(last, tcb->rcv_nxt + wnd));
}

/* Writes len bytes into the receive buffer where sequence number seq belongs: the byte at
 * rcv_nxt goes right after those the service has not taken, so a byte's place holds however
 * rcv_nxt and the service move on. */
static void place_data(struct tcp *tcp, unsigned int i, uint32_t seq, const uint8_t *data,
                       uint32_t len)
{
	const struct tcp_tcb *tcb = &region(tcp)->tcbs[i];
	uint8_t *buffer = rx_buffer(tcp, i);
	uint32_t at = (tcb->rx_head + tcb->rx_len + (seq - tcb->rcv_nxt)) % TCP_BUFFER;

	for (uint32_t b = 0; b < len; b++)
		buffer[(at + b) % TCP_BUFFER] = data[b];
}

/* The held ranges the next byte expected reached are the service's now. */
static void take_held(struct tcp_tcb *tcb)
{
	unsigned int kept = 0;

	/* find() gave a sane block: nb_held is within TCP_HELD_RANGES. */
	for (unsigned int r = 0; r < tcb->nb_held; r++) {
		struct tcp_range range = tcb->held[r];
		if (seq_lt(tcb->rcv_nxt, range.start)) {
			tcb->held[kept++] = range;
			continue;
		}
		if (seq_lt(tcb->rcv_nxt, range.end)) {
			uint32_t more = RTE_MIN(range.end - tcb->rcv_nxt, TCP_BUFFER - tcb->rx_len);
			tcb->rx_len += more;
			tcb->rcv_nxt += more;
		}
	}
	tcb->nb_held = (uint8_t)kept;
}

/* Takes the data at the next byte expected into the receive buffer (what lies before it, sent
 * again, is skipped), and with it what was held past it. */
static void take_data(struct tcp *tcp, unsigned int i, uint32_t seq, const uint8_t *data,
                      uint32_t len)
{
	struct tcp_tcb *tcb = &region(tcp)->tcbs[i];
	uint32_t skip = tcb->rcv_nxt - seq;

	if (skip >= len)
		return;
	uint32_t take = RTE_MIN(len - skip, TCP_BUFFER - tcb->rx_len);
	place_data(tcp, i, tcb->rcv_nxt, data + skip, take);
	tcb->rx_len += take;
	tcb->rcv_nxt += take;
	take_held(tcb);
}

/* Data past the next byte expected, as far as the window goes: written at its place and
 * recorded as a range, merged with those it meets. Returns false when it would make more
 * ranges than a block keeps (the peer sends it again). */
static bool hold_data(struct tcp *tcp, unsigned int i, uint32_t seq, const uint8_t *data,
                      uint32_t len)
{
	struct tcp_tcb *tcb = &region(tcp)->tcbs[i];
	uint32_t window = window_of(tcb), offset = seq - tcb->rcv_nxt;
	unsigned int count = 0;
	struct tcp_range ranges[TCP_HELD_RANGES + 1];
	bool placed = false;

	if (offset >= window)
		return false; /* acceptable() let it in for its part inside the window: none here */
	len = RTE_MIN(len, window - offset);
	struct tcp_range merged = {.start = seq, .end = seq + len};
	for (unsigned int r = 0; r < tcb->nb_held; r++) {
		struct tcp_range range = tcb->held[r];
		if (seq_lt(range.end, merged.start)) {
			ranges[count++] = range;
		} else if (seq_lt(merged.end, range.start)) {
			if (!placed)
				ranges[count++] = merged;
			placed = true;
			ranges[count++] = range;
		} else {
			/* They overlap or touch: one range. */
			merged.start =
			        seq_lt(range.start, merged.start) ? range.start : merged.start;
			merged.end = seq_lt(merged.end, range.end) ? range.end : merged.end;
		}
	}
	if (!placed)
		ranges[count++] = merged;
	if (count > TCP_HELD_RANGES)
		return false;
	place_data(tcp, i, seq, data, len);
	memcpy(tcb->held, ranges, count * sizeof(ranges[0]));
	tcb->nb_held = (uint8_t)count;
	return true;
}

void tcp_input(void *arg, uint32_t src_ip, uint32_t dst_ip, const uint8_t *segment, uint16_t len,
               uint64_t now)
{
	struct tcp *tcp = arg;
	const struct rte_tcp_hdr *h = (const struct rte_tcp_hdr *)segment;

	tcp->stats.segments_rx++;
	if (len < TCP_HEADER || (h->data_off >> 4) * 4 < TCP_HEADER ||
	    (h->data_off >> 4) * 4 > len) {
		tcp->stats.drops[TCP_DROP_MALFORMED]++;
		return;
	}
	struct rte_ipv4_hdr ip = {
	        .version_ihl = RTE_IPV4_VHL_DEF,
	        .total_length = rte_cpu_to_be_16((uint16_t)(sizeof(ip) + len)),
	        .next_proto_id = IPPROTO_TCP,
	        .src_addr = src_ip,
	        .dst_addr = dst_ip,
	};
	if (rte_ipv4_udptcp_cksum_verify(&ip, segment) != 0) {
		tcp->stats.drops[TCP_DROP_CHECKSUM]++;
		return;
	}
	uint16_t header = (uint16_t)((h->data_off >> 4) * 4);
	uint8_t flags = h->tcp_flags;
	uint32_t seq = rte_be_to_cpu_32(h->sent_seq), ack = rte_be_to_cpu_32(h->recv_ack);
	uint32_t data_len = len - header;
	uint32_t seg_len = data_len + !!(flags & RTE_TCP_SYN_FLAG) + !!(flags & RTE_TCP_FIN_FLAG);
	uint16_t local = rte_be_to_cpu_16(h->dst_port);
	unsigned int i = find(tcp, src_ip, h->src_port, local);

	if (i == TCP_CONNECTIONS) {
		bool service = local == TCP_ECHO_PORT || local == TCP_COUNTER_PORT;
		if (service && (flags & (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG | RTE_TCP_RST_FLAG)) ==
		                       RTE_TCP_SYN_FLAG) {
			open_passive(tcp, src_ip, h, header, now);
			return;
		}
		tcp->stats.drops[TCP_DROP_NO_CONNECTION]++;
		if (!(flags & RTE_TCP_RST_FLAG))
			send_reset(tcp, src_ip, h, seg_len, now);
		return;
	}
	struct tcp_tcb *tcb = &region(tcp)->tcbs[i];
	/* A SYN again while ours is unanswered: it lost our SYN-ACK; say it once more. */
	if (tcb->state == TCP_SYN_RECEIVED && (flags & RTE_TCP_SYN_FLAG) && seq == tcb->irs &&
	    !(flags & RTE_TCP_ACK_FLAG)) {
		send_segment(tcp, i, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, tcb->iss, 0, 0, now);
		return;
	}
	/* RFC 9293 3.10.7.4: with our window at zero no segment is acceptable, "but special
	 * allowance should be made to accept valid ACKs": one at the next byte is taken for its
	 * ACK (its data dropped). Without it, a full receive buffer waiting for its echo to be
	 * acknowledged never heard the acknowledgement, and the connection hung until reset. */
	bool closed_window = window_of(tcb) == 0 && seq == tcb->rcv_nxt &&
	                     (flags & RTE_TCP_ACK_FLAG) &&
	                     !(flags & (RTE_TCP_SYN_FLAG | RTE_TCP_RST_FLAG));
	if (!closed_window && !acceptable(tcb, seq, seg_len)) {
		tcp->stats.drops[TCP_DROP_OUT_OF_WINDOW]++;
		if (!(flags & RTE_TCP_RST_FLAG))
			send_ack(tcp, i, now);
		return;
	}
	if (closed_window && seg_len > 0) {
		tcp->stats.drops[TCP_DROP_OUT_OF_WINDOW]++;
		data_len = 0;
		flags &= (uint8_t)~RTE_TCP_FIN_FLAG;
	}
	if (flags & RTE_TCP_RST_FLAG) {
		/* RFC 5961: only a RST at the next byte expected resets; others get a challenge. */
		if (seq == tcb->rcv_nxt)
			release(tcp, i);
		else
			send_ack(tcp, i, now);
		return;
	}
	if (flags & RTE_TCP_SYN_FLAG) {
		send_ack(tcp, i, now); /* RFC 5961's challenge ACK */
		return;
	}
	if (!(flags & RTE_TCP_ACK_FLAG))
		return;
	if (tcb->state == TCP_SYN_RECEIVED) {
		if (!(seq_lt(tcb->snd_una, ack) && seq_leq(ack, tcb->snd_nxt))) {
			tcp->stats.drops[TCP_DROP_BAD_ACK]++;
			send_reset(tcp, src_ip, h, seg_len, now);
			return;
		}
		tcb->state = TCP_ESTABLISHED;
		tcb->snd_wl1 = seq - 1; /* so the window below is taken */
	}
	if (seq_lt(tcb->snd_nxt, ack)) {
		tcp->stats.drops[TCP_DROP_BAD_ACK]++;
		send_ack(tcp, i, now);
		return;
	}
	if (seq_lt(tcb->snd_una, ack)) {
		uint32_t acked = ack - tcb->snd_una;
		/* Our SYN and FIN take a number each, no byte of the buffer. */
		if (tcb->snd_una == tcb->iss)
			acked--;
		if (tcb->fin_sent && ack == tcb->snd_nxt)
			acked--;
		tcb->tx_len -= RTE_MIN(acked, tcb->tx_len);
		tcb->snd_una = ack;
		tcb->retries = 0;
		if (tcp->rtt_start_ns[i] != 0 && seq_leq(tcp->rtt_seq[i], ack)) {
			rtt_sample(tcb, now - tcp->rtt_start_ns[i]);
			tcp->rtt_start_ns[i] = 0;
		}
		tcp->deadline_ns[i] =
		        tcb->snd_una == tcb->snd_nxt ? 0 : now + (uint64_t)tcb->rto_ms * 1000000;
	}
	if (seq_lt(tcb->snd_wl1, seq) || (tcb->snd_wl1 == seq && seq_leq(tcb->snd_wl2, ack))) {
		tcb->snd_wnd = rte_be_to_cpu_16(h->rx_win);
		tcb->snd_wl1 = seq;
		tcb->snd_wl2 = ack;
	}
	if (tcb->state == TCP_LAST_ACK && tcb->fin_sent && tcb->snd_una == tcb->snd_nxt) {
		release(tcp, i);
		return;
	}
	bool answer = closed_window; /* say the window again: it may have opened */
	/* Every data segment is answered at once: one past a gap with a duplicate ACK, one that
	 * fills a gap with the ACK that covers what was held (RFC 5681 4.2). */
	if (data_len > 0 && tcb->state == TCP_ESTABLISHED) {
		if (!seq_lt(tcb->rcv_nxt, seq))
			take_data(tcp, i, seq, segment + header, data_len);
		else if (hold_data(tcp, i, seq, segment + header, data_len))
			tcp->stats.segments_held++;
		else
			tcp->stats.drops[TCP_DROP_OUT_OF_ORDER]++;
		answer = true;
	}
	if ((flags & RTE_TCP_FIN_FLAG) && seq + data_len == tcb->rcv_nxt &&
	    tcb->state == TCP_ESTABLISHED) {
		tcb->rcv_nxt++;
		tcb->fin_received = 1;
		tcb->state = TCP_CLOSE_WAIT;
		answer = true;
	} else if (flags & RTE_TCP_FIN_FLAG) {
		answer = true; /* a FIN again: acknowledged again */
	}
	serve(tcp, i);
	uint64_t sent = tcp->stats.segments_tx;
	output(tcp, i, now);
	if (answer && tcp->stats.segments_tx == sent)
		send_ack(tcp, i, now);
	written(tcp, i);
}

void tcp_poll(struct tcp *tcp, uint64_t now)
{
	struct tcp_region *r = region(tcp);

	for (unsigned int i = 0; i < TCP_CONNECTIONS; i++) {
		struct tcp_tcb *tcb = &r->tcbs[i];
		if (tcb->state == TCP_FREE)
			continue;
		if (!tcb_sane(tcb)) {
			tcp->stats.blocks_discarded++;
			release(tcp, i);
			continue;
		}
		/* A VM that just arrived brings its unacknowledged data, not its timers. */
		if (tcp->deadline_ns[i] == 0 && tcb->snd_nxt != tcb->snd_una) {
			tcp->deadline_ns[i] = now + (uint64_t)tcb->rto_ms * 1000000;
			continue;
		}
		if (tcp->deadline_ns[i] == 0 || now < tcp->deadline_ns[i]) {
			/* What the services made since (room came back) goes out. */
			if (tcb->state == TCP_ESTABLISHED || tcb->state == TCP_CLOSE_WAIT) {
				uint32_t pending = tcb->rx_len, before = tcb->tx_len;
				uint64_t sent = tcp->stats.segments_tx;
				serve(tcp, i);
				if (tcb->rx_len != pending || tcb->tx_len != before ||
				    tcb->state == TCP_CLOSE_WAIT)
					output(tcp, i, now);
				/* A window that was shut and opened: the peer hears it at once. */
				if (pending == TCP_BUFFER && tcb->rx_len < pending &&
				    tcp->stats.segments_tx == sent)
					send_ack(tcp, i, now);
				/* The services moved bytes and output moved snd_nxt in the VM's
				 * memory: its dirty log must say so, or a migration whose last copy
				 * of these pages came before carries a connection that echoes some
				 * bytes twice and has sent what it does not know it sent. */
				if (tcb->rx_len != pending || tcb->tx_len != before ||
				    tcp->stats.segments_tx != sent)
					written(tcp, i);
			}
			continue;
		}
		/* The timeout: back off, and send again from the oldest unacknowledged byte. */
		tcp->stats.retransmits++;
		tcp->rtt_start_ns[i] = 0; /* Karn: no sample from a retransmission */
		if (++tcb->retries > TCP_RETRIES) {
			struct rte_tcp_hdr h = {.src_port = tcb->remote_port,
			                        .dst_port = rte_cpu_to_be_16(tcb->local_port),
			                        .recv_ack = rte_cpu_to_be_32(tcb->snd_nxt),
			                        .tcp_flags = RTE_TCP_ACK_FLAG};
			send_reset(tcp, tcb->remote_ip, &h, 0, now);
			release(tcp, i);
			continue;
		}
		tcb->rto_ms = RTE_MIN(tcb->rto_ms * 2, (uint32_t)TCP_RTO_MAX_MS);
		tcp->deadline_ns[i] = now + (uint64_t)tcb->rto_ms * 1000000;
		if (tcb->state == TCP_SYN_RECEIVED) {
			send_segment(tcp, i, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, tcb->iss, 0, 0,
			             now);
		} else {
			if (tcb->fin_sent) {
				tcb->fin_sent = 0;
				tcb->state = TCP_CLOSE_WAIT;
			}
			tcb->snd_nxt = tcb->snd_una;
			output(tcp, i, now);
		}
		written(tcp, i);
	}
}

int tcp_init(struct tcp *tcp, struct machine *machine, uint64_t first_page, struct netif *netif)
{
	memset(tcp, 0, sizeof(*tcp));
	tcp->machine = machine;
	tcp->netif = netif;
	tcp->first_page = first_page;
	if (first_page + TCP_PAGES > machine->nb_pages)
		return -ENOSPC;
	return netif_transport_bind(netif, IPPROTO_TCP, tcp_input, tcp);
}

void tcp_format(struct tcp *tcp)
{
	struct tcp_region *r = region(tcp);

	if (r->magic == TCP_REGION_MAGIC)
		return;
	memset(r, 0, sizeof(*r));
	r->magic = TCP_REGION_MAGIC;
	r->iss_next = (uint32_t)rte_rand();
	machine_dirty(tcp->machine, tcp->first_page);
}
