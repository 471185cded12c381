/* Unit tests of link emulation: loss, duplication and reordering rates, delay and rate spacing,
 * and the same decisions for the same seed. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include <rte_eal.h>
#include <rte_mbuf.h>

#include "dataplane/impair.h"

#define MS 1000000ull

static struct rte_mempool *pool;
static struct impair impair;

static void setup(void)
{
	char *argv[] = {"test_impair", "--no-huge", "--no-shconf",    "-m",
	                "128",         "--no-pci",  "--no-telemetry", "--log-level=*:error"};
	cr_assert_geq(rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])), argv), 0);
	pool = rte_pktmbuf_pool_create("impair_test", 16383, 0, 0, 2048 + 128, SOCKET_ID_ANY);
	cr_assert_not_null(pool);
}

TestSuite(impair, .init = setup);

/* Sends n 100-byte frames marked with their number through the link at now; returns how many
 * came out at once and stores their marks in out. */
static uint16_t send(uint16_t first, uint16_t n, uint64_t now, uint16_t *out)
{
	struct rte_mbuf *pkts[32], *ready[64];
	for (uint16_t i = 0; i < n; i++) {
		pkts[i] = rte_pktmbuf_alloc(pool);
		uint16_t *mark = (uint16_t *)rte_pktmbuf_append(pkts[i], 100);
		*mark = (uint16_t)(first + i);
	}
	uint16_t nb = impair_admit(&impair, pkts, n, now, ready);
	for (uint16_t i = 0; i < nb; i++) {
		if (out != NULL)
			out[i] = *rte_pktmbuf_mtod(ready[i], uint16_t *);
		rte_pktmbuf_free(ready[i]);
	}
	return nb;
}

static uint16_t release(uint64_t now, uint16_t *out)
{
	struct rte_mbuf *due[64];
	uint16_t nb = impair_release(&impair, now, due, 64);
	for (uint16_t i = 0; i < nb; i++) {
		if (out != NULL)
			out[i] = *rte_pktmbuf_mtod(due[i], uint16_t *);
		rte_pktmbuf_free(due[i]);
	}
	return nb;
}

Test(impair, loss_rate_is_close_to_the_setting_and_the_same_for_a_seed)
{
	struct impair_config c = {.loss_ppm = 100000, .seed = 7}; /* 10% */
	unsigned int passed[2] = {0, 0};

	for (int run = 0; run < 2; run++) {
		impair_init(&impair, &c);
		for (int i = 0; i < 320; i++)
			passed[run] += send(0, 32, 0, NULL);
		cr_assert_eq(impair.stats.lost + passed[run], 320 * 32u);
	}
	cr_assert_eq(passed[0], passed[1], "same seed, same losses");
	cr_assert(impair.stats.lost > 850 && impair.stats.lost < 1200, "lost %lu of 10240",
	          (unsigned long)impair.stats.lost);
	c.seed = 8;
	impair_init(&impair, &c);
	unsigned int other = 0;
	for (int i = 0; i < 320; i++)
		other += send(0, 32, 0, NULL);
	cr_assert_neq(other, passed[0], "another seed, other losses");
	cr_assert_eq(rte_mempool_in_use_count(pool), 0u);
}

Test(impair, delay_holds_frames_until_their_time_in_order)
{
	struct impair_config c = {.delay_ns = 10 * MS, .seed = 1};
	uint16_t out[64];

	impair_init(&impair, &c);
	cr_assert_eq(send(0, 8, 0, NULL), 0);
	cr_assert_eq(release(10 * MS - 1, NULL), 0);
	cr_assert_eq(release(10 * MS, out), 8);
	for (uint16_t i = 0; i < 8; i++)
		cr_assert_eq(out[i], i);
	cr_assert_eq(rte_mempool_in_use_count(pool), 0u);
}

Test(impair, rate_spaces_frames_by_their_size)
{
	/* 100-byte frames at 8 Mbit/s: one every 100 us. */
	struct impair_config c = {.rate_bps = 8000000, .seed = 1};

	impair_init(&impair, &c);
	send(0, 10, 0, NULL);
	cr_assert_eq(release(100000 - 1, NULL), 0);
	cr_assert_eq(release(100000, NULL), 1);
	cr_assert_eq(release(550000, NULL), 4);
	cr_assert_eq(release(1000000, NULL), 5);
	cr_assert_eq(rte_mempool_in_use_count(pool), 0u);
}

Test(impair, duplicates_and_reorders_at_their_rates)
{
	struct impair_config c = {
	        .delay_ns = 1 * MS, .dup_ppm = 50000, .reorder_ppm = 50000, .seed = 3};
	uint16_t out[64];
	unsigned int early = 0, late = 0;

	impair_init(&impair, &c);
	for (int i = 0; i < 100; i++) {
		early += send((uint16_t)(i * 32), 32, (uint64_t)i * 10 * MS, NULL);
		late += release((uint64_t)i * 10 * MS + 1 * MS, out);
	}
	cr_assert_eq(early + late, 3200 + impair.stats.duplicated);
	cr_assert_eq(early, impair.stats.reordered, "reordered frames skip the delay");
	cr_assert(impair.stats.duplicated > 100 && impair.stats.duplicated < 230, "%lu",
	          (unsigned long)impair.stats.duplicated);
	cr_assert(impair.stats.reordered > 100 && impair.stats.reordered < 240, "%lu",
	          (unsigned long)impair.stats.reordered);
	cr_assert_eq(rte_mempool_in_use_count(pool), 0u);
}

Test(impair, a_full_queue_drops_and_counts_and_flush_frees)
{
	struct impair_config c = {.delay_ns = 1000 * MS, .seed = 1};

	impair_init(&impair, &c);
	for (int i = 0; i < IMPAIR_QUEUE_MAX / 32 + 2; i++)
		send(0, 32, 0, NULL);
	cr_assert_eq(impair.count, IMPAIR_QUEUE_MAX);
	cr_assert_eq(impair.stats.overflow, 64);
	impair_flush(&impair);
	cr_assert_eq(rte_mempool_in_use_count(pool), 0u);
}
