/* Unit tests of the worker loop: idle back-off, timers on a driven clock, pollers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "dataplane/loop.h"

static uint64_t fake_now;

static uint64_t fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

static const struct loop_backoff_config small_config = {
        .spin_iterations = 3,
        .pause_iterations = 2,
        .min_sleep_ns = 10000,
        .max_sleep_ns = 80000,
};

Test(backoff, spins_then_pauses_then_sleeps_growing_to_the_cap)
{
	struct loop_backoff b;

	loop_backoff_init(&b, &small_config);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(loop_backoff_step(&b, false), LOOP_IDLE_SPIN);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(loop_backoff_step(&b, false), LOOP_IDLE_PAUSE);
	const uint64_t expected[] = {10000, 20000, 40000, 80000, 80000, 80000};
	for (unsigned int i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
		cr_assert_eq(loop_backoff_step(&b, false), LOOP_IDLE_SLEEP);
		cr_assert_eq(b.sleep_ns, expected[i], "sleep %u: %lu", i,
		             (unsigned long)b.sleep_ns);
	}
}

Test(backoff, work_resets_to_spinning_at_once)
{
	struct loop_backoff b;

	loop_backoff_init(&b, &small_config);
	for (int i = 0; i < 100; i++)
		loop_backoff_step(&b, false);
	cr_assert_eq(b.sleep_ns, small_config.max_sleep_ns);
	cr_assert_eq(loop_backoff_step(&b, true), LOOP_IDLE_SPIN);
	cr_assert_eq(b.sleep_ns, small_config.min_sleep_ns);
	cr_assert_eq(loop_backoff_step(&b, false), LOOP_IDLE_SPIN);
}

Test(backoff, never_sleeps_longer_than_the_maximum_after_a_long_idle)
{
	struct loop_backoff b;
	struct loop_backoff_config config;

	loop_backoff_config_default(&config);
	cr_assert_eq(config.max_sleep_ns, 1000000, "default maximum sleep is 1 ms");
	loop_backoff_init(&b, &config);
	/* An idle minute is about 60,000 iterations of 1 ms; run far more. */
	for (int i = 0; i < 1000000; i++) {
		if (loop_backoff_step(&b, false) == LOOP_IDLE_SLEEP)
			cr_assert_leq(b.sleep_ns, config.max_sleep_ns);
	}
	cr_assert_eq(b.sleep_ns, config.max_sleep_ns);
}

Test(backoff, a_maximum_below_the_minimum_is_raised)
{
	struct loop_backoff b;
	struct loop_backoff_config config = small_config;

	config.max_sleep_ns = 1;
	loop_backoff_init(&b, &config);
	cr_assert_eq(b.config.max_sleep_ns, b.config.min_sleep_ns);
}

struct fire_log {
	int count;
	uint64_t at[16];
};

static void record_fire(void *arg)
{
	struct fire_log *log = arg;
	if (log->count < 16)
		log->at[log->count] = fake_now;
	log->count++;
}

Test(timers, one_shot_fires_once_when_due)
{
	struct loop loop;
	struct loop_timer t;
	struct fire_log log = {0};

	fake_now = 1000;
	cr_assert_eq(loop_init(&loop, NULL, fake_clock, NULL), 0);
	loop_timer_init(&t, record_fire, &log);
	cr_assert_eq(loop_timer_arm(&loop, &t, 500, 0), 0);
	cr_assert(loop_timer_armed(&t));
	cr_assert_eq(loop_timers_next_ns(&loop, 1000), 500);
	cr_assert_eq(loop_timers_run(&loop, 1499), 0);
	cr_assert_eq(log.count, 0);
	cr_assert_eq(loop_timers_run(&loop, 1500), 1);
	cr_assert_eq(log.count, 1);
	cr_assert_not(loop_timer_armed(&t));
	cr_assert_eq(loop_timers_run(&loop, 100000), 0);
	cr_assert_eq(loop_timers_next_ns(&loop, 0), UINT64_MAX);
	loop_fini(&loop);
}

Test(timers, periodic_keeps_its_phase_and_skips_missed_periods)
{
	struct loop loop;
	struct loop_timer t;
	struct fire_log log = {0};

	fake_now = 0;
	loop_init(&loop, NULL, fake_clock, NULL);
	loop_timer_init(&t, record_fire, &log);
	loop_timer_arm(&loop, &t, 100, 100);
	for (fake_now = 0; fake_now <= 300; fake_now += 10)
		loop_timers_run(&loop, fake_now);
	cr_assert_eq(log.count, 3);
	/* Asleep for 10 periods: one call, then back on the 100 ns grid. */
	fake_now = 1350;
	cr_assert_eq(loop_timers_run(&loop, fake_now), 1);
	cr_assert_eq(loop_timers_next_ns(&loop, fake_now), 50);
	loop_timer_cancel(&loop, &t);
	cr_assert_not(loop_timer_armed(&t));
	loop_fini(&loop);
}

Test(timers, many_timers_fire_in_expiry_order_and_cancel_works)
{
	struct loop loop;
	struct loop_timer timers[200];
	struct fire_log logs[200];

	fake_now = 0;
	loop_init(&loop, NULL, fake_clock, NULL);
	for (int i = 0; i < 200; i++) {
		logs[i].count = 0;
		loop_timer_init(&timers[i], record_fire, &logs[i]);
		/* A scrambled order of expiries, 1..200 us. */
		loop_timer_arm(&loop, &timers[i], (uint64_t)((i * 7919) % 200 + 1) * 1000, 0);
	}
	for (int i = 0; i < 200; i += 2)
		loop_timer_cancel(&loop, &timers[i]);
	for (fake_now = 0; fake_now <= 200000; fake_now += 1000)
		loop_timers_run(&loop, fake_now);
	/* Each surviving timer fired exactly at its own expiry. */
	for (int i = 1; i < 200; i += 2)
		cr_assert_eq(logs[i].at[0], (uint64_t)((i * 7919) % 200 + 1) * 1000, "timer %d", i);
	for (int i = 0; i < 200; i++)
		cr_assert_eq(logs[i].count, i % 2, "timer %d fired %d times", i, logs[i].count);
	loop_fini(&loop);
}

struct rearm_ctx {
	struct loop *loop;
	struct loop_timer timer;
	int fired;
};

static void rearm_fire(void *arg)
{
	struct rearm_ctx *ctx = arg;
	if (++ctx->fired < 3)
		loop_timer_arm(ctx->loop, &ctx->timer, 10, 0);
}

Test(timers, a_callback_may_rearm_its_own_timer)
{
	struct loop loop;
	struct rearm_ctx ctx = {.loop = &loop};

	fake_now = 0;
	loop_init(&loop, NULL, fake_clock, NULL);
	loop_timer_init(&ctx.timer, rearm_fire, &ctx);
	loop_timer_arm(&loop, &ctx.timer, 10, 0);
	for (fake_now = 0; fake_now < 100; fake_now += 5)
		loop_timers_run(&loop, fake_now);
	cr_assert_eq(ctx.fired, 3);
	cr_assert_not(loop_timer_armed(&ctx.timer));
	loop_fini(&loop);
}

static unsigned int count_poll(void *arg)
{
	unsigned int *calls = arg;
	(*calls)++;
	return *calls % 2; /* busy every other call */
}

Test(pollers, run_in_order_and_report_work)
{
	struct loop loop;
	unsigned int a = 0, b = 0;

	loop_init(&loop, NULL, fake_clock, NULL);
	cr_assert_eq(loop_poller_add(&loop, "a", LOOP_POLLER_DATAPLANE, count_poll, &a), 0);
	cr_assert_eq(loop_poller_add(&loop, "a-again", LOOP_POLLER_DATAPLANE, count_poll, &a),
	             -EEXIST);
	cr_assert_eq(loop_poller_add(&loop, "b", LOOP_POLLER_CONTROL, count_poll, &b), 0);
	cr_assert_eq(loop_run_once(&loop), 2);
	cr_assert_eq(loop_run_once(&loop), 0);
	cr_assert_eq(loop.stats.iterations, 2);
	cr_assert_eq(loop.stats.packets, 1, "only the dataplane poller's work counts as packets");
	cr_assert_eq(loop.stats.control_work, 1);
	cr_assert_eq(loop.stats.busy_iterations, 1);
	cr_assert_eq(loop_poller_del(&loop, count_poll, &a), 0);
	cr_assert_eq(loop_poller_del(&loop, count_poll, &a), -ENOENT);
	loop_run_once(&loop);
	cr_assert_eq(a, 2);
	cr_assert_eq(b, 2, "the control poller skipped the iteration after a busy one");
	loop_fini(&loop);
}

static unsigned int always_busy(void *arg)
{
	(void)arg;
	return 1;
}

/* While packets flow, the control pollers (the CLI) run once every LOOP_CONTROL_EVERY
 * iterations; when idle, every iteration. */
Test(pollers, control_pollers_run_every_sixteenth_busy_iteration)
{
	struct loop loop;
	unsigned int control = 0, busy = 0;

	loop_init(&loop, NULL, fake_clock, NULL);
	cr_assert_eq(loop_poller_add(&loop, "busy", LOOP_POLLER_DATAPLANE, always_busy, &busy), 0);
	cr_assert_eq(loop_poller_add(&loop, "cli", LOOP_POLLER_CONTROL, count_poll, &control), 0);
	for (unsigned int i = 0; i < 4 * LOOP_CONTROL_EVERY; i++)
		loop_run_once(&loop);
	/* The first iteration (nothing busy before it) and every 16th after it. */
	cr_assert_eq(control, 4, "%u runs in %u busy iterations", control, 4 * LOOP_CONTROL_EVERY);
	cr_assert_eq(loop_poller_del(&loop, always_busy, &busy), 0);
	loop_run_once(&loop); /* the last iteration was busy: maybe skipped */
	control = 0;
	for (unsigned int i = 0; i < 10; i++)
		loop_run_once(&loop);
	cr_assert_eq(control, 10, "idle, every iteration");
	loop_fini(&loop);
}

Test(pollers, table_is_bounded)
{
	struct loop loop;
	unsigned int counters[LOOP_MAX_POLLERS + 1];

	loop_init(&loop, NULL, fake_clock, NULL);
	for (int i = 0; i < LOOP_MAX_POLLERS; i++)
		cr_assert_eq(loop_poller_add(&loop, "p", LOOP_POLLER_DATAPLANE, count_poll,
		                             &counters[i]),
		             0);
	cr_assert_eq(loop_poller_add(&loop, "p", LOOP_POLLER_DATAPLANE, count_poll,
	                             &counters[LOOP_MAX_POLLERS]),
	             -ENOSPC);
	loop_fini(&loop);
}
