/* The migration channel: a reliable, paced message stream over an unreliable datagram link.
 * Sequence numbers, cumulative and selective acknowledgements, retransmission on timeout and on
 * gaps, and a token-bucket pacer. Delivery is exactly once but not in order: a page copy carries
 * its round, so order does not matter to the engine above. */
#ifndef FERRY_MIGRATE_CHANNEL_H
#define FERRY_MIGRATE_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migrate/proto.h"

#define CHANNEL_WINDOW PROTO_SACK_BITS /* messages in flight */
_Static_assert(CHANNEL_WINDOW % 64 == 0, "the receive ring is whole 64-bit words");
#define CHANNEL_MSG_MAX     9000        /* the largest datagram (MTU 9000 less IP/UDP) */
#define CHANNEL_DEFAULT_RTO 20000000ull /* 20 ms: the first timeout, and the longest */
#define CHANNEL_MIN_RTO                                                                            \
	5000000ull /* 5 ms: the shortest; a worker that stalls a moment is not a loss */
#define CHANNEL_SCAN_NS 1000000ull /* timeouts are looked for at most once a millisecond */
/* The congestion window, in messages: it starts at CHANNEL_INITIAL_CWND, grows while acks come
 * (doubling per round trip, then by one per round trip past the threshold, as TCP Reno) up to
 * CHANNEL_WINDOW, and halves on a loss, at most once per window of messages; never under
 * CHANNEL_MIN_CWND, so an emulated random loss does not starve the stream. */
#define CHANNEL_INITIAL_CWND 64
#define CHANNEL_MIN_CWND     32

/* Sends one datagram on the link; returns 0 or a negative errno (the channel retries later). */
typedef int channel_send_fn(void *ctx, const void *buf, uint16_t len);

/* Seals a message: buf holds its header and fixed body (head_len bytes); the sealer writes the
 * data after them (encrypting it on the way when the session encrypts: one pass from the guest
 * page into the message) and the tag after that. Returns the bytes it added (data and tag) or a
 * negative errno. */
typedef int channel_seal_fn(void *ctx, uint8_t *buf, uint16_t head_len, const void *data,
                            uint16_t data_len);

/* What a link lends the channel so a message is built, sealed and kept for a retransmission in the
 * frame that carries it, never copied into one: one pass over each byte of a page on the way out.
 * Without it the channel keeps messages in buffers of its own and the link copies them. */
struct channel_frames {
	/* A frame with room for a message of len bytes, which go at *msg; NULL when none is free. */
	void *(*get)(void *ctx, uint16_t len, uint8_t **msg);
	/* Sends a frame the channel built; the channel's reference stays, so it can read the message
	 * again until it puts it. Returns 0 or a negative errno (resent on timeout, by copy). */
	int (*send)(void *ctx, void *frame);
	/* Gives up the channel's reference. */
	void (*put)(void *ctx, void *frame);
	void *ctx;
};

/* A token bucket that paces one channel, or every channel of a session together (the streams
 * share the link's rate: one idle stream leaves its share to the others). */
struct channel_pacer {
	uint64_t rate_bps;    /* 0 = unpaced */
	uint64_t burst_bytes; /* bucket depth; 0 = 2 ms at the rate, at least 64 KiB */
	double tokens;        /* bytes it allows now */
	uint64_t refill_ns;
};

/* Prepares a pacer for a rate, its bucket full. */
void channel_pacer_init(struct channel_pacer *pacer, uint64_t rate_bps, uint64_t burst_bytes,
                        uint64_t now_ns);

struct channel_config {
	uint64_t rate_bps;    /* pacer; 0 = unpaced */
	uint64_t burst_bytes; /* bucket depth; 0 = 2 ms at the rate, at least 64 KiB */
	/* A pacer shared with other channels (rate_bps and burst_bytes are then its); NULL: the
	 * channel's own. */
	struct channel_pacer *pacer;
	uint64_t rto_ns; /* first and longest retransmission timeout; 0 = CHANNEL_DEFAULT_RTO */
	uint64_t session;
	unsigned int stream;     /* numbers from (stream << PROTO_STREAM_SHIFT) + 1, both ends */
	uint16_t overhead_bytes; /* what the link adds to each message (headers), for the pacer */
	channel_seal_fn *seal;   /* NULL: messages go as built */
	void *seal_ctx;
	const struct channel_frames
	        *frames; /* NULL: the channel's own buffers, copied to the link */
};

struct channel_slot {
	uint64_t seq;
	uint16_t len;
	bool in_use;
	uint8_t retries;
	uint64_t sent_ns;
	uint8_t *buf; /* the message as sent: in the frame, or in own */
	void *frame;  /* the link's frame holding it, while in use (with channel_frames) */
	uint8_t *own; /* CHANNEL_MSG_MAX bytes of the channel's own (without) */
};

struct channel_stats {
	uint64_t sent, retransmitted, fast_retransmitted, acked;
	uint64_t received, duplicates, out_of_window;
	uint64_t bytes_sent;      /* messages, first copies and retransmissions */
	uint64_t wire_bytes_sent; /* the same with the link's overhead: what the pacer paid */
	uint64_t send_errors;     /* the link refused a message (it is resent on timeout) */
	uint64_t no_frame;        /* the link had no frame to lend: the message waited */
	uint64_t window_cuts;     /* the congestion window was halved for a loss */
	uint64_t min_rtt_ns;      /* the shortest round trip seen (0 before the first ack) */
};

struct channel {
	struct channel_config config;
	channel_send_fn *send;
	void *send_ctx;
	/* sender */
	uint64_t next_seq; /* the next message's number (starts at 1) */
	uint64_t base;     /* the oldest unacknowledged number */
	struct channel_slot slots[CHANNEL_WINDOW];
	struct channel_pacer own_pacer;
	struct channel_pacer *pacer; /* own_pacer, or the config's shared one */
	double cwnd;                 /* congestion window, messages */
	double ssthresh;
	uint64_t recovery_seq; /* a loss among numbers below this was answered already */
	/* round-trip estimate from first transmissions' acks (RFC 6298), for the timeout */
	uint64_t srtt_ns, rttvar_ns, rto_ns;
	uint64_t scan_ns; /* when channel_poll last looked for timeouts */
	bool urgent;      /* channel_set_urgent */
	/* receiver */
	uint64_t cumulative;                 /* every message below this has arrived */
	uint64_t received[PROTO_SACK_WORDS]; /* bit seq % CHANNEL_WINDOW: seq arrived (a ring; the
	                                      * bits of numbers below cumulative are clear) */
	struct channel_stats stats;
};

/* Prepares a channel over a link. Returns 0 or -ENOMEM. */
int channel_init(struct channel *channel, const struct channel_config *config,
                 channel_send_fn *send, void *send_ctx, uint64_t now_ns);

/* Frees the channel's buffers. */
void channel_fini(struct channel *channel);

/* True if a message of len bytes may go now: the congestion window has room and the pacer has
 * tokens. */
bool channel_can_send(struct channel *channel, uint16_t len, uint64_t now_ns);

/* Sends a message: the channel writes the header (type, the session, the next sequence number),
 * then the body's fixed part and its data (which may be NULL). Returns the sequence number, or a
 * negative errno (-EAGAIN when the window, the pacer or the link's frames say wait, -EMSGSIZE if
 * too big, -ERANGE once the numbers leave the stream's space (never in practice: 2^56 messages)). */
int64_t channel_send(struct channel *channel, enum proto_type type, const void *body,
                     uint16_t body_len, const void *data, uint16_t data_len, uint64_t now_ns);

/* Takes an ACK's content: frees what it acknowledges and resends what it shows missing. */
void channel_on_ack(struct channel *channel, const struct proto_ack *ack, uint64_t now_ns);

/* Retransmits what timed out; returns how many. Call it often (every poll): it looks at the
 * window at most every CHANNEL_SCAN_NS, far below the shortest timeout. */
unsigned int channel_poll(struct channel *channel, uint64_t now_ns);

/* True once every message sent has been acknowledged. */
bool channel_idle(const struct channel *channel);

/* While something waits on the channel's last messages (a VM paused at the switchover, a vCPU
 * stalled on a demanded page), a message goes again after twice the smoothed round trip (100 us
 * at least) rather than after the timeout meant for a loaded link: there a retransmission costs
 * a frame, a wait costs downtime. Timeouts are then looked for at every poll. */
void channel_set_urgent(struct channel *channel, bool urgent);

/* The path is back (or new): every message in flight goes again at the next poll, its backoff
 * forgotten, and the window starts over from its floor as after a timeout. */
void channel_recover(struct channel *channel);

/* Receiver: records a message's sequence number. Returns true if it is new (deliver it), false
 * for a duplicate or one outside the window (drop it). */
bool channel_accept(struct channel *channel, uint64_t seq);

/* Receiver: the acknowledgement to send back now. */
void channel_make_ack(const struct channel *channel, struct proto_ack *ack);

#endif
