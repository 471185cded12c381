/* The emulated VM's TCP (RFC 9293, the parts a small server needs): passive opens on two
 * services, echo (port 7) and a line counter (port 7777); the three-way handshake, sequence
 * numbers, cumulative acknowledgements, retransmission on a timeout (RFC 6298), the peer's
 * window and our own, FIN and RST. Every byte of connection state — the control blocks and both
 * directions' buffers — lives in pages of the VM's memory, so it moves with the VM as a guest
 * OS's would; only the retransmission deadlines are the host's (a clock does not move). */
#ifndef FERRY_VM_TCP_H
#define FERRY_VM_TCP_H

#include <stdbool.h>
#include <stdint.h>

struct machine;
struct netif;

#define TCP_ECHO_PORT      7
#define TCP_COUNTER_PORT   7777 /* each line adds the number it holds (1 if none): the total back */
#define TCP_CONNECTIONS    8
#define TCP_BUFFER         4096                      /* each direction of a connection: one page */
#define TCP_PAGES          (1 + 2 * TCP_CONNECTIONS) /* the control blocks, then the buffers */
#define TCP_MSS            1460
#define TCP_RTO_INITIAL_MS 1000 /* RFC 6298 */
#define TCP_RTO_MIN_MS     200  /* as Linux's, below RFC 6298's 1 s */
#define TCP_RTO_MAX_MS     60000
#define TCP_RETRIES        8 /* timeouts in a row before the connection is reset */
#define TCP_HELD_RANGES    4 /* data past gaps kept for later (RFC 9293 3.10.7.4) */

/* Why a segment was dropped (X(enum suffix, name, description)). */
#define TCP_DROP_REASONS(X)                                                                        \
	X(MALFORMED, "malformed", "shorter than its header, or a data offset out of range")        \
	X(CHECKSUM, "checksum", "checksum wrong")                                                  \
	X(OUT_OF_WINDOW, "out_of_window", "outside the receive window (answered with an ACK)")     \
	X(NO_CONNECTION, "no_connection", "no connection and no listener (answered with a RST)")   \
	X(NO_ROOM, "no_room", "a SYN while every connection is taken (answered with a RST)")       \
	X(OUT_OF_ORDER, "out_of_order",                                                            \
	  "data past a gap that could not be held (more gaps than kept; sent again by the peer)")  \
	X(BAD_ACK, "bad_ack", "acknowledges what was never sent (answered with an ACK)")

enum tcp_drop_reason {
#define TCP_DROP_ENUM(e, name, text) TCP_DROP_##e,
	TCP_DROP_REASONS(TCP_DROP_ENUM)
#undef TCP_DROP_ENUM
	        TCP_DROP_MAX
};

/* Their names and descriptions, indexed by enum tcp_drop_reason. */
extern const char *const tcp_drop_names[TCP_DROP_MAX];
extern const char *const tcp_drop_descriptions[TCP_DROP_MAX];

/* RFC 9293's states (LISTEN is the services', not a block's). */
enum tcp_state {
	TCP_FREE = 0,
	TCP_SYN_RECEIVED,
	TCP_ESTABLISHED,
	TCP_CLOSE_WAIT,
	TCP_LAST_ACK,
	TCP_STATE_MAX,
};

/* Received bytes [start, end) past the next expected one, held in the receive buffer at their
 * place until the gap before them fills: 8 bytes, the VM's byte order. */
struct tcp_range {
	uint32_t start, end;
} __attribute__((packed));

_Static_assert(sizeof(struct tcp_range) == 8, "a held range is 8 bytes");

/* One connection's control block, in the VM's memory: 128 bytes, the VM's (host) byte order,
 * addresses and ports as on the wire. */
struct tcp_tcb {
	uint8_t state; /* enum tcp_state */
	uint8_t fin_received;
	uint8_t fin_sent;
	uint8_t retries;
	uint16_t local_port; /* host byte order */
	uint16_t remote_port;
	uint32_t remote_ip; /* network byte order */
	uint32_t iss, irs;
	uint32_t snd_una, snd_nxt, snd_wnd, snd_wl1, snd_wl2;
	uint32_t rcv_nxt;
	uint32_t mss;             /* the peer's, at most TCP_MSS */
	uint32_t rx_head, rx_len; /* the receive buffer: bytes the service has not taken */
	uint32_t tx_len;          /* the send buffer: bytes from snd_una on, sent or not */
	uint32_t rto_ms, srtt_us, rttvar_us;
	uint64_t total;      /* the counter service's running total */
	uint64_t line_value; /* the number the line being read holds so far */
	uint8_t line_digits;
	uint8_t nb_held; /* ranges in held, in sequence order, apart from each other */
	uint8_t reserved[6];
	/* Data past a gap: without it, a peer's flight reordered on its way (as at a migration's
	 * switchover, where some frames come through the source) is dropped past its first
	 * hole, and a peer whose window allows too few duplicate ACKs for a fast retransmit
	 * waits a backed-off timeout for each segment. */
	struct tcp_range held[TCP_HELD_RANGES];
} __attribute__((packed));

_Static_assert(sizeof(struct tcp_tcb) == 128, "a control block is 128 bytes");

/* The first page of the region: a header, then the control blocks. */
struct tcp_region {
	uint32_t magic; /* TCP_REGION_MAGIC once formatted */
	uint32_t iss_next;
	uint8_t reserved[56];
	struct tcp_tcb tcbs[TCP_CONNECTIONS];
} __attribute__((packed));

#define TCP_REGION_MAGIC 0x54435031u /* "TCP1" */
_Static_assert(sizeof(struct tcp_region) == 64 + 128 * TCP_CONNECTIONS, "the region's header");

struct tcp_stats {
	uint64_t segments_rx, segments_tx, retransmits, resets_tx, connections;
	uint64_t segments_held;    /* came past a gap, and were kept until it filled */
	uint64_t blocks_discarded; /* control blocks whose numbers the buffers cannot hold */
	uint64_t drops[TCP_DROP_MAX];
};

/* The host's side of it: where the region is, how it sends, and the timers. */
struct tcp {
	struct machine *machine;
	struct netif *netif;
	uint64_t first_page;
	uint64_t deadline_ns[TCP_CONNECTIONS];  /* retransmission; 0: none armed */
	uint64_t rtt_start_ns[TCP_CONNECTIONS]; /* a segment being timed (Karn), 0: none */
	uint32_t rtt_seq[TCP_CONNECTIONS];
	struct tcp_stats stats;
};

/* Binds the VM's TCP over its netif, with its state in pages [first_page, first_page +
 * TCP_PAGES) of the machine (formatted on first use, so a migrated VM's is kept). Returns 0 or
 * a negative errno. */
int tcp_init(struct tcp *tcp, struct machine *machine, uint64_t first_page, struct netif *netif);

/* Formats the region if it holds none: call it once the VM runs and its pages are here (a VM
 * that arrived keeps the one it brought). */
void tcp_format(struct tcp *tcp);

/* The netif's transport handler: one segment for us. */
void tcp_input(void *tcp, uint32_t src_ip, uint32_t dst_ip, const uint8_t *segment, uint16_t len,
               uint64_t now_ns);

/* Retransmits what timed out and sends what the services have to say. Call it on every poll of
 * a running VM. */
void tcp_poll(struct tcp *tcp, uint64_t now_ns);

/* A connection's block (i below TCP_CONNECTIONS), as the VM's memory holds it. */
const struct tcp_tcb *tcp_connection(const struct tcp *tcp, unsigned int i);

/* "syn-received", "established", ...; "free". */
const char *tcp_state_name(enum tcp_state state);

#endif
