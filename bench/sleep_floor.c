/* The reference for the idle benchmark: a process that only sleeps a fixed time in a loop, as
 * ferryd's worker does when idle, so its CPU use is the floor this machine's timers set. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s SLEEP_US\n", argv[0]);
		return 2;
	}
	long us = atol(argv[1]);
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};

	/* The same timer slack ferryd asks for. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	for (;;)
		nanosleep(&ts, NULL);
}
