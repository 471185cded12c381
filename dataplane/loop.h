/* The worker's run-to-completion loop: pollers, timers and the adaptive idle back-off. */
#ifndef FERRY_DATAPLANE_LOOP_H
#define FERRY_DATAPLANE_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#define LOOP_MAX_POLLERS   128 /* the switch, the CLI, and two per VM or vmk */
#define LOOP_CONTROL_EVERY 16  /* busy iterations per run of the control pollers */
#define LOOP_NAME_MAX      32

/* A poller does one bounded slice of work and returns how many packets (or other units of work)
 * it handled; 0 means it found nothing to do. */
typedef unsigned int loop_poll_fn(void *arg);

/* A timer callback; runs on the worker lcore. */
typedef void loop_timer_fn(void *arg);

/* Returns the current time in nanoseconds. Tests drive time with their own clock. */
typedef uint64_t loop_clock_fn(void *arg);

/* Waits for work (an rx interrupt, say) for at most timeout_ns instead of sleeping blind;
 * returns true if an event woke it. */
typedef bool loop_wait_fn(void *ctx, uint64_t timeout_ns);

/* The longest an idle loop that waits on events stays down: what a poller with neither an event
 * nor a timer of its own may wait. */
#define LOOP_WAIT_MAX_NS (100ull * 1000 * 1000)

struct loop_timer {
	uint64_t expire_ns; /* absolute, on the loop's clock */
	uint64_t period_ns; /* 0 = one shot */
	loop_timer_fn *fn;
	void *arg;
	int heap_index; /* -1 when not armed */
};

/* What the back-off asks the loop to do after an idle iteration. */
enum loop_idle_action {
	LOOP_IDLE_SPIN,  /* poll again at once */
	LOOP_IDLE_PAUSE, /* a CPU pause hint, then poll */
	LOOP_IDLE_SLEEP, /* sleep for loop_backoff.sleep_ns */
};

struct loop_backoff_config {
	uint32_t spin_iterations;  /* idle iterations polled back to back */
	uint32_t pause_iterations; /* then idle iterations with a pause hint */
	uint64_t min_sleep_ns;     /* first sleep; each idle sleep doubles it ... */
	uint64_t max_sleep_ns;     /* ... up to this (default 1 ms) */
};

struct loop_backoff {
	struct loop_backoff_config config;
	uint32_t idle_iterations; /* consecutive idle iterations so far */
	uint64_t sleep_ns;        /* length of the next sleep */
};

struct loop_stats {
	uint64_t iterations;
	uint64_t busy_iterations; /* iterations that moved packets */
	uint64_t busy_cycles;     /* TSC cycles of iterations that moved packets */
	uint64_t idle_cycles;     /* TSC cycles spent polling and finding nothing */
	uint64_t sleep_cycles;    /* TSC cycles spent asleep */
	uint64_t control_cycles;  /* TSC cycles of control pollers' work (CLI commands) */
	uint64_t sleeps;
	uint64_t event_wakeups; /* sleeps that an event ended (loop_set_waiter) */
	uint64_t packets;       /* what the dataplane pollers reported */
	uint64_t control_work;  /* what the control pollers reported */
	uint64_t timers_fired;
};

/* Dataplane pollers move packets: their cycles make the cycles-per-packet figure. Control
 * pollers (the CLI) are timed apart, so a slow command does not look like a slow packet. */
enum loop_poller_kind {
	LOOP_POLLER_DATAPLANE,
	LOOP_POLLER_CONTROL,
};

struct loop_poller {
	char name[LOOP_NAME_MAX];
	enum loop_poller_kind kind;
	loop_poll_fn *fn;
	void *arg;
};

struct loop {
	struct loop_poller pollers[LOOP_MAX_POLLERS];
	unsigned int nb_pollers;

	struct loop_timer **timer_heap; /* min-heap on expire_ns */
	unsigned int nb_timers;
	unsigned int timer_heap_size;

	loop_clock_fn *clock;
	void *clock_arg;
	uint64_t tsc_ns_mult; /* nanoseconds per TSC cycle, times 2^64 */

	loop_wait_fn *waiter; /* set: idle sleeps wait on its events, until the next timer */
	void *waiter_ctx;
	int wake_fd; /* eventfd: loop_wake's; a waiter waits on it too */

	struct loop_backoff backoff;
	struct loop_stats stats;
	uint64_t now_ns;                   /* the clock when this iteration began */
	uint64_t iteration_control_cycles; /* control cycles of the last iteration */
	unsigned int iteration_packets;    /* packets of the last iteration */
	volatile bool stop;
};

/* Nanoseconds on the TSC: the worker's default clock, for any dataplane code that needs one. */
uint64_t loop_tsc_now_ns(void);

/* The defaults: 64 spins, 1024 pauses, sleeps from 8 us doubling up to 1 ms. */
void loop_backoff_config_default(struct loop_backoff_config *config);

/* Resets the back-off to its first stage with the given configuration. */
void loop_backoff_init(struct loop_backoff *backoff, const struct loop_backoff_config *config);

/* Records the outcome of one iteration and says what to do before the next. A busy iteration
 * always resets to spinning. */
enum loop_idle_action loop_backoff_step(struct loop_backoff *backoff, bool busy);

/* Initialises a loop with no pollers or timers. clock may be NULL for the monotonic TSC clock.
 * Returns 0 or -ENOMEM. */
int loop_init(struct loop *loop, const struct loop_backoff_config *config, loop_clock_fn *clock,
              void *clock_arg);

/* Frees what loop_init allocated; armed timers are simply forgotten. */
void loop_fini(struct loop *loop);

/* Current time on the loop's clock, in nanoseconds. */
uint64_t loop_now_ns(const struct loop *loop);

/* The loop's clock when the current iteration began: what a poller that needs the time once
 * per burst reads, without reading the clock again. */
static inline uint64_t loop_iteration_ns(const struct loop *loop)
{
	return loop->now_ns;
}

/* Adds a poller, run once per iteration in registration order. -ENOSPC when full, -EEXIST when
 * the same fn/arg pair is already registered. */
int loop_poller_add(struct loop *loop, const char *name, enum loop_poller_kind kind,
                    loop_poll_fn *fn, void *arg);

/* Removes a poller added with the same fn/arg. -ENOENT if absent. */
int loop_poller_del(struct loop *loop, loop_poll_fn *fn, void *arg);

/* Prepares a timer; it is not armed. */
void loop_timer_init(struct loop_timer *timer, loop_timer_fn *fn, void *arg);

/* Arms (or re-arms) a timer to fire delay_ns from now, then every period_ns if that is not 0.
 * Returns 0 or -ENOMEM. */
int loop_timer_arm(struct loop *loop, struct loop_timer *timer, uint64_t delay_ns,
                   uint64_t period_ns);

/* Disarms a timer; harmless if it is not armed. */
void loop_timer_cancel(struct loop *loop, struct loop_timer *timer);

/* True if the timer is armed. */
bool loop_timer_armed(const struct loop_timer *timer);

/* Fires every timer due at now_ns; returns how many fired. */
unsigned int loop_timers_run(struct loop *loop, uint64_t now_ns);

/* Nanoseconds until the next timer is due (0 if one is due now), or UINT64_MAX with none. */
uint64_t loop_timers_next_ns(const struct loop *loop, uint64_t now_ns);

/* Runs one iteration (pollers, then timers) without any back-off; returns the packets and
 * control work done (timers fired are not work: they don't keep the worker spinning). */
unsigned int loop_run_once(struct loop *loop);

/* Makes idle sleeps wait on fn's events (up to the next timer, at most LOOP_WAIT_MAX_NS)
 * instead of the back-off's blind sleeps; NULL goes back to those. For a loop whose every source
 * of work can wake it: interrupt-capable rx queues. */
void loop_set_waiter(struct loop *loop, loop_wait_fn *fn, void *ctx);

/* Wakes the loop's waiter (from any thread): work came that no event of its own announces, a
 * CLI command say. */
void loop_wake(struct loop *loop);

/* The eventfd loop_wake writes: a waiter adds it to what it waits on, and calls
 * loop_wake_clear when it returns. */
int loop_wake_fd(const struct loop *loop);

/* Consumes pending wake-ups. */
void loop_wake_clear(struct loop *loop);

/* Runs iterations with the idle back-off until loop_stop() is called. */
void loop_run(struct loop *loop);

/* Asks loop_run() to return after the current iteration; safe from a signal handler or another
 * thread. */
void loop_stop(struct loop *loop);

#endif
