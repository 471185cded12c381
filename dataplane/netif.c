/* A small IPv4 host stack: one interface with ARP, ICMP echo and UDP, for VMkernel ports and
 * for the emulated VMs. It knows nothing of who carries its frames: the owner feeds it received
 * frames and gives it a transmit function. Everything runs on the worker lcore. */
#include "netif.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#define NS_PER_SECOND     1000000000ull
#define IPV4_DEFAULT_TTL  64
#define ETH_LEN           sizeof(struct rte_ether_hdr)
#define IP_LEN            sizeof(struct rte_ipv4_hdr)
#define ARP_LEN           sizeof(struct rte_arp_hdr)
#define ICMP_DEST_UNREACH 3 /* RFC 792; DPDK 22.11 names only the echo types */

const char *const netif_drop_names[NETIF_DROP_MAX] = {
#define NETIF_DROP_NAME(e, name, text) [NETIF_DROP_##e] = name,
        NETIF_DROP_REASONS(NETIF_DROP_NAME)
#undef NETIF_DROP_NAME
};

const char *const netif_drop_descriptions[NETIF_DROP_MAX] = {
#define NETIF_DROP_TEXT(e, name, text) [NETIF_DROP_##e] = text,
        NETIF_DROP_REASONS(NETIF_DROP_TEXT)
#undef NETIF_DROP_TEXT
};

static inline void count_drop(struct netif *netif, enum netif_drop_reason reason)
{
	netif->counters.drops[reason]++;
}

static void drop(struct netif *netif, struct rte_mbuf *m, enum netif_drop_reason reason)
{
	count_drop(netif, reason);
	rte_pktmbuf_free(m);
}

int netif_parse_ipv4(const char *text, uint32_t *ip)
{
	struct in_addr addr;

	if (inet_pton(AF_INET, text, &addr) != 1)
		return -EINVAL;
	*ip = addr.s_addr;
	return 0;
}

const char *netif_format_ipv4(uint32_t ip, char *buf, unsigned int size)
{
	struct in_addr addr = {.s_addr = ip};

	if (inet_ntop(AF_INET, &addr, buf, size) == NULL)
		snprintf(buf, size, "?");
	return buf;
}

static uint32_t prefix_mask(uint8_t prefix_len)
{
	return prefix_len == 0 ? 0 : rte_cpu_to_be_32(~0u << (32 - prefix_len));
}

static void send_frames(struct netif *netif, struct rte_mbuf **pkts, uint16_t n)
{
	netif->counters.tx_packets += n;
	netif->tx(netif->tx_ctx, pkts, n);
}

/* A frame of len bytes from a pool with our MAC as source; the caller fills the rest. */
static struct rte_mbuf *frame_new_from(struct netif *netif, struct rte_mempool *pool, uint16_t len,
                                       const struct rte_ether_addr *dst, uint16_t ethertype)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);

	if (m == NULL || rte_pktmbuf_append(m, len) == NULL) {
		rte_pktmbuf_free(m);
		count_drop(netif, NETIF_DROP_NO_MBUF);
		return NULL;
	}
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	if (dst != NULL)
		eth->dst_addr = *dst;
	eth->src_addr = netif->mac;
	eth->ether_type = rte_cpu_to_be_16(ethertype);
	return m;
}

static struct rte_mbuf *frame_new(struct netif *netif, uint16_t len,
                                  const struct rte_ether_addr *dst, uint16_t ethertype)
{
	return frame_new_from(netif, netif->pool, len, dst, ethertype);
}

static int arp_send(struct netif *netif, uint16_t op, const struct rte_ether_addr *eth_dst,
                    const struct rte_ether_addr *tha, uint32_t tip)
{
	static const struct rte_ether_addr broadcast = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
	/* ARP is padded to the 60-byte Ethernet minimum, as a NIC would. */
	struct rte_mbuf *m = frame_new(netif, RTE_ETHER_MIN_LEN - RTE_ETHER_CRC_LEN,
	                               eth_dst != NULL ? eth_dst : &broadcast, RTE_ETHER_TYPE_ARP);
	if (m == NULL)
		return -ENOMEM;
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	memset(frame + ETH_LEN, 0, rte_pktmbuf_data_len(m) - ETH_LEN);
	struct rte_arp_hdr *arp = (struct rte_arp_hdr *)(frame + ETH_LEN);
	arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	arp->arp_hlen = RTE_ETHER_ADDR_LEN;
	arp->arp_plen = sizeof(uint32_t);
	arp->arp_opcode = rte_cpu_to_be_16(op);
	arp->arp_data.arp_sha = netif->mac;
	arp->arp_data.arp_sip = netif->ip;
	if (tha != NULL)
		arp->arp_data.arp_tha = *tha;
	arp->arp_data.arp_tip = tip;
	if (op == RTE_ARP_OP_REQUEST)
		netif->counters.arp_requests_tx++;
	else
		netif->counters.arp_replies_tx++;
	send_frames(netif, &m, 1);
	return 0;
}

int netif_announce(struct netif *netif)
{
	return arp_send(netif, RTE_ARP_OP_REQUEST, NULL, NULL, netif->ip);
}

static int set_address(struct netif *netif, uint32_t ip, uint8_t prefix_len, uint32_t gateway,
                       bool announce)
{
	if (prefix_len > 32 || ip == 0)
		return -EINVAL;
	netif->ip = ip;
	netif->prefix_len = prefix_len;
	netif->netmask = prefix_mask(prefix_len);
	netif->gateway = gateway;
	/* Tell the segment where the address lives now (switches and caches update). */
	if (announce)
		netif_announce(netif);
	return 0;
}

int netif_init(struct netif *netif, const struct netif_config *config, struct rte_mempool *pool,
               netif_tx_fn *tx, void *tx_ctx)
{
	memset(netif, 0, sizeof(*netif));
	if (config->prefix_len > 32 || config->ip == 0 ||
	    !rte_is_unicast_ether_addr(&config->mac) ||
	    (config->mtu != 0 && (config->mtu < RTE_ETHER_MIN_MTU || config->mtu > NETIF_MAX_MTU)))
		return -EINVAL;
	snprintf(netif->name, sizeof(netif->name), "%s", config->name != NULL ? config->name : "");
	netif->mac = config->mac;
	netif->mtu = config->mtu != 0 ? config->mtu : NETIF_DEFAULT_MTU;
	netif->reachable_ns = config->reachable_ns != 0 ? config->reachable_ns : 30 * NS_PER_SECOND;
	netif->stale_ns = config->stale_ns != 0 ? config->stale_ns : 60 * NS_PER_SECOND;
	netif->retrans_ns = config->retrans_ns != 0 ? config->retrans_ns : NS_PER_SECOND;
	netif->max_probes = config->max_probes != 0 ? config->max_probes : 3;
	netif->glean = config->glean;
	netif->pool = pool;
	netif->tx = tx;
	netif->tx_ctx = tx_ctx;
	netif->up = !config->start_down;
	return set_address(netif, config->ip, config->prefix_len, config->gateway, netif->up);
}

int netif_set_address(struct netif *netif, uint32_t ip, uint8_t prefix_len, uint32_t gateway)
{
	return set_address(netif, ip, prefix_len, gateway, true);
}

static void neigh_release(struct netif *netif, struct netif_neigh *neigh,
                          enum netif_drop_reason reason)
{
	for (uint8_t i = 0; i < neigh->nb_queued; i++)
		drop(netif, neigh->queue[i], reason);
	memset(neigh, 0, sizeof(*neigh));
}

void netif_neigh_flush(struct netif *netif)
{
	for (unsigned int i = 0; i < NETIF_NEIGH_MAX; i++)
		if (netif->neighs[i].state != NETIF_NEIGH_FREE)
			neigh_release(netif, &netif->neighs[i], NETIF_DROP_NEIGH_UNRESOLVED);
}

void netif_fini(struct netif *netif)
{
	netif_neigh_flush(netif);
	netif->up = false;
}

const struct netif_neigh *netif_neigh_find(const struct netif *netif, uint32_t ip)
{
	for (unsigned int i = 0; i < NETIF_NEIGH_MAX; i++)
		if (netif->neighs[i].state != NETIF_NEIGH_FREE && netif->neighs[i].ip == ip)
			return &netif->neighs[i];
	return NULL;
}

/* Every frame we send looks its next hop up here: a migration streams to one peer, so the last
 * hit answers almost every time and the scan of the cache is the exception. */
static struct netif_neigh *neigh_lookup(struct netif *netif, uint32_t ip)
{
	struct netif_neigh *last = netif->last_neigh;

	if (last != NULL && last->state != NETIF_NEIGH_FREE && last->ip == ip)
		return last;
	struct netif_neigh *neigh = (struct netif_neigh *)netif_neigh_find(netif, ip);
	if (neigh != NULL)
		netif->last_neigh = neigh;
	return neigh;
}

/* A free entry, or the stalest resolved one when the cache is full. */
static struct netif_neigh *neigh_alloc(struct netif *netif, uint32_t ip)
{
	struct netif_neigh *victim = NULL;

	for (unsigned int i = 0; i < NETIF_NEIGH_MAX; i++) {
		struct netif_neigh *n = &netif->neighs[i];
		if (n->state == NETIF_NEIGH_FREE) {
			victim = n;
			break;
		}
		if (n->state != NETIF_NEIGH_INCOMPLETE &&
		    (victim == NULL || n->updated_ns < victim->updated_ns))
			victim = n;
	}
	if (victim == NULL)
		return NULL;
	if (victim->state != NETIF_NEIGH_FREE)
		neigh_release(netif, victim, NETIF_DROP_NEIGH_UNRESOLVED);
	victim->ip = ip;
	return victim;
}

/* A neighbour answered: it is reachable, and what waited for it leaves now. */
static void neigh_confirm(struct netif *netif, struct netif_neigh *neigh,
                          const struct rte_ether_addr *mac, uint64_t now_ns)
{
	neigh->mac = *mac;
	neigh->state = NETIF_NEIGH_REACHABLE;
	neigh->updated_ns = now_ns;
	neigh->probes = 0;
	for (uint8_t i = 0; i < neigh->nb_queued; i++) {
		struct rte_ether_hdr *eth =
		        rte_pktmbuf_mtod(neigh->queue[i], struct rte_ether_hdr *);
		eth->dst_addr = *mac;
	}
	if (neigh->nb_queued > 0)
		send_frames(netif, neigh->queue, neigh->nb_queued);
	neigh->nb_queued = 0;
}

/* Sends an IPv4 frame (Ethernet destination still blank) to its next hop, resolving it first if
 * needed. Takes the mbuf. */
static int neigh_output(struct netif *netif, uint32_t dst_ip, struct rte_mbuf *m, uint64_t now_ns)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	uint32_t next_hop = dst_ip;

	if (dst_ip == RTE_BE32(0xffffffff) || dst_ip == (netif->ip | ~netif->netmask)) {
		memset(&eth->dst_addr, 0xff, sizeof(eth->dst_addr));
		send_frames(netif, &m, 1);
		return 0;
	}
	if ((dst_ip & netif->netmask) != (netif->ip & netif->netmask)) {
		if (netif->gateway == 0) {
			drop(netif, m, NETIF_DROP_NO_ROUTE);
			return -ENETUNREACH;
		}
		next_hop = netif->gateway;
	}
	struct netif_neigh *neigh = neigh_lookup(netif, next_hop);
	if (neigh != NULL && neigh->state != NETIF_NEIGH_INCOMPLETE) {
		eth->dst_addr = neigh->mac;
		/* A stale entry still carries traffic, and is checked again in passing. */
		if (neigh->state == NETIF_NEIGH_STALE && now_ns >= neigh->next_probe_ns) {
			neigh->next_probe_ns = now_ns + netif->retrans_ns;
			arp_send(netif, RTE_ARP_OP_REQUEST, &neigh->mac, NULL, next_hop);
		}
		send_frames(netif, &m, 1);
		return 0;
	}
	if (neigh == NULL) {
		neigh = neigh_alloc(netif, next_hop);
		if (neigh == NULL) {
			drop(netif, m, NETIF_DROP_NEIGH_QUEUE_FULL);
			return -ENOBUFS;
		}
		neigh->state = NETIF_NEIGH_INCOMPLETE;
		neigh->updated_ns = now_ns;
		neigh->probes = 1;
		neigh->next_probe_ns = now_ns + netif->retrans_ns;
		arp_send(netif, RTE_ARP_OP_REQUEST, NULL, NULL, next_hop);
	}
	if (neigh->nb_queued == NETIF_NEIGH_QUEUE) {
		drop(netif, m, NETIF_DROP_NEIGH_QUEUE_FULL);
		return -ENOBUFS;
	}
	neigh->queue[neigh->nb_queued++] = m;
	return 0;
}

void netif_tick(struct netif *netif, uint64_t now_ns)
{
	for (unsigned int i = 0; i < NETIF_NEIGH_MAX; i++) {
		struct netif_neigh *n = &netif->neighs[i];
		switch (n->state) {
		case NETIF_NEIGH_FREE:
			break;
		case NETIF_NEIGH_INCOMPLETE:
			if (now_ns < n->next_probe_ns)
				break;
			if (n->probes >= netif->max_probes) {
				neigh_release(netif, n, NETIF_DROP_NEIGH_UNRESOLVED);
				break;
			}
			n->probes++;
			n->next_probe_ns = now_ns + netif->retrans_ns;
			arp_send(netif, RTE_ARP_OP_REQUEST, NULL, NULL, n->ip);
			break;
		case NETIF_NEIGH_REACHABLE:
			if (now_ns - n->updated_ns >= netif->reachable_ns)
				n->state = NETIF_NEIGH_STALE;
			break;
		case NETIF_NEIGH_STALE:
			if (now_ns - n->updated_ns >= netif->reachable_ns + netif->stale_ns)
				neigh_release(netif, n, NETIF_DROP_NEIGH_UNRESOLVED);
			break;
		}
	}
}

static void arp_input(struct netif *netif, struct rte_mbuf *m, uint64_t now_ns)
{
	if (rte_pktmbuf_data_len(m) < ETH_LEN + ARP_LEN) {
		drop(netif, m, NETIF_DROP_ARP_MALFORMED);
		return;
	}
	const struct rte_arp_hdr *arp =
	        rte_pktmbuf_mtod_offset(m, const struct rte_arp_hdr *, ETH_LEN);
	if (arp->arp_hardware != RTE_BE16(RTE_ARP_HRD_ETHER) ||
	    arp->arp_protocol != RTE_BE16(RTE_ETHER_TYPE_IPV4) ||
	    arp->arp_hlen != RTE_ETHER_ADDR_LEN || arp->arp_plen != sizeof(uint32_t) ||
	    !rte_is_unicast_ether_addr(&arp->arp_data.arp_sha)) {
		drop(netif, m, NETIF_DROP_ARP_MALFORMED);
		return;
	}
	uint16_t op = rte_be_to_cpu_16(arp->arp_opcode);
	uint32_t sip = arp->arp_data.arp_sip, tip = arp->arp_data.arp_tip;
	struct rte_ether_addr sha = arp->arp_data.arp_sha;
	if (op == RTE_ARP_OP_REQUEST)
		netif->counters.arp_requests_rx++;
	else if (op == RTE_ARP_OP_REPLY)
		netif->counters.arp_replies_rx++;
	else
		netif->counters.arp_other_rx++;

	/* Any ARP from a known neighbour (gratuitous ones too) refreshes it; one asking for us
	 * creates its entry, since we are about to talk to it. Probes (sender 0.0.0.0) teach
	 * nothing. */
	if (sip != 0 && sip != netif->ip) {
		struct netif_neigh *neigh = neigh_lookup(netif, sip);
		if (neigh == NULL && tip == netif->ip)
			neigh = neigh_alloc(netif, sip);
		if (neigh != NULL)
			neigh_confirm(netif, neigh, &sha, now_ns);
	}
	if (op == RTE_ARP_OP_REQUEST && tip == netif->ip && sip != tip)
		arp_send(netif, RTE_ARP_OP_REPLY, &sha, &sha, sip);
	rte_pktmbuf_free(m);
}

/* Builds an IPv4 frame from a pool with room for l4_len bytes after the IP header. */
static struct rte_mbuf *ip_frame_new_from(struct netif *netif, struct rte_mempool *pool,
                                          uint32_t dst_ip, uint8_t proto, uint16_t l4_len,
                                          bool dont_fragment)
{
	struct rte_mbuf *m = frame_new_from(netif, pool, (uint16_t)(ETH_LEN + IP_LEN + l4_len),
	                                    NULL, RTE_ETHER_TYPE_IPV4);
	if (m == NULL)
		return NULL;
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, ETH_LEN);
	*ip = (struct rte_ipv4_hdr){
	        .version_ihl = RTE_IPV4_VHL_DEF,
	        .total_length = rte_cpu_to_be_16((uint16_t)(IP_LEN + l4_len)),
	        .fragment_offset = dont_fragment ? RTE_BE16(RTE_IPV4_HDR_DF_FLAG) : 0,
	        .time_to_live = IPV4_DEFAULT_TTL,
	        .next_proto_id = proto,
	        .src_addr = netif->ip,
	        .dst_addr = dst_ip,
	};
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	return m;
}

static struct rte_mbuf *ip_frame_new(struct netif *netif, uint32_t dst_ip, uint8_t proto,
                                     uint16_t l4_len, bool dont_fragment)
{
	return ip_frame_new_from(netif, netif->pool, dst_ip, proto, l4_len, dont_fragment);
}

static void icmp_finish(struct rte_icmp_hdr *icmp, uint16_t len)
{
	icmp->icmp_cksum = 0;
	icmp->icmp_cksum = (uint16_t)~rte_raw_cksum(icmp, len);
}

static void icmp_input(struct netif *netif, struct rte_mbuf *m, const struct rte_ipv4_hdr *ip,
                       uint16_t l4_len, uint64_t now_ns)
{
	const struct rte_icmp_hdr *icmp =
	        (const struct rte_icmp_hdr *)((const uint8_t *)ip + rte_ipv4_hdr_len(ip));
	if (l4_len < sizeof(*icmp) || rte_raw_cksum(icmp, l4_len) != 0xffff) {
		drop(netif, m, NETIF_DROP_ICMP_MALFORMED);
		return;
	}
	if (icmp->icmp_type == RTE_IP_ICMP_ECHO_REPLY && icmp->icmp_code == 0) {
		netif->counters.echo_replies_rx++;
		if (netif->echo_fn != NULL)
			netif->echo_fn(netif->echo_ctx, ip->src_addr,
			               rte_be_to_cpu_16(icmp->icmp_ident),
			               rte_be_to_cpu_16(icmp->icmp_seq_nb),
			               (uint16_t)(l4_len - sizeof(*icmp)), ip->time_to_live);
		rte_pktmbuf_free(m);
		return;
	}
	if (icmp->icmp_type != RTE_IP_ICMP_ECHO_REQUEST || icmp->icmp_code != 0) {
		drop(netif, m, NETIF_DROP_ICMP_TYPE);
		return;
	}
	netif->counters.echo_requests_rx++;
	/* The reply is a new frame: the request's buffer may be shared with other ports. */
	bool df = (ip->fragment_offset & RTE_BE16(RTE_IPV4_HDR_DF_FLAG)) != 0;
	uint32_t dst = ip->src_addr;
	struct rte_mbuf *reply = ip_frame_new(netif, dst, IPPROTO_ICMP, l4_len, df);
	if (reply != NULL) {
		struct rte_icmp_hdr *out =
		        rte_pktmbuf_mtod_offset(reply, struct rte_icmp_hdr *, ETH_LEN + IP_LEN);
		memcpy(out, icmp, l4_len);
		out->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
		icmp_finish(out, l4_len);
		netif->counters.echo_replies_tx++;
		neigh_output(netif, dst, reply, now_ns);
	}
	rte_pktmbuf_free(m);
}

/* ICMP port unreachable, at most NETIF_UNREACH_PER_SEC a second, quoting the offending header. */
static void send_port_unreachable(struct netif *netif, const struct rte_ipv4_hdr *ip,
                                  uint16_t ip_len, uint64_t now_ns)
{
	if (now_ns - netif->unreach_window_ns >= NS_PER_SECOND) {
		netif->unreach_window_ns = now_ns;
		netif->unreach_in_window = 0;
	}
	if (netif->unreach_in_window >= NETIF_UNREACH_PER_SEC) {
		netif->counters.unreach_limited++;
		return;
	}
	netif->unreach_in_window++;
	uint16_t quoted = (uint16_t)RTE_MIN((unsigned int)ip_len, rte_ipv4_hdr_len(ip) + 8u);
	uint16_t len = (uint16_t)(sizeof(struct rte_icmp_hdr) + quoted);
	struct rte_mbuf *m = ip_frame_new(netif, ip->src_addr, IPPROTO_ICMP, len, false);
	if (m == NULL)
		return;
	struct rte_icmp_hdr *icmp =
	        rte_pktmbuf_mtod_offset(m, struct rte_icmp_hdr *, ETH_LEN + IP_LEN);
	memset(icmp, 0, sizeof(*icmp));
	icmp->icmp_type = ICMP_DEST_UNREACH;
	icmp->icmp_code = 3; /* port unreachable */
	memcpy(icmp + 1, ip, quoted);
	icmp_finish(icmp, len);
	netif->counters.unreach_tx++;
	neigh_output(netif, ip->src_addr, m, now_ns);
}

static void udp_input(struct netif *netif, struct rte_mbuf *m, const struct rte_ipv4_hdr *ip,
                      uint16_t l4_len, bool broadcast, uint64_t now_ns)
{
	const struct rte_udp_hdr *udp =
	        (const struct rte_udp_hdr *)((const uint8_t *)ip + rte_ipv4_hdr_len(ip));
	if (l4_len < sizeof(*udp) || rte_be_to_cpu_16(udp->dgram_len) < sizeof(*udp) ||
	    rte_be_to_cpu_16(udp->dgram_len) > l4_len ||
	    (udp->dgram_cksum != 0 && rte_ipv4_udptcp_cksum_verify(ip, udp) != 0)) {
		drop(netif, m, NETIF_DROP_UDP_MALFORMED);
		return;
	}
	uint16_t port = rte_be_to_cpu_16(udp->dst_port);
	for (unsigned int i = 0; i < NETIF_UDP_BINDINGS; i++) {
		const struct netif_udp_binding *b = &netif->udp[i];
		/* A free slot has port 0: a datagram to port 0 must not find it (a fuzzer did). */
		if (b->port != port || b->fn == NULL)
			continue;
		netif->counters.udp_rx++;
		b->fn(b->ctx, ip->src_addr, rte_be_to_cpu_16(udp->src_port),
		      (const uint8_t *)(udp + 1),
		      (uint16_t)(rte_be_to_cpu_16(udp->dgram_len) - sizeof(*udp)), port);
		rte_pktmbuf_free(m);
		return;
	}
	if (!broadcast)
		send_port_unreachable(netif, ip, rte_be_to_cpu_16(ip->total_length), now_ns);
	drop(netif, m, NETIF_DROP_UDP_NO_LISTENER);
}

/* A datagram from an on-link peer we hold no address for (or are still asking about) teaches
 * its MAC, as stale: usable at once, checked again on use. A known entry is left alone, so a
 * forged source cannot move it. */
static void neigh_glean(struct netif *netif, const struct rte_mbuf *m, uint32_t src_ip,
                        uint64_t now_ns)
{
	const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);

	if ((src_ip & netif->netmask) != (netif->ip & netif->netmask) || src_ip == netif->ip ||
	    src_ip == (netif->ip | ~netif->netmask) || !rte_is_unicast_ether_addr(&eth->src_addr))
		return;
	struct netif_neigh *neigh = neigh_lookup(netif, src_ip);
	if (neigh != NULL && neigh->state != NETIF_NEIGH_INCOMPLETE)
		return;
	if (neigh == NULL && (neigh = neigh_alloc(netif, src_ip)) == NULL)
		return;
	neigh_confirm(netif, neigh, &eth->src_addr, now_ns);
	neigh->state = NETIF_NEIGH_STALE;
	neigh->next_probe_ns = now_ns;
}

static void ipv4_input(struct netif *netif, struct rte_mbuf *m, uint64_t now_ns)
{
	uint32_t frame_len = rte_pktmbuf_data_len(m);

	if (frame_len < ETH_LEN + IP_LEN) {
		drop(netif, m, NETIF_DROP_RUNT);
		return;
	}
	const struct rte_ipv4_hdr *ip =
	        rte_pktmbuf_mtod_offset(m, const struct rte_ipv4_hdr *, ETH_LEN);
	uint16_t header_len = rte_ipv4_hdr_len(ip);
	uint16_t total_len = rte_be_to_cpu_16(ip->total_length);
	if ((ip->version_ihl >> 4) != 4 || header_len < IP_LEN) {
		drop(netif, m, NETIF_DROP_IP_VERSION);
		return;
	}
	/* The frame may carry Ethernet padding after the datagram, never less than it. */
	if (total_len < header_len || total_len > frame_len - ETH_LEN ||
	    rte_pktmbuf_pkt_len(m) != frame_len) {
		drop(netif, m, NETIF_DROP_IP_LENGTH);
		return;
	}
	if (rte_raw_cksum(ip, header_len) != 0xffff) {
		drop(netif, m, NETIF_DROP_IP_CHECKSUM);
		return;
	}
	if (ip->time_to_live == 0) {
		drop(netif, m, NETIF_DROP_IP_TTL);
		return;
	}
	if (ip->fragment_offset & RTE_BE16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) {
		drop(netif, m, NETIF_DROP_IP_FRAGMENT);
		return;
	}
	bool broadcast = ip->dst_addr == RTE_BE32(0xffffffff) ||
	                 ip->dst_addr == (netif->ip | ~netif->netmask);
	if (ip->dst_addr != netif->ip && !broadcast) {
		drop(netif, m, NETIF_DROP_IP_NOT_OURS);
		return;
	}
	if (netif->glean)
		neigh_glean(netif, m, ip->src_addr, now_ns);
	uint16_t l4_len = (uint16_t)(total_len - header_len);
	if (ip->next_proto_id == IPPROTO_ICMP && broadcast)
		drop(netif, m, NETIF_DROP_ICMP_BROADCAST); /* no smurf amplifier here */
	else if (ip->next_proto_id == IPPROTO_ICMP)
		icmp_input(netif, m, ip, l4_len, now_ns);
	else if (ip->next_proto_id == IPPROTO_UDP)
		udp_input(netif, m, ip, l4_len, broadcast, now_ns);
	else if (ip->next_proto_id == netif->transport_proto && netif->transport_proto != 0 &&
	         !broadcast) {
		netif->transport_fn(netif->transport_ctx, ip->src_addr, ip->dst_addr,
		                    (const uint8_t *)ip + header_len, l4_len, now_ns);
		rte_pktmbuf_free(m);
	} else
		drop(netif, m, NETIF_DROP_IP_PROTOCOL);
}

void netif_input(struct netif *netif, struct rte_mbuf **pkts, uint16_t n, uint64_t now_ns)
{
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		netif->counters.rx_packets++;
		if (unlikely(!netif->up)) {
			drop(netif, m, NETIF_DROP_DOWN);
			continue;
		}
		if (rte_pktmbuf_data_len(m) < ETH_LEN) {
			drop(netif, m, NETIF_DROP_RUNT);
			continue;
		}
		const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
		if (!rte_is_same_ether_addr(&eth->dst_addr, &netif->mac) &&
		    !rte_is_broadcast_ether_addr(&eth->dst_addr)) {
			drop(netif, m, NETIF_DROP_NOT_FOR_US);
			continue;
		}
		if (eth->ether_type == RTE_BE16(RTE_ETHER_TYPE_ARP))
			arp_input(netif, m, now_ns);
		else if (eth->ether_type == RTE_BE16(RTE_ETHER_TYPE_IPV4))
			ipv4_input(netif, m, now_ns);
		else
			drop(netif, m, NETIF_DROP_ETHERTYPE);
	}
}

int netif_udp_bind(struct netif *netif, uint16_t port, netif_udp_fn *fn, void *ctx)
{
	struct netif_udp_binding *free_slot = NULL;

	if (port == 0)
		return -EINVAL;
	for (unsigned int i = 0; i < NETIF_UDP_BINDINGS; i++) {
		if (netif->udp[i].port == port)
			return -EADDRINUSE;
		if (netif->udp[i].port == 0 && free_slot == NULL)
			free_slot = &netif->udp[i];
	}
	if (free_slot == NULL)
		return -ENOSPC;
	*free_slot = (struct netif_udp_binding){.port = port, .fn = fn, .ctx = ctx};
	return 0;
}

void netif_udp_unbind(struct netif *netif, uint16_t port)
{
	for (unsigned int i = 0; i < NETIF_UDP_BINDINGS; i++)
		if (netif->udp[i].port == port)
			netif->udp[i] = (struct netif_udp_binding){0};
}

struct rte_mbuf *netif_udp_frame_new(struct netif *netif, struct rte_mempool *pool, uint32_t dst_ip,
                                     uint16_t dst_port, uint16_t src_port, uint16_t len,
                                     uint8_t **payload)
{
	uint16_t l4_len = (uint16_t)(sizeof(struct rte_udp_hdr) + len);

	if ((uint32_t)IP_LEN + sizeof(struct rte_udp_hdr) + len > netif->mtu) {
		count_drop(netif, NETIF_DROP_TOO_BIG);
		return NULL;
	}
	struct rte_mbuf *m = ip_frame_new_from(netif, pool != NULL ? pool : netif->pool, dst_ip,
	                                       IPPROTO_UDP, l4_len, true);
	if (m == NULL)
		return NULL;
	struct rte_udp_hdr *udp =
	        rte_pktmbuf_mtod_offset(m, struct rte_udp_hdr *, ETH_LEN + IP_LEN);
	udp->src_port = rte_cpu_to_be_16(src_port);
	udp->dst_port = rte_cpu_to_be_16(dst_port);
	udp->dgram_len = rte_cpu_to_be_16(l4_len);
	udp->dgram_cksum = 0;
	*payload = (uint8_t *)(udp + 1);
	return m;
}

int netif_udp_frame_send(struct netif *netif, struct rte_mbuf *m, uint64_t now_ns)
{
	const struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, ETH_LEN);

	netif->counters.udp_tx++;
	return neigh_output(netif, ip->dst_addr, m, now_ns);
}

static int udp_send(struct netif *netif, uint32_t dst_ip, uint16_t dst_port, uint16_t src_port,
                    const void *payload, uint16_t len, bool checksum, uint64_t now_ns)
{
	uint8_t *at;
	struct rte_mbuf *m = netif_udp_frame_new(netif, NULL, dst_ip, dst_port, src_port, len, &at);

	if (m == NULL)
		return (uint32_t)IP_LEN + sizeof(struct rte_udp_hdr) + len > netif->mtu ? -EMSGSIZE
		                                                                        : -ENOMEM;
	memcpy(at, payload, len);
	if (checksum) {
		struct rte_ipv4_hdr *ip =
		        rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, ETH_LEN);
		struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
		udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
	}
	return netif_udp_frame_send(netif, m, now_ns);
}

int netif_udp_send(struct netif *netif, uint32_t dst_ip, uint16_t dst_port, uint16_t src_port,
                   const void *payload, uint16_t len, uint64_t now_ns)
{
	return udp_send(netif, dst_ip, dst_port, src_port, payload, len, true, now_ns);
}

int netif_udp_send_sealed(struct netif *netif, uint32_t dst_ip, uint16_t dst_port,
                          uint16_t src_port, const void *payload, uint16_t len, uint64_t now_ns)
{
	return udp_send(netif, dst_ip, dst_port, src_port, payload, len, false, now_ns);
}

int netif_transport_bind(struct netif *netif, uint8_t proto, netif_transport_fn *fn, void *ctx)
{
	if (netif->transport_proto != 0 || proto == 0 || proto == IPPROTO_ICMP ||
	    proto == IPPROTO_UDP)
		return -EBUSY;
	netif->transport_proto = proto;
	netif->transport_fn = fn;
	netif->transport_ctx = ctx;
	return 0;
}

int netif_ip_send(struct netif *netif, uint32_t dst_ip, uint8_t proto, const void *l4, uint16_t len,
                  uint64_t now_ns)
{
	if ((uint32_t)IP_LEN + len > netif->mtu) {
		count_drop(netif, NETIF_DROP_TOO_BIG);
		return -EMSGSIZE;
	}
	struct rte_mbuf *m = ip_frame_new(netif, dst_ip, proto, len, true);
	if (m == NULL)
		return -ENOMEM;
	memcpy(rte_pktmbuf_mtod_offset(m, uint8_t *, ETH_LEN + IP_LEN), l4, len);
	return neigh_output(netif, dst_ip, m, now_ns);
}

int netif_ping(struct netif *netif, uint32_t dst_ip, uint16_t id, uint16_t seq, uint16_t size,
               bool dont_fragment, uint64_t now_ns)
{
	uint16_t l4_len = (uint16_t)(sizeof(struct rte_icmp_hdr) + size);

	if ((uint32_t)IP_LEN + l4_len > netif->mtu) {
		count_drop(netif, NETIF_DROP_TOO_BIG);
		return -EMSGSIZE;
	}
	struct rte_mbuf *m = ip_frame_new(netif, dst_ip, IPPROTO_ICMP, l4_len, dont_fragment);
	if (m == NULL)
		return -ENOMEM;
	struct rte_icmp_hdr *icmp =
	        rte_pktmbuf_mtod_offset(m, struct rte_icmp_hdr *, ETH_LEN + IP_LEN);
	icmp->icmp_type = RTE_IP_ICMP_ECHO_REQUEST;
	icmp->icmp_code = 0;
	icmp->icmp_ident = rte_cpu_to_be_16(id);
	icmp->icmp_seq_nb = rte_cpu_to_be_16(seq);
	uint8_t *data = (uint8_t *)(icmp + 1);
	for (uint16_t i = 0; i < size; i++)
		data[i] = (uint8_t)i; /* the pattern ping uses, so captures read familiar */
	icmp_finish(icmp, l4_len);
	netif->counters.echo_requests_tx++;
	return neigh_output(netif, dst_ip, m, now_ns);
}

void netif_set_echo_handler(struct netif *netif, netif_echo_fn *fn, void *ctx)
{
	netif->echo_fn = fn;
	netif->echo_ctx = ctx;
}
