/* Unit tests of the MAC table on a driven clock: learning, moves, statics, aging, fair
 * eviction, flushes, resizing. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <rte_eal.h>

#include "vswitch/fdb.h"

#define SECOND 1000000000ull

static void eal_up(void)
{
	static char *argv[] = {"test_fdb", "--no-huge", "--no-shconf",    "-m",
	                       "512",      "--no-pci",  "--no-telemetry", "--log-level=*:error"};
	/* Criterion runs each test in its own process: EAL comes up once per test. */
	cr_assert_geq(rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])), argv), 0);
}

static struct rte_ether_addr mac(uint32_t n)
{
	struct rte_ether_addr m = {{0x02, 0x00, (uint8_t)(n >> 24), (uint8_t)(n >> 16),
	                            (uint8_t)(n >> 8), (uint8_t)n}};
	return m;
}

TestSuite(fdb, .init = eal_up);

Test(fdb, learns_refreshes_and_moves)
{
	struct fdb fdb;
	struct rte_ether_addr a = mac(1);

	cr_assert_eq(fdb_init(&fdb, "t1", 16, 300), 0);
	cr_assert_eq(fdb_learn(&fdb, 10, &a, 1, 0), FDB_LEARN_NEW);
	cr_assert_eq(fdb_lookup(&fdb, 10, &a), 1);
	cr_assert_eq(fdb_lookup(&fdb, 11, &a), FDB_PORT_NONE, "keyed by VLAN too");
	cr_assert_eq(fdb_learn(&fdb, 10, &a, 1, SECOND), FDB_LEARN_REFRESHED);
	cr_assert_eq(fdb_learn(&fdb, 10, &a, 2, 2 * SECOND), FDB_LEARN_MOVED);
	cr_assert_eq(fdb_lookup(&fdb, 10, &a), 2);
	cr_assert_eq(fdb.stats.learned, 1);
	cr_assert_eq(fdb.stats.moved, 1);
	cr_assert_eq(fdb.count, 1);
	cr_assert_eq(fdb.port_count[1], 0);
	cr_assert_eq(fdb.port_count[2], 1);
	fdb_fini(&fdb);
}

Test(fdb, static_entries_never_move_age_or_get_evicted)
{
	struct fdb fdb;
	struct rte_ether_addr s = mac(100);

	cr_assert_eq(fdb_init(&fdb, "t2", 4, 10), 0);
	cr_assert_eq(fdb_add_static(&fdb, 0, &s, 3), 0);
	cr_assert_eq(fdb_learn(&fdb, 0, &s, 5, SECOND), FDB_LEARN_STATIC);
	cr_assert_eq(fdb_lookup(&fdb, 0, &s), 3);
	cr_assert_eq(fdb.stats.static_refused, 1);
	/* Fill the table well past its size from one port. */
	for (uint32_t i = 0; i < 20; i++) {
		struct rte_ether_addr m = mac(i);
		fdb_learn(&fdb, 0, &m, 1, SECOND);
	}
	cr_assert_eq(fdb.count, 4);
	cr_assert_eq(fdb_lookup(&fdb, 0, &s), 3, "the static entry survived eviction");
	cr_assert_eq(fdb_age(&fdb, 1000 * SECOND), 3);
	cr_assert_eq(fdb_lookup(&fdb, 0, &s), 3, "and aging");
	cr_assert_eq(fdb_flush(&fdb, false), 0);
	cr_assert_eq(fdb_lookup(&fdb, 0, &s), 3, "and a flush of learned entries");
	cr_assert_eq(fdb_del(&fdb, 0, &s), 0);
	cr_assert_eq(fdb_del(&fdb, 0, &s), -ENOENT);
	fdb_fini(&fdb);
}

Test(fdb, ages_exactly_at_the_aging_time_on_the_driven_clock)
{
	struct fdb fdb;
	struct rte_ether_addr a = mac(1), b = mac(2);

	cr_assert_eq(fdb_init(&fdb, "t3", 16, 300), 0);
	fdb_learn(&fdb, 0, &a, 1, 0);
	fdb_learn(&fdb, 0, &b, 1, 100 * SECOND);
	cr_assert_eq(fdb_age(&fdb, 300 * SECOND - 1), 0);
	cr_assert_eq(fdb_age(&fdb, 300 * SECOND), 1);
	cr_assert_eq(fdb_lookup(&fdb, 0, &a), FDB_PORT_NONE);
	cr_assert_eq(fdb_lookup(&fdb, 0, &b), 1);
	/* Seen again: its age starts over. */
	fdb_learn(&fdb, 0, &b, 1, 350 * SECOND);
	cr_assert_eq(fdb_age(&fdb, 649 * SECOND), 0);
	cr_assert_eq(fdb_age(&fdb, 650 * SECOND), 1);
	cr_assert_eq(fdb.stats.expired, 2);
	fdb_set_aging(&fdb, 0);
	fdb_learn(&fdb, 0, &a, 1, 0);
	cr_assert_eq(fdb_age(&fdb, 1000000 * SECOND), 0, "aging off");
	fdb_fini(&fdb);
}

Test(fdb, a_full_table_evicts_the_oldest_entry_of_the_busiest_port)
{
	struct fdb fdb;

	cr_assert_eq(fdb_init(&fdb, "t4", 10, 300), 0);
	/* Two quiet ports with two MACs each, learned first (oldest). */
	for (uint32_t i = 0; i < 4; i++) {
		struct rte_ether_addr m = mac(1000 + i);
		fdb_learn(&fdb, 0, &m, (uint16_t)(2 + i / 2), i * SECOND);
	}
	/* Port 1 floods 100 new MACs. */
	for (uint32_t i = 0; i < 100; i++) {
		struct rte_ether_addr m = mac(i);
		cr_assert_eq(fdb_learn(&fdb, 0, &m, 1, (10 + i) * SECOND), FDB_LEARN_NEW);
	}
	cr_assert_eq(fdb.count, 10);
	cr_assert_eq(fdb.port_count[2], 2, "quiet ports keep their entries");
	cr_assert_eq(fdb.port_count[3], 2);
	cr_assert_eq(fdb.port_count[1], 6);
	for (uint32_t i = 94; i < 100; i++) {
		struct rte_ether_addr m = mac(i);
		cr_assert_eq(fdb_lookup(&fdb, 0, &m), 1, "the newest of the flood remain");
	}
	cr_assert_eq(fdb.stats.evicted, 94);
	fdb_fini(&fdb);
}

Test(fdb, eviction_follows_use_not_insertion)
{
	struct fdb fdb;
	struct rte_ether_addr a = mac(1), b = mac(2), c = mac(3);

	cr_assert_eq(fdb_init(&fdb, "t5", 2, 300), 0);
	fdb_learn(&fdb, 0, &a, 1, 1 * SECOND);
	fdb_learn(&fdb, 0, &b, 1, 2 * SECOND);
	fdb_learn(&fdb, 0, &a, 1, 3 * SECOND); /* a is used again: b is now the least recent */
	fdb_learn(&fdb, 0, &c, 1, 4 * SECOND);
	cr_assert_eq(fdb_lookup(&fdb, 0, &a), 1);
	cr_assert_eq(fdb_lookup(&fdb, 0, &b), FDB_PORT_NONE);
	cr_assert_eq(fdb_lookup(&fdb, 0, &c), 1);
	fdb_fini(&fdb);
}

Test(fdb, flush_by_port_and_by_vlan)
{
	struct fdb fdb;

	cr_assert_eq(fdb_init(&fdb, "t6", 64, 300), 0);
	for (uint32_t i = 0; i < 30; i++) {
		struct rte_ether_addr m = mac(i);
		fdb_learn(&fdb, (uint16_t)(i % 3), &m, (uint16_t)(i % 2), 0);
	}
	struct rte_ether_addr s = mac(500);
	fdb_add_static(&fdb, 1, &s, 1);
	cr_assert_eq(fdb_flush_vlan(&fdb, 1), 10, "dynamic entries of VLAN 1 only");
	cr_assert_eq(fdb_lookup(&fdb, 1, &s), 1);
	cr_assert_eq(fdb_flush_port(&fdb, 0), 10, "port 0's remaining entries");
	cr_assert_eq(fdb_flush_port(&fdb, 1), 11, "port 1's, its static one too");
	cr_assert_eq(fdb.count, 0);
	cr_assert_eq(fdb.port_count[0] + fdb.port_count[1], 0);
	fdb_fini(&fdb);
}

Test(fdb, hashed_finds_match_single_lookups_and_carry_the_refresh_stamp)
{
	struct fdb fdb;
	uint64_t keys[64];
	uint32_t homes[64];

	cr_assert_eq(fdb_init(&fdb, "t7", 256, 300), 0);
	for (uint32_t i = 0; i < 64; i += 2) {
		struct rte_ether_addr m = mac(i);
		fdb_learn(&fdb, 7, &m, (uint16_t)(i % 5), 3 * SECOND);
	}
	/* Hash all, then find all: the switch's order. */
	for (uint32_t i = 0; i < 64; i++) {
		struct fdb_key key = {.vlan = 7, .mac = mac(i)};
		keys[i] = fdb_key_pack(&key);
		homes[i] = fdb_home(&fdb, keys[i]);
	}
	for (uint32_t i = 0; i < 64; i++) {
		struct rte_ether_addr m = mac(i);
		uint16_t port = FDB_PORT_NONE, stamp = 0;
		bool found = fdb_find(&fdb, keys[i], homes[i], &port, &stamp);
		cr_assert_eq(found, i % 2 == 0, "key %u", i);
		cr_assert_eq(found ? port : FDB_PORT_NONE, fdb_lookup(&fdb, 7, &m), "key %u", i);
		if (found)
			cr_assert_eq(stamp, fdb_stamp(3 * SECOND), "key %u", i);
	}
	cr_assert_not(fdb_find(&fdb, 0, fdb_home(&fdb, 0), &(uint16_t){0}, &(uint16_t){0}),
	              "the empty key is never found");
	fdb_fini(&fdb);
}

Test(fdb, resizing_keeps_entries_and_shrinks_fairly)
{
	struct fdb fdb;

	cr_assert_eq(fdb_init(&fdb, "t8", 100, 300), 0);
	for (uint32_t i = 0; i < 60; i++) {
		struct rte_ether_addr m = mac(i);
		fdb_learn(&fdb, 0, &m, i < 50 ? 1 : 2, i * SECOND);
	}
	struct rte_ether_addr s = mac(900);
	fdb_add_static(&fdb, 0, &s, 4);
	cr_assert_eq(fdb_set_limit(&fdb, 1000000), 0, "a million entries");
	cr_assert_eq(fdb.count, 61);
	cr_assert_eq(fdb_set_limit(&fdb, 21), 0);
	cr_assert_eq(fdb.count, 21);
	cr_assert_eq(fdb_lookup(&fdb, 0, &s), 4);
	cr_assert_eq(fdb.port_count[2], 10, "the small port keeps all it had");
	cr_assert_eq(fdb.port_count[1], 10);
	for (uint32_t i = 40; i < 50; i++) {
		struct rte_ether_addr m = mac(i);
		cr_assert_eq(fdb_lookup(&fdb, 0, &m), 1, "the busy port keeps its newest");
	}
	cr_assert_eq(fdb_set_limit(&fdb, 0), -EINVAL);
	fdb_fini(&fdb);
}

Test(fdb, recency_has_a_grain_of_about_a_second)
{
	struct fdb fdb;
	struct rte_ether_addr a = mac(1), b = mac(2), c = mac(3);

	/* Within the grain a refresh does not reorder (it would cost two cache lines per
	 * frame); past it, it does. */
	cr_assert_eq(fdb_init(&fdb, "t9", 2, 300), 0);
	fdb_learn(&fdb, 0, &a, 1, SECOND);
	fdb_learn(&fdb, 0, &b, 1, SECOND + 1000);
	fdb_learn(&fdb, 0, &a, 1, SECOND + 2000);
	fdb_learn(&fdb, 0, &c, 1, SECOND + 3000);
	cr_assert_eq(fdb_lookup(&fdb, 0, &a), FDB_PORT_NONE,
	             "a was not reordered within the grain");
	cr_assert_eq(fdb_lookup(&fdb, 0, &b), 1);
	fdb_learn(&fdb, 0, &b, 1, 2 * SECOND);
	fdb_learn(&fdb, 0, &a, 1, 2 * SECOND + 1000);
	cr_assert_eq(fdb_lookup(&fdb, 0, &c), FDB_PORT_NONE, "b moved ahead of c past the grain");
	cr_assert_eq(fdb_lookup(&fdb, 0, &b), 1);
	fdb_fini(&fdb);
}

/* The hash deletes by shifting probe runs back: check it against a plain array through many
 * random adds and deletes on a crowded table. */
Test(fdb, random_adds_and_deletes_match_a_reference)
{
	enum { KEYS = 3000 };
	static uint16_t reference[KEYS]; /* port + 1, or 0 when absent */
	struct fdb fdb;
	uint64_t seed = 42;

	cr_assert_eq(fdb_init(&fdb, "t10", 2048, 0), 0);
	for (int step = 0; step < 200000; step++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t k = (uint32_t)(seed >> 33) % KEYS;
		struct rte_ether_addr m = mac(k * 7919);
		if ((seed >> 20) % 3 == 0) {
			int ret = fdb_del(&fdb, (uint16_t)(k % 5), &m);
			cr_assert_eq(ret, reference[k] ? 0 : -ENOENT, "step %d del %u", step, k);
			reference[k] = 0;
		} else if (fdb.count < fdb.limit || reference[k]) {
			uint16_t port = (uint16_t)((seed >> 40) % 8);
			fdb_learn(&fdb, (uint16_t)(k % 5), &m, port, (uint64_t)step);
			reference[k] = (uint16_t)(port + 1);
		}
		if (step % 10000 == 0 || step == 199999) {
			uint32_t present = 0;
			for (uint32_t i = 0; i < KEYS; i++) {
				struct rte_ether_addr x = mac(i * 7919);
				uint16_t want =
				        reference[i] ? (uint16_t)(reference[i] - 1) : FDB_PORT_NONE;
				cr_assert_eq(fdb_lookup(&fdb, (uint16_t)(i % 5), &x), want,
				             "step %d key %u", step, i);
				present += reference[i] != 0;
			}
			cr_assert_eq(fdb.count, present);
		}
	}
	fdb_fini(&fdb);
}

Test(fdb, two_tables_in_one_process)
{
	struct fdb x, y;
	struct rte_ether_addr a = mac(1);

	cr_assert_eq(fdb_init(&x, "tx", 16, 300), 0);
	cr_assert_eq(fdb_init(&y, "ty", 16, 300), 0);
	fdb_learn(&x, 0, &a, 1, 0);
	cr_assert_eq(fdb_lookup(&y, 0, &a), FDB_PORT_NONE);
	fdb_fini(&x);
	fdb_fini(&y);
}

/* The forwarding workers look up while worker 0 writes. A reader thread finds keys without locks
 * while the writer learns, moves, ages, deletes and evicts them: it must never see a port that
 * key was never given. Key i only ever lives on port i % 8 or i % 8 + 8 (moves alternate), so a
 * port read against the wrong key shows as the wrong residue. */
/* A small, crowded table: the reader keeps meeting the slots the writer rewrites. */
enum { RACE_KEYS = 96, RACE_LIMIT = 64, RACE_ROUNDS = 1000000, RACE_LOOKUPS = 20000000 };

struct race_reader {
	struct fdb *fdb;
	bool stop;
	uint64_t lookups, found, wrong;
};

static void *race_read(void *arg)
{
	struct race_reader *r = arg;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		for (uint32_t i = 0; i < RACE_KEYS; i++) {
			struct fdb_key key = {.vlan = 1, .mac = mac(i)};
			uint64_t packed = fdb_key_pack(&key);
			uint16_t port, stamp;
			if (fdb_find(r->fdb, packed, fdb_home(r->fdb, packed), &port, &stamp)) {
				r->found++;
				r->wrong += port % 8 != i % 8;
			}
			__atomic_store_n(&r->lookups, r->lookups + 1, __ATOMIC_RELAXED);
		}
	}
	return NULL;
}

Test(fdb, lookups_without_locks_stay_right_while_one_writer_changes_the_table, .timeout = 60)
{
	static struct fdb fdb;
	struct race_reader reader = {.fdb = &fdb};
	pthread_t thread;
	uint64_t now = SECOND;

	/* Fewer entries than keys: learning evicts as it goes. */
	cr_assert_eq(fdb_init(&fdb, "race", RACE_LIMIT, 10), 0);
	cr_assert_eq(pthread_create(&thread, NULL, race_read, &reader), 0);
	/* Until the reader has looked up enough, however the two threads are scheduled. */
	for (uint32_t round = 0; round < RACE_ROUNDS &&
	                         __atomic_load_n(&reader.lookups, __ATOMIC_RELAXED) < RACE_LOOKUPS;
	     round++) {
		for (uint32_t i = 0; i < RACE_KEYS; i++) {
			struct rte_ether_addr m = mac(i);
			fdb_learn(&fdb, 1, &m, (uint16_t)(i % 8 + 8 * ((i + round) % 2)), now);
			if (i % 13 == round % 13)
				fdb_del(&fdb, 1, &m);
			now += 100;
		}
		/* Every few rounds a long pause: half the table ages out at once. */
		if (round % 101 == 100) {
			now += 11 * SECOND;
			cr_assert_gt(fdb_age(&fdb, now), 0);
		}
	}
	__atomic_store_n(&reader.stop, true, __ATOMIC_RELEASE);
	pthread_join(thread, NULL);

	cr_assert_gt(reader.found, 0, "the reader found keys (%lu lookups)",
	             (unsigned long)reader.lookups);
	cr_assert_eq(reader.wrong, 0, "%lu of %lu finds read another key's port",
	             (unsigned long)reader.wrong, (unsigned long)reader.found);
	cr_assert_gt(fdb.stats.evicted, 0);
	cr_assert_gt(fdb.stats.moved, 0);
	/* And the table is whole: every entry is found, on its own port. */
	uint32_t valid = 0;
	for (uint32_t pos = 0; pos < fdb.limit; pos++) {
		const struct fdb_entry *e = &fdb.entries[pos];
		if (!e->valid)
			continue;
		valid++;
		cr_assert_eq(fdb_lookup(&fdb, e->key.vlan, &e->key.mac), e->port);
	}
	cr_assert_eq(valid, fdb.count);
	fdb_fini(&fdb);
}

static void count_resize(void *ctx)
{
	(*(unsigned int *)ctx)++;
}

/* The slot array starts small and doubles as entries come (a table sized for many MACs that
 * holds few stays in cache), calling the hook before each swap; every key is still found after
 * each growth, and the array never passes twice the limit. */
Test(fdb, the_slot_array_grows_with_the_entries)
{
	struct fdb fdb;
	unsigned int resizes = 0;

	cr_assert_eq(fdb_init(&fdb, "grow", 100000, 300), 0);
	fdb_set_resize_hook(&fdb, count_resize, &resizes);
	uint32_t first = fdb.slot_mask + 1;
	cr_assert_leq(first, 64, "a big limit starts with a small array (%u slots)", first);
	for (uint32_t i = 0; i < 5000; i++) {
		struct rte_ether_addr m = mac(i);
		cr_assert_eq(fdb_learn(&fdb, 3, &m, (uint16_t)(i % 7), SECOND), FDB_LEARN_NEW);
		cr_assert_leq(4 * fdb.count, fdb.slot_mask + 1,
		              "at most a quarter full while growing");
	}
	cr_assert_eq(fdb.slot_mask + 1, 32768, "5,000 entries take 32,768 slots");
	cr_assert_eq(resizes, 9, "64 to 32,768 slots is nine doublings, each announced");
	for (uint32_t i = 0; i < 5000; i++) {
		struct rte_ether_addr m = mac(i);
		cr_assert_eq(fdb_lookup(&fdb, 3, &m), i % 7, "key %u after growing", i);
	}
	fdb_fini(&fdb);

	cr_assert_eq(fdb_init(&fdb, "small", 20, 300), 0);
	for (uint32_t i = 0; i < 100; i++) {
		struct rte_ether_addr m = mac(i);
		fdb_learn(&fdb, 0, &m, 1, SECOND);
	}
	cr_assert_eq(fdb.count, 20);
	cr_assert_eq(fdb.slot_mask + 1, 64, "never more than twice the limit (rounded up)");
	fdb_fini(&fdb);
}
