/* Link emulation on a port's transmit side, as netem does it (the kernel here has no netem):
 * rate, delay with jitter, loss, duplication and reordering, deterministic for a seed. */
#include "impair.h"

#include <stdio.h>
#include <string.h>

#include <rte_common.h>
#include <rte_mbuf.h>

#define NS_PER_SECOND 1000000000ull

/* xorshift64*: fast, and the same sequence for the same seed on every run. */
static uint64_t next_random(struct impair *impair)
{
	uint64_t x = impair->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	impair->rng = x;
	return x * 2685821657736338717ull;
}

static bool chance(struct impair *impair, uint32_t ppm)
{
	return ppm != 0 && next_random(impair) % 1000000 < ppm;
}

void impair_init(struct impair *impair, const struct impair_config *config)
{
	memset(impair, 0, sizeof(*impair));
	impair->config = *config;
	impair->rng = config->seed != 0 ? config->seed : 1;
}

bool impair_config_is_null(const struct impair_config *c)
{
	return c->rate_bps == 0 && c->delay_ns == 0 && c->jitter_ns == 0 && c->loss_ppm == 0 &&
	       c->dup_ppm == 0 && c->reorder_ppm == 0;
}

/* When a frame may leave: after its delay, after the frame before it, and spaced by the rate. */
static uint64_t release_time(struct impair *impair, const struct rte_mbuf *m, uint64_t now_ns)
{
	const struct impair_config *c = &impair->config;
	uint64_t delay = c->delay_ns;

	if (c->jitter_ns != 0) {
		uint64_t span = 2 * c->jitter_ns + 1;
		int64_t offset = (int64_t)(next_random(impair) % span) - (int64_t)c->jitter_ns;
		delay = (int64_t)delay + offset > 0 ? (uint64_t)((int64_t)delay + offset) : 0;
	}
	uint64_t at = RTE_MAX(now_ns + delay, impair->last_release_ns);
	if (c->rate_bps != 0)
		at += (uint64_t)rte_pktmbuf_pkt_len(m) * 8 * NS_PER_SECOND / c->rate_bps;
	impair->last_release_ns = at;
	return at;
}

static bool enqueue(struct impair *impair, struct rte_mbuf *m, uint64_t release_ns)
{
	if (impair->count == IMPAIR_QUEUE_MAX) {
		impair->stats.overflow++;
		rte_pktmbuf_free(m);
		return false;
	}
	uint32_t tail = (impair->head + impair->count) % IMPAIR_QUEUE_MAX;
	impair->queue[tail] = (struct impair_slot){.m = m, .release_ns = release_ns};
	impair->count++;
	impair->stats.delayed++;
	return true;
}

uint16_t impair_admit(struct impair *impair, struct rte_mbuf **pkts, uint16_t n, uint64_t now_ns,
                      struct rte_mbuf **ready)
{
	const struct impair_config *c = &impair->config;
	uint16_t nb_ready = 0;

	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		if (chance(impair, c->loss_ppm)) {
			impair->stats.lost++;
			rte_pktmbuf_free(m);
			continue;
		}
		unsigned int copies = 1;
		if (chance(impair, c->dup_ppm)) {
			/* The copy shares the buffer: both leave, one after the other. */
			rte_pktmbuf_refcnt_update(m, 1);
			impair->stats.duplicated++;
			copies = 2;
		}
		for (unsigned int k = 0; k < copies; k++) {
			if (chance(impair, c->reorder_ppm)) {
				impair->stats.reordered++;
				ready[nb_ready++] = m;
				continue;
			}
			uint64_t at = release_time(impair, m, now_ns);
			if (at <= now_ns && impair->count == 0)
				ready[nb_ready++] = m;
			else
				enqueue(impair, m, at);
		}
	}
	return nb_ready;
}

uint16_t impair_release(struct impair *impair, uint64_t now_ns, struct rte_mbuf **out, uint16_t max)
{
	uint16_t n = 0;

	while (n < max && impair->count > 0 && impair->queue[impair->head].release_ns <= now_ns) {
		out[n++] = impair->queue[impair->head].m;
		impair->head = (impair->head + 1) % IMPAIR_QUEUE_MAX;
		impair->count--;
	}
	return n;
}

void impair_flush(struct impair *impair)
{
	while (impair->count > 0) {
		rte_pktmbuf_free(impair->queue[impair->head].m);
		impair->head = (impair->head + 1) % IMPAIR_QUEUE_MAX;
		impair->count--;
	}
}

void impair_describe(const struct impair_config *c, char *buf, unsigned int size)
{
	int len = 0;

	buf[0] = '\0';
	if (impair_config_is_null(c)) {
		snprintf(buf, size, "-");
		return;
	}
#define APPEND(...)                                                                                \
	do {                                                                                       \
		if (len >= 0 && (unsigned int)len < size)                                          \
			len += snprintf(buf + len, size - (unsigned int)len, __VA_ARGS__);         \
	} while (0)
	if (c->rate_bps != 0)
		APPEND("rate %.3gMbit ", (double)c->rate_bps / 1e6);
	if (c->delay_ns != 0 || c->jitter_ns != 0)
		APPEND("delay %.3gms ", (double)c->delay_ns / 1e6);
	if (c->jitter_ns != 0)
		APPEND("jitter %.3gms ", (double)c->jitter_ns / 1e6);
	if (c->loss_ppm != 0)
		APPEND("loss %.4g%% ", (double)c->loss_ppm / 1e4);
	if (c->dup_ppm != 0)
		APPEND("dup %.4g%% ", (double)c->dup_ppm / 1e4);
	if (c->reorder_ppm != 0)
		APPEND("reorder %.4g%% ", (double)c->reorder_ppm / 1e4);
	APPEND("seed %llu", (unsigned long long)c->seed);
#undef APPEND
}
