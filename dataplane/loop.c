/* The worker's run-to-completion loop: pollers, timers and the adaptive idle back-off. */
#include "loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_pause.h>

void loop_backoff_config_default(struct loop_backoff_config *config)
{
	config->spin_iterations = 64;
	config->pause_iterations = 1024;
	config->min_sleep_ns = 8 * 1000;
	config->max_sleep_ns = 1000 * 1000;
}

void loop_backoff_init(struct loop_backoff *backoff, const struct loop_backoff_config *config)
{
	backoff->config = *config;
	if (backoff->config.min_sleep_ns == 0)
		backoff->config.min_sleep_ns = 1000;
	if (backoff->config.max_sleep_ns < backoff->config.min_sleep_ns)
		backoff->config.max_sleep_ns = backoff->config.min_sleep_ns;
	backoff->idle_iterations = 0;
	backoff->sleep_ns = backoff->config.min_sleep_ns;
}

enum loop_idle_action loop_backoff_step(struct loop_backoff *backoff, bool busy)
{
	const struct loop_backoff_config *config = &backoff->config;

	if (busy) {
		backoff->idle_iterations = 0;
		backoff->sleep_ns = config->min_sleep_ns;
		return LOOP_IDLE_SPIN;
	}
	if (backoff->idle_iterations < UINT32_MAX)
		backoff->idle_iterations++;
	if (backoff->idle_iterations <= config->spin_iterations)
		return LOOP_IDLE_SPIN;
	if (backoff->idle_iterations <= config->spin_iterations + config->pause_iterations)
		return LOOP_IDLE_PAUSE;
	/* The first sleep uses min_sleep_ns; each later one doubles, capped at the maximum. */
	if (backoff->idle_iterations > config->spin_iterations + config->pause_iterations + 1) {
		backoff->sleep_ns *= 2;
		if (backoff->sleep_ns > config->max_sleep_ns)
			backoff->sleep_ns = config->max_sleep_ns;
	}
	return LOOP_IDLE_SLEEP;
}

uint64_t loop_tsc_now_ns(void)
{
	/* Scale in two steps so that 2^64 cycles of uptime never overflow the product. */
	uint64_t hz = rte_get_tsc_hz();
	uint64_t cycles = rte_get_tsc_cycles();
	return (cycles / hz) * 1000000000ull + (cycles % hz) * 1000000000ull / hz;
}

/* The default clock: the TSC scaled by a multiplier worked out once, where loop_tsc_now_ns
 * divides on every call. The two agree to within a nanosecond. */
static uint64_t loop_tsc_clock(void *arg)
{
	const struct loop *loop = arg;

	return (uint64_t)(((unsigned __int128)rte_get_tsc_cycles() * loop->tsc_ns_mult) >> 64);
}

int loop_init(struct loop *loop, const struct loop_backoff_config *config, loop_clock_fn *clock,
              void *clock_arg)
{
	struct loop_backoff_config defaults;

	memset(loop, 0, sizeof(*loop));
	if (config == NULL) {
		loop_backoff_config_default(&defaults);
		config = &defaults;
	}
	loop_backoff_init(&loop->backoff, config);
	loop->clock = clock != NULL ? clock : loop_tsc_clock;
	loop->clock_arg = clock != NULL ? clock_arg : loop;
	if (clock == NULL)
		loop->tsc_ns_mult =
		        (uint64_t)(((unsigned __int128)1000000000u << 64) / rte_get_tsc_hz());
	loop->timer_heap_size = 64;
	loop->timer_heap = calloc(loop->timer_heap_size, sizeof(*loop->timer_heap));
	loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (loop->timer_heap == NULL || loop->wake_fd < 0) {
		int ret = loop->timer_heap == NULL ? -ENOMEM : -errno;
		loop_fini(loop);
		return ret;
	}
	return 0;
}

void loop_fini(struct loop *loop)
{
	for (unsigned int i = 0; i < loop->nb_timers; i++)
		loop->timer_heap[i]->heap_index = -1;
	free(loop->timer_heap);
	loop->timer_heap = NULL;
	loop->nb_timers = 0;
	if (loop->wake_fd >= 0)
		close(loop->wake_fd);
	loop->wake_fd = -1;
}

uint64_t loop_now_ns(const struct loop *loop)
{
	return loop->clock(loop->clock_arg);
}

int loop_poller_add(struct loop *loop, const char *name, enum loop_poller_kind kind,
                    loop_poll_fn *fn, void *arg)
{
	for (unsigned int i = 0; i < loop->nb_pollers; i++)
		if (loop->pollers[i].fn == fn && loop->pollers[i].arg == arg)
			return -EEXIST;
	if (loop->nb_pollers == LOOP_MAX_POLLERS)
		return -ENOSPC;
	struct loop_poller *poller = &loop->pollers[loop->nb_pollers++];
	snprintf(poller->name, sizeof(poller->name), "%s", name);
	poller->kind = kind;
	poller->fn = fn;
	poller->arg = arg;
	return 0;
}

int loop_poller_del(struct loop *loop, loop_poll_fn *fn, void *arg)
{
	for (unsigned int i = 0; i < loop->nb_pollers; i++) {
		if (loop->pollers[i].fn != fn || loop->pollers[i].arg != arg)
			continue;
		memmove(&loop->pollers[i], &loop->pollers[i + 1],
		        (loop->nb_pollers - i - 1) * sizeof(loop->pollers[0]));
		loop->nb_pollers--;
		return 0;
	}
	return -ENOENT;
}

/* Timers sit in a binary min-heap keyed on expiry; each timer remembers its slot so that
 * cancelling is O(log n) without a search. */

static void timer_heap_set(struct loop *loop, unsigned int index, struct loop_timer *timer)
{
	loop->timer_heap[index] = timer;
	timer->heap_index = (int)index;
}

static void timer_heap_up(struct loop *loop, unsigned int index)
{
	struct loop_timer *timer = loop->timer_heap[index];

	while (index > 0) {
		unsigned int parent = (index - 1) / 2;
		if (loop->timer_heap[parent]->expire_ns <= timer->expire_ns)
			break;
		timer_heap_set(loop, index, loop->timer_heap[parent]);
		index = parent;
	}
	timer_heap_set(loop, index, timer);
}

static void timer_heap_down(struct loop *loop, unsigned int index)
{
	struct loop_timer *timer = loop->timer_heap[index];

	for (;;) {
		unsigned int child = 2 * index + 1;
		if (child >= loop->nb_timers)
			break;
		if (child + 1 < loop->nb_timers &&
		    loop->timer_heap[child + 1]->expire_ns < loop->timer_heap[child]->expire_ns)
			child++;
		if (timer->expire_ns <= loop->timer_heap[child]->expire_ns)
			break;
		timer_heap_set(loop, index, loop->timer_heap[child]);
		index = child;
	}
	timer_heap_set(loop, index, timer);
}

static void timer_heap_remove(struct loop *loop, struct loop_timer *timer)
{
	unsigned int index = (unsigned int)timer->heap_index;
	struct loop_timer *last = loop->timer_heap[--loop->nb_timers];

	timer->heap_index = -1;
	if (last == timer)
		return;
	timer_heap_set(loop, index, last);
	timer_heap_up(loop, index);
	timer_heap_down(loop, (unsigned int)last->heap_index);
}

static int timer_heap_insert(struct loop *loop, struct loop_timer *timer)
{
	if (loop->nb_timers == loop->timer_heap_size) {
		unsigned int size = loop->timer_heap_size * 2;
		struct loop_timer **heap = realloc(loop->timer_heap, size * sizeof(*heap));
		if (heap == NULL)
			return -ENOMEM;
		loop->timer_heap = heap;
		loop->timer_heap_size = size;
	}
	timer_heap_set(loop, loop->nb_timers++, timer);
	timer_heap_up(loop, (unsigned int)timer->heap_index);
	return 0;
}

void loop_timer_init(struct loop_timer *timer, loop_timer_fn *fn, void *arg)
{
	memset(timer, 0, sizeof(*timer));
	timer->fn = fn;
	timer->arg = arg;
	timer->heap_index = -1;
}

int loop_timer_arm(struct loop *loop, struct loop_timer *timer, uint64_t delay_ns,
                   uint64_t period_ns)
{
	loop_timer_cancel(loop, timer);
	timer->expire_ns = loop_now_ns(loop) + delay_ns;
	timer->period_ns = period_ns;
	return timer_heap_insert(loop, timer);
}

void loop_timer_cancel(struct loop *loop, struct loop_timer *timer)
{
	if (timer->heap_index >= 0)
		timer_heap_remove(loop, timer);
}

bool loop_timer_armed(const struct loop_timer *timer)
{
	return timer->heap_index >= 0;
}

unsigned int loop_timers_run(struct loop *loop, uint64_t now_ns)
{
	unsigned int fired = 0;

	while (loop->nb_timers > 0 && loop->timer_heap[0]->expire_ns <= now_ns) {
		struct loop_timer *timer = loop->timer_heap[0];

		timer_heap_remove(loop, timer);
		if (timer->period_ns != 0) {
			/* Skip missed periods rather than firing a burst of catch-up calls. */
			uint64_t late = now_ns - timer->expire_ns;
			timer->expire_ns += (late / timer->period_ns + 1) * timer->period_ns;
			if (timer_heap_insert(loop, timer) < 0)
				timer->heap_index = -1;
		}
		/* The callback may re-arm or cancel its own timer: it is out of the heap or
		 * already re-queued, both consistent states. */
		timer->fn(timer->arg);
		fired++;
	}
	loop->stats.timers_fired += fired;
	return fired;
}

uint64_t loop_timers_next_ns(const struct loop *loop, uint64_t now_ns)
{
	if (loop->nb_timers == 0)
		return UINT64_MAX;
	uint64_t expire = loop->timer_heap[0]->expire_ns;
	return expire <= now_ns ? 0 : expire - now_ns;
}

unsigned int loop_run_once(struct loop *loop)
{
	/* While packets flow, control pollers (the CLI's ring) run every LOOP_CONTROL_EVERY-th
	 * iteration: a command waits microseconds longer, and a burst does not pay for them. */
	bool control_due =
	        loop->iteration_packets == 0 || loop->stats.iterations % LOOP_CONTROL_EVERY == 0;

	/* One clock read per iteration, for the pollers (loop_iteration_ns) and the timers. */
	loop->now_ns = loop_now_ns(loop);
	unsigned int packets = 0, control = 0;

	loop->iteration_control_cycles = 0;
	for (unsigned int i = 0; i < loop->nb_pollers; i++) {
		const struct loop_poller *poller = &loop->pollers[i];
		if (poller->kind == LOOP_POLLER_DATAPLANE) {
			packets += poller->fn(poller->arg);
			continue;
		}
		if (!control_due)
			continue;
		uint64_t start = rte_get_tsc_cycles();
		unsigned int n = poller->fn(poller->arg);
		if (n > 0) {
			control += n;
			loop->iteration_control_cycles += rte_get_tsc_cycles() - start;
		}
	}
	if (loop->nb_timers > 0)
		loop_timers_run(loop, loop->now_ns);
	loop->stats.iterations++;
	loop->stats.packets += packets;
	loop->stats.control_work += control;
	if (packets > 0)
		loop->stats.busy_iterations++;
	loop->iteration_packets = packets;
	/* Timers are housekeeping (aging, retransmit checks): a periodic one must not pull an
	 * idle worker back into spinning. */
	return packets + control;
}

void loop_wake(struct loop *loop)
{
	uint64_t one = 1;
	ssize_t n = write(loop->wake_fd, &one, sizeof(one));

	(void)n; /* EAGAIN means the counter is already set: the waiter wakes anyway */
}

int loop_wake_fd(const struct loop *loop)
{
	return loop->wake_fd;
}

void loop_wake_clear(struct loop *loop)
{
	uint64_t count;
	ssize_t n = read(loop->wake_fd, &count, sizeof(count));

	(void)n; /* EAGAIN: nothing was pending */
}

void loop_set_waiter(struct loop *loop, loop_wait_fn *fn, void *ctx)
{
	loop->waiter = fn;
	loop->waiter_ctx = ctx;
}

static void loop_sleep(struct loop *loop, uint64_t sleep_ns)
{
	uint64_t until_timer = loop_timers_next_ns(loop, loop_now_ns(loop));
	struct timespec ts;

	if (loop->waiter != NULL) {
		/* Events wake it: no reason to come back before the next timer. */
		uint64_t wait_ns = until_timer < LOOP_WAIT_MAX_NS ? until_timer : LOOP_WAIT_MAX_NS;
		if (loop->waiter(loop->waiter_ctx, wait_ns))
			loop->stats.event_wakeups++;
		loop->stats.sleeps++;
		return;
	}
	if (until_timer < sleep_ns)
		sleep_ns = until_timer;
	if (sleep_ns == 0)
		return;
	ts.tv_sec = (time_t)(sleep_ns / 1000000000ull);
	ts.tv_nsec = (long)(sleep_ns % 1000000000ull);
	nanosleep(&ts, NULL);
	loop->stats.sleeps++;
}

void loop_run(struct loop *loop)
{
	uint64_t start = rte_get_tsc_cycles();

	while (!loop->stop) {
		unsigned int work = loop_run_once(loop);
		uint64_t now = rte_get_tsc_cycles();
		uint64_t cycles = now - start - loop->iteration_control_cycles;

		loop->stats.control_cycles += loop->iteration_control_cycles;
		if (loop->iteration_packets > 0)
			loop->stats.busy_cycles += cycles;
		else
			loop->stats.idle_cycles += cycles;
		start = now;

		switch (loop_backoff_step(&loop->backoff, work > 0)) {
		case LOOP_IDLE_SPIN:
			break;
		case LOOP_IDLE_PAUSE:
			rte_pause();
			break;
		case LOOP_IDLE_SLEEP:
			loop_sleep(loop, loop->backoff.sleep_ns);
			now = rte_get_tsc_cycles();
			loop->stats.sleep_cycles += now - start;
			start = now;
			break;
		}
	}
}

void loop_stop(struct loop *loop)
{
	loop->stop = true;
}
