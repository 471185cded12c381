/* The reference for the idle benchmark's wake-up: how long this machine takes to wake a thread
 * asleep in epoll_wait when an eventfd it waits on is written, after an idle spell. An idle
 * ferryd in interrupt mode wakes the same way, so this is the floor of its wake-up. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static int event_fd, epoll_fd;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Waits for each write and sends back when it woke. */
static void *waiter(void *arg)
{
	int *answer = arg;

	for (;;) {
		struct epoll_event ev;
		uint64_t count;
		if (epoll_wait(epoll_fd, &ev, 1, -1) != 1 ||
		    read(event_fd, &count, sizeof(count)) < 0)
			continue;
		uint64_t woke = now_ns();
		if (write(answer[1], &woke, sizeof(woke)) != sizeof(woke))
			return NULL;
	}
}

static int by_value(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s TRIALS IDLE_MS\n", argv[0]);
		return 2;
	}
	int trials = atoi(argv[1]), idle_ms = atoi(argv[2]);
	int answer[2];
	pthread_t thread;
	struct epoll_event ev = {.events = EPOLLIN};

	event_fd = eventfd(0, EFD_NONBLOCK);
	epoll_fd = epoll_create1(0);
	if (trials <= 0 || event_fd < 0 || epoll_fd < 0 || pipe(answer) < 0 ||
	    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, event_fd, &ev) < 0 ||
	    pthread_create(&thread, NULL, waiter, answer) != 0) {
		perror("wake-floor");
		return 1;
	}
	uint64_t *latency = calloc((size_t)trials, sizeof(*latency));
	for (int i = 0; i < trials; i++) {
		struct timespec idle = {.tv_sec = idle_ms / 1000,
		                        .tv_nsec = (idle_ms % 1000) * 1000000L};
		nanosleep(&idle, NULL);
		uint64_t one = 1, woke, sent = now_ns();
		if (write(event_fd, &one, sizeof(one)) != sizeof(one) ||
		    read(answer[0], &woke, sizeof(woke)) != sizeof(woke)) {
			perror("wake-floor");
			return 1;
		}
		latency[i] = woke - sent;
	}
	qsort(latency, (size_t)trials, sizeof(*latency), by_value);
	printf("%.0f %.0f\n", (double)latency[trials / 2] / 1000,
	       (double)latency[trials - 1] / 1000);
	return 0;
}
