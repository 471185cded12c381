/* Link emulation on a port's transmit side, as netem does it (the kernel here has no netem):
 * rate, delay with jitter, loss, duplication and reordering, deterministic for a seed. */
#ifndef FERRY_DATAPLANE_IMPAIR_H
#define FERRY_DATAPLANE_IMPAIR_H

#include <stdbool.h>
#include <stdint.h>

struct rte_mbuf;

#define IMPAIR_QUEUE_MAX 8192 /* frames held at once; more are dropped and counted */

struct impair_config {
	uint64_t rate_bps; /* 0 = unlimited */
	uint64_t delay_ns;
	uint64_t jitter_ns; /* delay varies uniformly in [delay - jitter, delay + jitter] */
	uint32_t loss_ppm;  /* parts per million */
	uint32_t dup_ppm;
	uint32_t reorder_ppm; /* this share skips the delay and overtakes what waits */
	uint64_t seed;
};

struct impair_stats {
	uint64_t lost, duplicated, reordered, delayed, overflow;
};

struct impair_slot {
	struct rte_mbuf *m;
	uint64_t release_ns;
};

struct impair {
	struct impair_config config;
	uint64_t rng;
	uint64_t last_release_ns; /* departures stay in order, and rate spaces them */
	struct impair_slot queue[IMPAIR_QUEUE_MAX]; /* FIFO ring, in release order */
	uint32_t head, count;
	struct impair_stats stats;
};

/* Starts emulating with a configuration (the queue is empty). */
void impair_init(struct impair *impair, const struct impair_config *config);

/* True if the configuration changes nothing (the port then skips emulation entirely). */
bool impair_config_is_null(const struct impair_config *config);

/* Takes frames about to leave: lost ones are freed, the others (and duplicates) wait in the
 * queue or, if due now, go into ready (room for 2 * n). Returns how many are ready. */
uint16_t impair_admit(struct impair *impair, struct rte_mbuf **pkts, uint16_t n, uint64_t now_ns,
                      struct rte_mbuf **ready);

/* Takes up to max frames whose time has come. */
uint16_t impair_release(struct impair *impair, uint64_t now_ns, struct rte_mbuf **out,
                        uint16_t max);

/* Frees every frame still held. */
void impair_flush(struct impair *impair);

/* Describes the configuration ("rate 1Gbit delay 10ms loss 1% ..."); "-" when null. */
void impair_describe(const struct impair_config *config, char *buf, unsigned int size);

#endif
