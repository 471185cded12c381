/* A small IPv4 host stack: one interface with ARP, ICMP echo and UDP (and one more transport
 * its owner brings, the VMs' TCP), for VMkernel ports and for the emulated VMs. It knows nothing of who carries its frames: the owner feeds it received
 * frames and gives it a transmit function. Everything runs on the worker lcore. */
#ifndef FERRY_DATAPLANE_NETIF_H
#define FERRY_DATAPLANE_NETIF_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>

struct rte_mbuf;
struct rte_mempool;

#define NETIF_NAME_MAX        32
#define NETIF_NEIGH_MAX       256 /* neighbour cache entries */
#define NETIF_NEIGH_QUEUE     4   /* frames held per neighbour while it resolves */
#define NETIF_UDP_BINDINGS    16
#define NETIF_DEFAULT_MTU     1500
#define NETIF_MAX_MTU         9000
#define NETIF_UNREACH_PER_SEC 10 /* ICMP port-unreachable rate limit */

/* Every reason the stack drops a frame, in one table (X(enum suffix, name, description)). */
#define NETIF_DROP_REASONS(X)                                                                      \
	X(DOWN, "down", "interface down (its VM is paused)")                                       \
	X(RUNT, "runt", "frame too short for its headers")                                         \
	X(NOT_FOR_US, "not_for_us", "unicast to another MAC")                                      \
	X(ETHERTYPE, "ethertype", "neither ARP nor IPv4")                                          \
	X(ARP_MALFORMED, "arp_malformed", "ARP not Ethernet/IPv4 or cut short")                    \
	X(IP_VERSION, "ip_version", "IPv4 version or header length wrong")                         \
	X(IP_LENGTH, "ip_length", "IPv4 total length disagrees with the frame")                    \
	X(IP_CHECKSUM, "ip_checksum", "IPv4 header checksum wrong")                                \
	X(IP_TTL, "ip_ttl", "TTL zero")                                                            \
	X(IP_FRAGMENT, "ip_fragment", "IPv4 fragment (ours never fragment)")                       \
	X(IP_NOT_OURS, "ip_not_ours", "IPv4 to another address")                                   \
	X(IP_PROTOCOL, "ip_protocol", "IPv4 protocol not ICMP, UDP or a bound one")                \
	X(ICMP_MALFORMED, "icmp_malformed", "ICMP cut short or checksum wrong")                    \
	X(ICMP_TYPE, "icmp_type", "ICMP type not handled")                                         \
	X(ICMP_BROADCAST, "icmp_broadcast", "ICMP to a broadcast address (never answered)")        \
	X(UDP_MALFORMED, "udp_malformed", "UDP length or checksum wrong")                          \
	X(UDP_NO_LISTENER, "udp_no_listener", "UDP to a closed port")                              \
	X(NEIGH_QUEUE_FULL, "neigh_queue_full", "too many frames waiting for ARP")                 \
	X(NEIGH_UNRESOLVED, "neigh_unresolved", "ARP got no answer")                               \
	X(NO_ROUTE, "no_route", "destination off-link and no gateway")                             \
	X(TOO_BIG, "too_big", "datagram larger than the MTU")                                      \
	X(NO_MBUF, "no_mbuf", "no buffer to build a frame")

enum netif_drop_reason {
#define NETIF_DROP_ENUM(e, name, text) NETIF_DROP_##e,
	NETIF_DROP_REASONS(NETIF_DROP_ENUM)
#undef NETIF_DROP_ENUM
	        NETIF_DROP_MAX
};

/* Counter names and descriptions, indexed by enum netif_drop_reason. */
extern const char *const netif_drop_names[NETIF_DROP_MAX];
extern const char *const netif_drop_descriptions[NETIF_DROP_MAX];

enum netif_neigh_state {
	NETIF_NEIGH_FREE,
	NETIF_NEIGH_INCOMPLETE, /* asked, no answer yet */
	NETIF_NEIGH_REACHABLE,  /* confirmed within reachable_ns */
	NETIF_NEIGH_STALE,      /* usable, re-confirmed on next use */
};

struct netif_neigh {
	uint32_t ip; /* network byte order */
	struct rte_ether_addr mac;
	enum netif_neigh_state state;
	uint8_t probes;      /* requests sent while incomplete */
	uint64_t updated_ns; /* last confirmation (or first request) */
	uint64_t next_probe_ns;
	uint8_t nb_queued;
	struct rte_mbuf *queue[NETIF_NEIGH_QUEUE];
};

/* Sends frames the stack built; takes the mbufs (frees what it cannot send). */
typedef void netif_tx_fn(void *ctx, struct rte_mbuf **pkts, uint16_t n);

/* A UDP datagram for a bound port: source address and port, the payload, and the bound port it
 * came to (host byte order). */
typedef void netif_udp_fn(void *ctx, uint32_t src_ip, uint16_t src_port, const uint8_t *payload,
                          uint16_t len, uint16_t dst_port);

/* A datagram of a bound transport protocol for us, not a broadcast: its addresses (network byte
 * order) and its transport bytes, as long as the IPv4 header says (checksum unchecked). */
typedef void netif_transport_fn(void *ctx, uint32_t src_ip, uint32_t dst_ip, const uint8_t *l4,
                                uint16_t len, uint64_t now_ns);

/* An ICMP echo reply to one of our requests. */
typedef void netif_echo_fn(void *ctx, uint32_t src_ip, uint16_t id, uint16_t seq, uint16_t len,
                           uint8_t ttl);

struct netif_config {
	const char *name;
	struct rte_ether_addr mac;
	uint32_t ip; /* network byte order */
	uint8_t prefix_len;
	uint32_t gateway;      /* 0 = none */
	uint16_t mtu;          /* 0 = 1500 */
	uint64_t reachable_ns; /* 0 = 30 s, as Linux's base_reachable_time */
	uint64_t stale_ns;     /* 0 = 60 s: stale entries unused that long are forgotten */
	uint64_t retrans_ns;   /* 0 = 1 s between ARP requests */
	uint8_t max_probes;    /* 0 = 3 requests before giving up */
	bool start_down;       /* down and silent until set up (a VM not yet running) */
	bool glean;            /* a datagram from an on-link peer we have no entry for teaches its
	                        * MAC (a VM that just moved answers at once, without asking) */
};

struct netif_udp_binding {
	uint16_t port; /* host byte order; 0 = free */
	netif_udp_fn *fn;
	void *ctx;
};

struct netif_counters {
	uint64_t rx_packets, tx_packets;
	uint64_t arp_requests_rx, arp_replies_rx, arp_other_rx; /* other: well formed, other op */
	uint64_t arp_requests_tx, arp_replies_tx;
	uint64_t echo_requests_rx, echo_replies_tx, echo_requests_tx, echo_replies_rx;
	uint64_t udp_rx, udp_tx, unreach_tx, unreach_limited;
	uint64_t drops[NETIF_DROP_MAX];
};

struct netif {
	char name[NETIF_NAME_MAX];
	struct rte_ether_addr mac;
	uint32_t ip, netmask, gateway; /* network byte order */
	uint8_t prefix_len;
	uint16_t mtu;
	bool up;
	uint64_t reachable_ns, stale_ns, retrans_ns;
	uint8_t max_probes;
	bool glean;
	struct rte_mempool *pool;
	netif_tx_fn *tx;
	void *tx_ctx;
	netif_echo_fn *echo_fn;
	void *echo_ctx;
	uint8_t transport_proto; /* 0: none bound */
	netif_transport_fn *transport_fn;
	void *transport_ctx;
	struct netif_neigh neighs[NETIF_NEIGH_MAX];
	struct netif_neigh *last_neigh; /* the last one looked up: traffic goes to few peers */
	struct netif_udp_binding udp[NETIF_UDP_BINDINGS];
	uint64_t unreach_window_ns; /* start of the current rate-limit second */
	uint32_t unreach_in_window;
	struct netif_counters counters;
};

/* Sets an interface up with its address; frames are built from pool and sent through tx. Sends a
 * gratuitous ARP, unless config says it starts down. Returns 0 or -EINVAL for a bad configuration. */
int netif_init(struct netif *netif, const struct netif_config *config, struct rte_mempool *pool,
               netif_tx_fn *tx, void *tx_ctx);

/* Frees held frames; the interface sends nothing more. */
void netif_fini(struct netif *netif);

/* Changes the address (and announces it with a gratuitous ARP); the neighbour cache is kept. */
int netif_set_address(struct netif *netif, uint32_t ip, uint8_t prefix_len, uint32_t gateway);

/* Handles received frames (takes the mbufs). */
void netif_input(struct netif *netif, struct rte_mbuf **pkts, uint16_t n, uint64_t now_ns);

/* Retransmits ARP requests, gives up on silent neighbours, ages the cache. Call it every few
 * hundred milliseconds. */
void netif_tick(struct netif *netif, uint64_t now_ns);

/* Sends a gratuitous ARP (a request for our own address). */
int netif_announce(struct netif *netif);

/* Binds a UDP port (host byte order). -EADDRINUSE, -ENOSPC. */
int netif_udp_bind(struct netif *netif, uint16_t port, netif_udp_fn *fn, void *ctx);

/* Releases a UDP port. */
void netif_udp_unbind(struct netif *netif, uint16_t port);

/* Sends one UDP datagram, resolving the next hop with ARP (the frame waits if needed). Returns
 * 0 (sent or queued) or a negative errno (and counts the drop). */
int netif_udp_send(struct netif *netif, uint32_t dst_ip, uint16_t dst_port, uint16_t src_port,
                   const void *payload, uint16_t len, uint64_t now_ns);

/* The same for a payload an AEAD already protects end to end: sent with no UDP checksum (RFC 768
 * allows 0 over IPv4), so its bytes are not read once more for a weaker check. */
int netif_udp_send_sealed(struct netif *netif, uint32_t dst_ip, uint16_t dst_port,
                          uint16_t src_port, const void *payload, uint16_t len, uint64_t now_ns);

/* A sealed UDP datagram built in place: a frame from pool (NULL: the netif's) with its Ethernet,
 * IPv4 and UDP headers written and room for len bytes of payload at *payload, to be written there
 * and then sent with netif_udp_frame_send (so a sender seals straight into the frame, with no
 * copy). NULL, counted, when len exceeds the MTU or the pool is empty. */
struct rte_mbuf *netif_udp_frame_new(struct netif *netif, struct rte_mempool *pool, uint32_t dst_ip,
                                     uint16_t dst_port, uint16_t src_port, uint16_t len,
                                     uint8_t **payload);

/* Sends a frame netif_udp_frame_new built, without a UDP checksum, resolving the next hop as
 * netif_udp_send does. The frame is the caller's no more. */
int netif_udp_frame_send(struct netif *netif, struct rte_mbuf *m, uint64_t now_ns);

/* Takes the datagrams of one more IPv4 protocol (IPPROTO_TCP for a VM); -EBUSY if one is bound. */
int netif_transport_bind(struct netif *netif, uint8_t proto, netif_transport_fn *fn, void *ctx);

/* Sends an IPv4 datagram of that protocol whose transport bytes (checksum included) the caller
 * made, with DF set, resolving the next hop as UDP does. Returns 0 or a negative errno. */
int netif_ip_send(struct netif *netif, uint32_t dst_ip, uint8_t proto, const void *l4, uint16_t len,
                  uint64_t now_ns);

/* Sends an ICMP echo request of size payload bytes; dont_fragment sets DF. */
int netif_ping(struct netif *netif, uint32_t dst_ip, uint16_t id, uint16_t seq, uint16_t size,
               bool dont_fragment, uint64_t now_ns);

/* Where echo replies to our requests go. */
void netif_set_echo_handler(struct netif *netif, netif_echo_fn *fn, void *ctx);

/* Forgets every neighbour (held frames are dropped and counted). */
void netif_neigh_flush(struct netif *netif);

/* Finds a neighbour entry, NULL if absent. */
const struct netif_neigh *netif_neigh_find(const struct netif *netif, uint32_t ip);

/* Parses "A.B.C.D" into network byte order; -EINVAL if malformed. */
int netif_parse_ipv4(const char *text, uint32_t *ip);

/* Formats an address (network byte order) into buf (at least 16 bytes). */
const char *netif_format_ipv4(uint32_t ip, char *buf, unsigned int size);

#endif
