/* The migration channel: a reliable, paced message stream over an unreliable datagram link.
 * Sequence numbers, cumulative and selective acknowledgements, retransmission on timeout and on
 * gaps, and a token-bucket pacer. Delivery is exactly once but not in order: a page copy carries
 * its round, so order does not matter to the engine above. */
#include "channel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>

#define NS_PER_SECOND 1e9

int channel_init(struct channel *ch, const struct channel_config *config, channel_send_fn *send,
                 void *send_ctx, uint64_t now_ns)
{
	memset(ch, 0, sizeof(*ch));
	ch->config = *config;
	if (config->pacer != NULL) {
		ch->pacer = config->pacer;
	} else {
		channel_pacer_init(&ch->own_pacer, config->rate_bps, config->burst_bytes, now_ns);
		ch->pacer = &ch->own_pacer;
	}
	if (ch->config.rto_ns == 0)
		ch->config.rto_ns = CHANNEL_DEFAULT_RTO;
	ch->send = send;
	ch->send_ctx = send_ctx;
	ch->next_seq = ch->base = ((uint64_t)config->stream << PROTO_STREAM_SHIFT) + 1;
	ch->cumulative = ch->next_seq;
	ch->cwnd = CHANNEL_INITIAL_CWND;
	ch->ssthresh = CHANNEL_WINDOW;
	ch->rto_ns = ch->config.rto_ns;
	if (ch->config.frames != NULL)
		return 0;
	for (unsigned int i = 0; i < CHANNEL_WINDOW; i++) {
		ch->slots[i].own = ch->slots[i].buf = malloc(CHANNEL_MSG_MAX);
		if (ch->slots[i].own == NULL) {
			channel_fini(ch);
			return -ENOMEM;
		}
	}
	return 0;
}

/* The slot's message is acknowledged (or abandoned): the link's frame goes back. */
static void slot_free(struct channel *ch, struct channel_slot *slot)
{
	slot->in_use = false;
	if (slot->frame != NULL) {
		ch->config.frames->put(ch->config.frames->ctx, slot->frame);
		slot->frame = NULL;
		slot->buf = NULL;
	}
}

void channel_fini(struct channel *ch)
{
	for (unsigned int i = 0; i < CHANNEL_WINDOW; i++) {
		slot_free(ch, &ch->slots[i]);
		free(ch->slots[i].own);
		ch->slots[i].own = ch->slots[i].buf = NULL;
	}
}

void channel_pacer_init(struct channel_pacer *pacer, uint64_t rate_bps, uint64_t burst_bytes,
                        uint64_t now_ns)
{
	pacer->rate_bps = rate_bps;
	/* The bucket holds what the rate earns in 2 ms, so a worker iteration that takes that long
	 * (a burst of page faults) does not lose the rate. */
	pacer->burst_bytes = burst_bytes;
	if (pacer->burst_bytes == 0) {
		pacer->burst_bytes = rate_bps / 8 / 500;
		if (pacer->burst_bytes < 64 * 1024)
			pacer->burst_bytes = 64 * 1024;
	}
	pacer->tokens = (double)pacer->burst_bytes;
	pacer->refill_ns = now_ns;
}

static void refill(struct channel_pacer *pacer, uint64_t now_ns)
{
	if (pacer->rate_bps == 0 || now_ns <= pacer->refill_ns)
		return;
	pacer->tokens +=
	        (double)(now_ns - pacer->refill_ns) * (double)pacer->rate_bps / 8.0 / NS_PER_SECOND;
	if (pacer->tokens > (double)pacer->burst_bytes)
		pacer->tokens = (double)pacer->burst_bytes;
	pacer->refill_ns = now_ns;
}

bool channel_can_send(struct channel *ch, uint16_t len, uint64_t now_ns)
{
	if (ch->next_seq - ch->base >= CHANNEL_WINDOW ||
	    (double)(ch->next_seq - ch->base) >= ch->cwnd)
		return false;
	refill(ch->pacer, now_ns);
	return ch->pacer->rate_bps == 0 ||
	       ch->pacer->tokens >= (double)(len + ch->config.overhead_bytes);
}

static struct channel_slot *slot_of(struct channel *ch, uint64_t seq)
{
	return &ch->slots[seq % CHANNEL_WINDOW];
}

/* Puts a slot's message on the link, paying the pacer: its frame the first time, a copy for a
 * retransmission (the frame may still sit in a transmit queue). */
static int transmit(struct channel *ch, struct channel_slot *slot, bool first, uint64_t now_ns)
{
	int ret = first && slot->frame != NULL
	                  ? ch->config.frames->send(ch->config.frames->ctx, slot->frame)
	                  : ch->send(ch->send_ctx, slot->buf, slot->len);
	uint32_t wire = (uint32_t)slot->len + ch->config.overhead_bytes;

	slot->sent_ns = now_ns;
	if (ch->pacer->rate_bps != 0)
		ch->pacer->tokens -= wire;
	ch->stats.bytes_sent += slot->len;
	ch->stats.wire_bytes_sent += wire;
	if (ret < 0)
		ch->stats.send_errors++;
	return ret;
}

int64_t channel_send(struct channel *ch, enum proto_type type, const void *body, uint16_t body_len,
                     const void *data, uint16_t data_len, uint64_t now_ns)
{
	uint32_t len = (uint32_t)sizeof(struct proto_header) + body_len + data_len;
	uint32_t room = ch->config.seal != NULL ? PROTO_TAG_LEN : 0;

	if (len + room > CHANNEL_MSG_MAX)
		return -EMSGSIZE;
	/* Numbers never wrap, and stay in the stream's space: no nonce is used twice. */
	if (proto_stream_of(ch->next_seq) != ch->config.stream)
		return -ERANGE;
	if (!channel_can_send(ch, (uint16_t)(len + room), now_ns))
		return -EAGAIN;
	struct channel_slot *slot = slot_of(ch, ch->next_seq);
	if (ch->config.frames != NULL) {
		slot->frame = ch->config.frames->get(ch->config.frames->ctx, (uint16_t)(len + room),
		                                     &slot->buf);
		if (slot->frame == NULL) {
			ch->stats.no_frame++;
			return -EAGAIN;
		}
	}
	uint64_t seq = ch->next_seq++;
	proto_write_header(slot->buf, type, ch->config.session, seq,
	                   (uint16_t)(body_len + data_len));
	if (body_len != 0)
		memcpy(slot->buf + sizeof(struct proto_header), body, body_len);
	if (ch->config.seal != NULL) {
		uint16_t head = (uint16_t)(sizeof(struct proto_header) + body_len);
		int added = ch->config.seal(ch->config.seal_ctx, slot->buf, head, data, data_len);
		if (added < 0) {
			ch->next_seq--;
			slot_free(ch, slot);
			return added;
		}
		len = head + (uint32_t)added;
	} else if (data_len != 0) {
		memcpy(slot->buf + sizeof(struct proto_header) + body_len, data, data_len);
	}
	slot->seq = seq;
	slot->len = (uint16_t)len;
	slot->in_use = true;
	slot->retries = 0;
	ch->stats.sent++;
	transmit(ch, slot, true, now_ns);
	return (int64_t)seq;
}

/* RFC 6298's estimator, fed only by messages sent once (Karn): the timeout follows the link,
 * from CHANNEL_MIN_RTO to the configured one. */
static void rtt_sample(struct channel *ch, uint64_t rtt)
{
	if (ch->stats.min_rtt_ns == 0 || rtt < ch->stats.min_rtt_ns)
		ch->stats.min_rtt_ns = rtt;
	if (ch->srtt_ns == 0) {
		ch->srtt_ns = rtt;
		ch->rttvar_ns = rtt / 2;
	} else {
		uint64_t error = rtt > ch->srtt_ns ? rtt - ch->srtt_ns : ch->srtt_ns - rtt;
		ch->rttvar_ns = (3 * ch->rttvar_ns + error) / 4;
		ch->srtt_ns = (7 * ch->srtt_ns + rtt) / 8;
	}
	uint64_t rto = ch->srtt_ns + 4 * ch->rttvar_ns;
	if (rto < CHANNEL_MIN_RTO)
		rto = CHANNEL_MIN_RTO;
	if (rto > ch->config.rto_ns)
		rto = ch->config.rto_ns;
	ch->rto_ns = rto;
}

static void release(struct channel *ch, struct channel_slot *slot, uint64_t now_ns)
{
	if (slot->retries == 0)
		rtt_sample(ch, now_ns - slot->sent_ns);
	slot_free(ch, slot);
	ch->stats.acked++;
	/* Slow start below the threshold, one message per window of acks above it. */
	ch->cwnd += ch->cwnd < ch->ssthresh ? 1.0 : 1.0 / ch->cwnd;
	if (ch->cwnd > CHANNEL_WINDOW)
		ch->cwnd = CHANNEL_WINDOW;
}

/* A message was lost (seq is the lost one): halve the window, once for all the losses of one
 * window's flight (those numbered below what was sent when the first was seen). */
static void on_loss(struct channel *ch, uint64_t seq)
{
	if (seq < ch->recovery_seq)
		return;
	ch->recovery_seq = ch->next_seq;
	ch->ssthresh = ch->cwnd / 2 < CHANNEL_MIN_CWND ? CHANNEL_MIN_CWND : ch->cwnd / 2;
	ch->cwnd = ch->ssthresh;
	ch->stats.window_cuts++;
}

static inline bool sack_test(const uint64_t *sack, unsigned int i)
{
	return (sack[i / 64] >> (i % 64)) & 1;
}

void channel_on_ack(struct channel *ch, const struct proto_ack *ack, uint64_t now_ns)
{
	uint64_t cumulative = rte_be_to_cpu_64(ack->cumulative);
	uint64_t sack[PROTO_SACK_WORDS];

	for (unsigned int w = 0; w < PROTO_SACK_WORDS; w++)
		sack[w] = rte_be_to_cpu_64(ack->sack[w]);

	/* An ack from the future is nonsense, and one from the past says nothing new. */
	if (cumulative > ch->next_seq || cumulative + CHANNEL_WINDOW < ch->base)
		return;
	for (uint64_t seq = ch->base; seq < cumulative; seq++) {
		struct channel_slot *slot = slot_of(ch, seq);
		if (slot->in_use && slot->seq == seq)
			release(ch, slot, now_ns);
	}
	if (cumulative > ch->base)
		ch->base = cumulative;
	unsigned int highest = 0;
	for (unsigned int i = 1; i < CHANNEL_WINDOW; i++) {
		if (!sack_test(sack, i))
			continue;
		uint64_t seq = cumulative + i;
		struct channel_slot *slot = slot_of(ch, seq);
		if (slot->in_use && slot->seq == seq)
			release(ch, slot, now_ns);
		highest = i;
	}
	/* Something after the gap arrived: the gap itself is lost, not late. Resend it at once,
	 * at most once per round trip. */
	uint64_t round_trip = ch->srtt_ns != 0 ? ch->srtt_ns : ch->rto_ns / 4;
	for (unsigned int i = 0; i < highest; i++) {
		uint64_t seq = cumulative + i;
		if (i != 0 && sack_test(sack, i))
			continue;
		struct channel_slot *slot = slot_of(ch, seq);
		if (slot->in_use && slot->seq == seq && now_ns - slot->sent_ns >= round_trip) {
			on_loss(ch, seq);
			slot->retries++;
			ch->stats.fast_retransmitted++;
			transmit(ch, slot, false, now_ns);
		}
	}
	/* The window slides past every acknowledged message. */
	while (ch->base != ch->next_seq && !slot_of(ch, ch->base)->in_use)
		ch->base++;
}

#define CHANNEL_URGENT_MIN_RTO 100000ull /* 100 us: an urgent channel's shortest timeout */

unsigned int channel_poll(struct channel *ch, uint64_t now_ns)
{
	unsigned int resent = 0;

	if (!ch->urgent && now_ns - ch->scan_ns < CHANNEL_SCAN_NS)
		return 0;
	ch->scan_ns = now_ns;
	uint64_t base = ch->rto_ns;
	if (ch->urgent) {
		base = 2 * ch->srtt_ns < CHANNEL_URGENT_MIN_RTO ? CHANNEL_URGENT_MIN_RTO
		                                                : 2 * ch->srtt_ns;
		if (base > ch->rto_ns)
			base = ch->rto_ns;
	}
	for (uint64_t seq = ch->base; seq != ch->next_seq; seq++) {
		struct channel_slot *slot = slot_of(ch, seq);
		/* Each retry waits twice as long, up to the configured timeout. */
		uint64_t timeout = base << (slot->retries < 5 ? slot->retries : 5);
		if (timeout > ch->config.rto_ns)
			timeout = ch->config.rto_ns;
		if (!slot->in_use || slot->seq != seq || now_ns - slot->sent_ns < timeout)
			continue;
		on_loss(ch, seq);
		slot->retries++;
		ch->stats.retransmitted++;
		transmit(ch, slot, false, now_ns);
		resent++;
	}
	return resent;
}

void channel_set_urgent(struct channel *ch, bool urgent)
{
	ch->urgent = urgent;
}

void channel_recover(struct channel *ch)
{
	for (uint64_t seq = ch->base; seq != ch->next_seq; seq++) {
		struct channel_slot *slot = slot_of(ch, seq);
		if (slot->in_use && slot->seq == seq) {
			slot->retries = 0;
			slot->sent_ns = 0;
		}
	}
	ch->scan_ns = 0;
	ch->ssthresh = CHANNEL_MIN_CWND;
	ch->cwnd = CHANNEL_MIN_CWND;
	ch->recovery_seq = ch->next_seq;
}

bool channel_idle(const struct channel *ch)
{
	return ch->base == ch->next_seq;
}

bool channel_accept(struct channel *ch, uint64_t seq)
{
	if (seq < ch->cumulative) {
		ch->stats.duplicates++;
		return false;
	}
	uint64_t ahead = seq - ch->cumulative;
	if (ahead >= CHANNEL_WINDOW) {
		ch->stats.out_of_window++;
		return false;
	}
	uint64_t *word = &ch->received[seq % CHANNEL_WINDOW / 64], bit = 1ull << (seq % 64);
	if (*word & bit) {
		ch->stats.duplicates++;
		return false;
	}
	*word |= bit;
	/* Slide over everything now contiguous, clearing the ring behind. */
	for (;;) {
		uint64_t *at = &ch->received[ch->cumulative % CHANNEL_WINDOW / 64];
		uint64_t mask = 1ull << (ch->cumulative % 64);
		if (!(*at & mask))
			break;
		*at &= ~mask;
		ch->cumulative++;
	}
	ch->stats.received++;
	return true;
}

void channel_make_ack(const struct channel *ch, struct proto_ack *ack)
{
	/* The ring read from cumulative on: word w of the sack starts at bit cumulative + 64 w. */
	unsigned int start = (unsigned int)(ch->cumulative % CHANNEL_WINDOW);

	ack->cumulative = rte_cpu_to_be_64(ch->cumulative);
	for (unsigned int w = 0; w < PROTO_SACK_WORDS; w++) {
		unsigned int at = (start + 64 * w) % CHANNEL_WINDOW, shift = at % 64;
		uint64_t low = ch->received[at / 64] >> shift;
		uint64_t high = shift == 0 ? 0
		                           : ch->received[(at / 64 + 1) % PROTO_SACK_WORDS]
		                                     << (64 - shift);
		ack->sack[w] = rte_cpu_to_be_64(low | high);
	}
}
