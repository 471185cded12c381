/* Unit tests of the migration channel over an in-memory link that loses, duplicates and
 * reorders datagrams (fixed seeds), on a driven clock: exactly-once delivery, retransmission,
 * and the pacer's rate. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>

#include "migrate/channel.h"

#define MS 1000000ull

/* One direction of the link: datagrams in flight, delivered in a shuffled order. */
struct link {
	uint8_t bufs[256][CHANNEL_MSG_MAX];
	uint16_t lens[256];
	unsigned int n;
	uint32_t loss_pct, dup_pct;
	uint64_t rng;
	uint64_t carried;
};

static uint32_t next_random(struct link *l)
{
	l->rng = l->rng * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(l->rng >> 33);
}

static int link_send(void *ctx, const void *buf, uint16_t len)
{
	struct link *l = ctx;
	unsigned int copies = 1;

	if (next_random(l) % 100 < l->loss_pct)
		return 0;
	if (next_random(l) % 100 < l->dup_pct)
		copies = 2;
	for (unsigned int c = 0; c < copies && l->n < 256; c++) {
		memcpy(l->bufs[l->n], buf, len);
		l->lens[l->n++] = len;
	}
	return 0;
}

/* Takes one datagram out, from anywhere in the queue (reordering). */
static bool link_take(struct link *l, uint8_t *out, uint16_t *len)
{
	if (l->n == 0)
		return false;
	unsigned int i = next_random(l) % l->n;
	memcpy(out, l->bufs[i], l->lens[i]);
	*len = l->lens[i];
	l->n--;
	memcpy(l->bufs[i], l->bufs[l->n], l->lens[l->n]);
	l->lens[i] = l->lens[l->n];
	l->carried++;
	return true;
}

static struct link forward, backward;

/* Moves n messages of size bytes through the channel; returns the clock at the end. */
static uint64_t transfer(struct channel *tx, struct channel *rx, uint32_t n, uint16_t size,
                         uint8_t *delivered)
{
	static uint8_t buf[CHANNEL_MSG_MAX];
	uint8_t body[CHANNEL_MSG_MAX];
	uint64_t now = 1;
	uint32_t next = 0;
	uint16_t len;

	memset(body, 0, sizeof(body));
	while (next < n || !channel_idle(tx)) {
		cr_assert_lt(now, 600000 * MS, "the transfer never finished");
		while (next < n && channel_can_send(tx, (uint16_t)(size + 24), now)) {
			uint32_t index = rte_cpu_to_be_32(next);
			struct proto_state state = {0};
			memcpy(body, &index, sizeof(index));
			int64_t seq = channel_send(tx, PROTO_STATE, &state, sizeof(state), body,
			                           (uint16_t)(size - sizeof(state)), now);
			if (seq == -EAGAIN && tx->config.frames != NULL)
				break; /* every lent frame is in flight */
			cr_assert_geq(seq, 1);
			next++;
		}
		while (link_take(&forward, buf, &len)) {
			struct proto_message msg;
			cr_assert_eq(proto_parse(buf, len, &msg), PROTO_OK);
			if (!channel_accept(rx, msg.seq))
				continue;
			uint32_t index;
			memcpy(&index, msg.data, sizeof(index));
			index = rte_be_to_cpu_32(index);
			cr_assert_lt(index, n);
			cr_assert_eq(delivered[index], 0, "message %u delivered twice", index);
			delivered[index] = 1;
		}
		struct proto_ack ack;
		channel_make_ack(rx, &ack);
		link_send(&backward, &ack, sizeof(ack));
		while (link_take(&backward, buf, &len))
			channel_on_ack(tx, (const struct proto_ack *)buf, now);
		now += MS;
		channel_poll(tx, now);
	}
	return now;
}

static void run(uint32_t loss, uint32_t dup, uint64_t seed, uint32_t n)
{
	struct channel tx, rx;
	struct channel_config config = {.session = 7};
	uint8_t *delivered = calloc(n, 1);

	forward = (struct link){.loss_pct = loss, .dup_pct = dup, .rng = seed};
	backward = (struct link){.loss_pct = loss, .dup_pct = dup, .rng = seed + 1};
	cr_assert_eq(channel_init(&tx, &config, link_send, &forward, 0), 0);
	cr_assert_eq(channel_init(&rx, &config, link_send, &backward, 0), 0);
	transfer(&tx, &rx, n, 100, delivered);
	for (uint32_t i = 0; i < n; i++)
		cr_assert_eq(delivered[i], 1, "message %u (loss %u%%, dup %u%%)", i, loss, dup);
	cr_assert_eq(rx.stats.received, n);
	if (loss > 0)
		cr_assert_gt(tx.stats.retransmitted + tx.stats.fast_retransmitted, 0);
	if (dup > 0 || loss > 0)
		cr_assert_gt(rx.stats.duplicates, 0);
	channel_fini(&tx);
	channel_fini(&rx);
	free(delivered);
}

/* A link that lends its frames, as the vmk lends mbufs: a few of them, each counted. */
#define TEST_FRAMES 48
struct lent_frame {
	uint8_t buf[CHANNEL_MSG_MAX];
	uint16_t len; /* what the channel asked for */
	int refs;
};

static struct lent_frame frames[TEST_FRAMES];
static uint64_t frames_sent_in_place;

static void *frame_get(void *ctx, uint16_t len, uint8_t **msg)
{
	(void)ctx;
	for (unsigned int i = 0; i < TEST_FRAMES; i++) {
		if (frames[i].refs == 0) {
			frames[i].refs = 1;
			frames[i].len = len;
			*msg = frames[i].buf;
			return &frames[i];
		}
	}
	return NULL;
}

static int frame_send(void *ctx, void *frame)
{
	struct lent_frame *f = frame;
	struct proto_message msg;

	(void)ctx;
	/* The message fills what was asked for, and its header says so. */
	cr_assert_eq(proto_parse(f->buf, f->len, &msg), PROTO_OK);
	cr_assert_geq(f->refs, 1, "a frame sent after it was given back");
	frames_sent_in_place++;
	return link_send(&forward, f->buf, f->len);
}

static void frame_put(void *ctx, void *frame)
{
	struct lent_frame *f = frame;

	(void)ctx;
	cr_assert_eq(f->refs, 1, "a frame given back twice");
	f->refs = 0;
}

Test(channel, lent_frames_carry_first_copies_and_all_go_back_on_stream_2)
{
	const struct channel_frames lender = {
	        .get = frame_get, .send = frame_send, .put = frame_put};
	struct channel_config config = {.session = 7, .stream = 2, .frames = &lender};
	struct channel tx, rx;
	const uint32_t n = 3000;
	uint8_t *delivered = calloc(n, 1);

	memset(frames, 0, sizeof(frames));
	frames_sent_in_place = 0;
	forward = (struct link){.loss_pct = 5, .dup_pct = 2, .rng = 11};
	backward = (struct link){.loss_pct = 5, .rng = 12};
	cr_assert_eq(channel_init(&tx, &config, link_send, &forward, 0), 0);
	config.frames = NULL;
	cr_assert_eq(channel_init(&rx, &config, link_send, &backward, 0), 0);
	transfer(&tx, &rx, n, 100, delivered);
	for (uint32_t i = 0; i < n; i++)
		cr_assert_eq(delivered[i], 1, "message %u", i);
	/* Every first copy left in its frame; retransmissions were copies of it; fewer frames than
	 * the window made the sender wait, not fail. */
	cr_assert_eq(frames_sent_in_place, n);
	cr_assert_eq(proto_stream_of(tx.next_seq), 2, "numbers from stream 2's space");
	cr_assert_gt(tx.stats.retransmitted + tx.stats.fast_retransmitted, 0);
	cr_assert_gt(tx.stats.no_frame, 0);
	for (unsigned int i = 0; i < TEST_FRAMES; i++)
		cr_assert_eq(frames[i].refs, 0, "frame %u kept after the last ack", i);
	/* A channel ended with messages in flight gives their frames back too. */
	struct proto_state state = {0};
	cr_assert_geq(channel_send(&tx, PROTO_STATE, &state, sizeof(state), NULL, 0, 10), 1);
	cr_assert_eq(frames[0].refs + frames[1].refs, 1);
	channel_fini(&tx);
	for (unsigned int i = 0; i < TEST_FRAMES; i++)
		cr_assert_eq(frames[i].refs, 0);
	channel_fini(&rx);
	free(delivered);
}

Test(channel, a_clean_link_delivers_everything_once)
{
	run(0, 0, 1, 5000);
}

Test(channel, loss_duplication_and_reordering_still_deliver_everything_exactly_once)
{
	run(10, 5, 2, 5000);
	run(30, 10, 3, 2000);
}

Test(channel, the_pacer_holds_the_configured_rate)
{
	struct channel tx, rx;
	/* 8 Mbit/s is 1,000 bytes a millisecond. */
	struct channel_config config = {.session = 1, .rate_bps = 8000000, .burst_bytes = 10000};
	uint8_t *delivered = calloc(3000, 1);

	forward = (struct link){.rng = 5};
	backward = (struct link){.rng = 6};
	cr_assert_eq(channel_init(&tx, &config, link_send, &forward, 0), 0);
	cr_assert_eq(channel_init(&rx, &config, link_send, &backward, 0), 0);
	/* 3,000 messages of 1,000 bytes (976 of body and the header): 3 s at the rate, less the
	 * first 10 messages' worth of burst. */
	uint64_t end = transfer(&tx, &rx, 3000, 976, delivered);
	cr_assert(end >= 2985 * MS && end <= 3010 * MS, "took %lu ms", (unsigned long)(end / MS));
	cr_assert_eq(tx.stats.retransmitted, 0);
	channel_fini(&tx);
	channel_fini(&rx);
	free(delivered);
}

/* Sends 1,000-byte messages (a body of 976 and the header) while the pacer lets it at now;
 * returns how many went. */
static unsigned int send_while_paced(struct channel *ch, uint64_t now)
{
	static uint8_t data[976];
	struct proto_state state = {0};
	unsigned int sent = 0;

	while (channel_can_send(ch, 1000, now)) {
		cr_assert_geq(channel_send(ch, PROTO_STATE, &state, sizeof(state), data,
		                           (uint16_t)(sizeof(data) - sizeof(state)), now),
		              1);
		sent++;
	}
	return sent;
}

/* A session's streams share one pacer: together they keep the rate, and one that has nothing to
 * send leaves all of it to the others (post-copy's demand stream idles most of the time). */
Test(channel, streams_share_one_pacer)
{
	struct channel_pacer pacer;
	struct channel a, b;
	struct channel_config config = {
	        .session = 1, .rate_bps = 8000000, .burst_bytes = 10000, .pacer = &pacer};

	forward = (struct link){.rng = 7};
	channel_pacer_init(&pacer, config.rate_bps, config.burst_bytes, 0);
	config.stream = 0;
	cr_assert_eq(channel_init(&a, &config, link_send, &forward, 0), 0);
	config.stream = 1;
	cr_assert_eq(channel_init(&b, &config, link_send, &forward, 0), 0);
	cr_assert_eq(send_while_paced(&a, 0), 10, "the whole bucket to the one that sends");
	cr_assert_eq(send_while_paced(&b, 0), 0, "and nothing left for the other");
	/* 5 ms later, 5,000 bytes more: whoever asks first. */
	cr_assert_eq(send_while_paced(&b, 5 * MS), 5);
	cr_assert_eq(send_while_paced(&a, 5 * MS), 0);
	/* Both sending for 40 ms: 40 messages between them, not 40 each. */
	unsigned int both = 0;
	for (uint64_t t = 6 * MS; t <= 45 * MS; t += MS)
		both += send_while_paced(&a, t) + send_while_paced(&b, t);
	cr_assert_eq(both, 40);
	channel_fini(&a);
	channel_fini(&b);
}

/* A lost message goes again after the timeout meant for a loaded link (5 ms at least), or, on an
 * urgent channel (a paused VM waits on it), after twice the round trip (100 us at least). */
Test(channel, an_urgent_channel_resends_after_a_round_trip_or_two)
{
	struct channel ch;
	struct channel_config config = {.session = 1};
	struct proto_state state = {0};

	forward = (struct link){.rng = 9, .loss_pct = 100};
	cr_assert_eq(channel_init(&ch, &config, link_send, &forward, 0), 0);
	cr_assert_geq(channel_send(&ch, PROTO_STATE, &state, sizeof(state), NULL, 0, 0), 1);
	cr_assert_eq(channel_poll(&ch, 2 * MS), 0, "not yet: a loaded link's timeout");
	channel_set_urgent(&ch, true);
	cr_assert_eq(channel_poll(&ch, 2 * MS + 1), 1, "urgent: at once, past 100 us");
	cr_assert_eq(channel_poll(&ch, 2 * MS + 150000), 0, "the next retry waits twice as long");
	cr_assert_eq(channel_poll(&ch, 2 * MS + 250000), 1);
	channel_set_urgent(&ch, false);
	cr_assert_eq(channel_poll(&ch, 4 * MS), 0, "no longer urgent: the long timeout again");
	cr_assert_eq(ch.stats.retransmitted, 2);
	channel_fini(&ch);
}

Test(channel, stray_numbers_are_refused)
{
	struct channel rx;
	struct channel_config config = {.session = 1};

	backward = (struct link){.rng = 1};
	cr_assert_eq(channel_init(&rx, &config, link_send, &backward, 0), 0);
	cr_assert(channel_accept(&rx, 1));
	cr_assert_not(channel_accept(&rx, 1), "a duplicate");
	cr_assert_not(channel_accept(&rx, 0), "from before the window");
	cr_assert_not(channel_accept(&rx, 2 + CHANNEL_WINDOW), "beyond the window");
	cr_assert(channel_accept(&rx, 3));
	cr_assert(channel_accept(&rx, 2));
	cr_assert_not(channel_accept(&rx, UINT64_MAX), "far beyond: no wrap to the past");
	struct proto_ack ack;
	channel_make_ack(&rx, &ack);
	cr_assert_eq(rte_be_to_cpu_64(ack.cumulative), 4);
	for (unsigned int w = 0; w < PROTO_SACK_WORDS; w++)
		cr_assert_eq(ack.sack[w], 0);
	channel_fini(&rx);
}

/* The receiver's ring of arrivals wraps many times over a long stream: after 1,000 messages,
 * every selective acknowledgement bit still names the right number, in every word of the sack. */
Test(channel, the_sack_names_the_right_numbers_after_the_ring_wraps)
{
	struct channel rx;
	struct channel_config config = {.session = 1};

	backward = (struct link){.rng = 1};
	cr_assert_eq(channel_init(&rx, &config, link_send, &backward, 0), 0);
	for (uint64_t seq = 1; seq <= 1000; seq++)
		cr_assert(channel_accept(&rx, seq));
	/* 1001 is missing; these arrive beyond it, one in each word of the sack and across the
	 * ring's end. */
	const uint64_t ahead[] = {1, 2, 63, 64, 100, 191, 200, CHANNEL_WINDOW - 1};
	for (unsigned int i = 0; i < sizeof(ahead) / sizeof(ahead[0]); i++)
		cr_assert(channel_accept(&rx, 1001 + ahead[i]));
	cr_assert_not(channel_accept(&rx, 1001 + CHANNEL_WINDOW), "beyond the window");
	struct proto_ack ack;
	channel_make_ack(&rx, &ack);
	cr_assert_eq(rte_be_to_cpu_64(ack.cumulative), 1001);
	for (unsigned int bit = 0; bit < CHANNEL_WINDOW; bit++) {
		bool expected = false;
		for (unsigned int i = 0; i < sizeof(ahead) / sizeof(ahead[0]); i++)
			expected |= ahead[i] == bit;
		bool set = (rte_be_to_cpu_64(ack.sack[bit / 64]) >> (bit % 64)) & 1;
		cr_assert_eq(set, expected, "sack bit %u", bit);
	}
	/* The gap fills: everything up to the first hole after it slides under the cumulative. */
	cr_assert(channel_accept(&rx, 1001));
	channel_make_ack(&rx, &ack);
	cr_assert_eq(rte_be_to_cpu_64(ack.cumulative), 1004);
	cr_assert_eq(rte_be_to_cpu_64(ack.sack[0]), 1ull << (1064 - 1004) | 1ull << (1065 - 1004));
	channel_fini(&rx);
}

/* Counts the messages a channel lets go before it says wait (the pacer is off). */
static unsigned int send_until_blocked(struct channel *tx, uint64_t now)
{
	unsigned int sent = 0;
	while (channel_send(tx, PROTO_PAGES, NULL, 0, "x", 1, now) >= 0)
		sent++;
	return sent;
}

static void ack_all_below(struct channel *tx, uint64_t cumulative, uint64_t now)
{
	struct proto_ack ack = {.cumulative = rte_cpu_to_be_64(cumulative)};
	channel_on_ack(tx, &ack, now);
}

/* The congestion window: it opens by one message per acknowledgement from its initial size up to
 * the whole window, halves once for a window's losses, and never goes under its floor; and the
 * timeout follows the measured round trip. A pacer (rate_bps, with a bucket deep enough never to
 * be the limit here) changes none of it. */
static void congestion_window_case(uint64_t rate_bps)
{
	struct channel tx;
	struct channel_config config = {
	        .session = 1, .rate_bps = rate_bps, .burst_bytes = 1u << 30};

	forward = (struct link){.rng = 1};
	cr_assert_eq(channel_init(&tx, &config, link_send, &forward, 0), 0);
	uint64_t now = MS;
	cr_assert_eq(send_until_blocked(&tx, now), CHANNEL_INITIAL_CWND);
	ack_all_below(&tx, tx.next_seq, now += MS);
	cr_assert_eq(send_until_blocked(&tx, now), 2 * CHANNEL_INITIAL_CWND,
	             "slow start doubles it");
	cr_assert_eq(tx.rto_ns, CHANNEL_MIN_RTO, "a 1 ms round trip gives the shortest timeout");
	ack_all_below(&tx, tx.next_seq, now += MS);
	cr_assert_eq(send_until_blocked(&tx, now), CHANNEL_WINDOW, "up to the whole window");

	/* The oldest in flight is lost: the ack says everything after it arrived. */
	struct proto_ack ack = {.cumulative = rte_cpu_to_be_64(tx.base)};
	for (unsigned int w = 0; w < PROTO_SACK_WORDS; w++)
		ack.sack[w] = rte_cpu_to_be_64(w == 0 ? ~1ull : ~0ull);
	now += 100 * MS;
	channel_on_ack(&tx, &ack, now);
	cr_assert_eq(tx.stats.fast_retransmitted, 1);
	cr_assert_eq(tx.stats.window_cuts, 1);
	cr_assert_eq(tx.cwnd, CHANNEL_WINDOW / 2);
	/* The same loss seen again in the same flight cuts nothing more. */
	channel_on_ack(&tx, &ack, now += 100 * MS);
	cr_assert_eq(tx.stats.window_cuts, 1);
	/* Losses flight after flight stop at the floor. */
	for (unsigned int i = 0; i < 10; i++) {
		ack_all_below(&tx, tx.next_seq, now += MS);
		send_until_blocked(&tx, now);
		struct proto_ack lossy = {.cumulative = rte_cpu_to_be_64(tx.base)};
		lossy.sack[0] = rte_cpu_to_be_64(1ull << 2);
		/* Reported a round trip later, as a gap must be before it is resent. */
		channel_on_ack(&tx, &lossy, now += 2 * tx.srtt_ns + MS);
	}
	cr_assert_geq(tx.cwnd, CHANNEL_MIN_CWND);
	cr_assert_lt(tx.cwnd, CHANNEL_MIN_CWND + 4, "window %.1f after ten losses", tx.cwnd);
	channel_fini(&tx);
}

Test(channel, the_congestion_window_opens_on_acks_and_halves_on_a_loss)
{
	congestion_window_case(0);
}

Test(channel, a_pacer_keeps_the_congestion_window_and_the_timeout)
{
	congestion_window_case(100000000000ull);
}
