/* Socket abuse: garbage, huge lines, half-closed and vanishing clients, many clients at once. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define ANSWER_MS 10000

static struct harness_ferryd d;

static void start(void)
{
	cr_assert_eq(harness_ferryd_start(&d, "port add r0 net_ring0\n"), 0);
}

static void stop(void)
{
	/* Whatever a test did, the daemon must still answer and then stop cleanly. */
	cr_assert_eq(harness_ctl(&d, NULL, NULL, "show", "version", NULL), 0);
	cr_assert_eq(harness_ferryd_stop(&d), 0);
}

TestSuite(abuse, .init = start, .fini = stop, .timeout = 120);

static void assert_still_serving(int fd)
{
	char *body;

	cr_assert_eq(harness_call(fd, "show version", &body, ANSWER_MS), 1);
	cr_assert(strstr(body, "version:") != NULL, "%s", body);
	free(body);
}

/* A small deterministic generator, so a failure can be replayed. */
static uint32_t next_random(uint64_t *state)
{
	*state = *state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(*state >> 33);
}

static void send_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		cr_assert_gt(n, 0);
		p += n;
		len -= (size_t)n;
	}
}

Test(abuse, random_bytes_get_errors_and_the_connection_keeps_working)
{
	int fd = harness_connect(&d);
	uint64_t seed = 0x5eed;
	char line[2048];

	cr_assert_geq(fd, 0);
	for (int i = 0; i < 300; i++) {
		size_t len = 1 + next_random(&seed) % (sizeof(line) - 1);
		for (size_t j = 0; j < len; j++) {
			line[j] = (char)(next_random(&seed) & 0xff);
			if (line[j] == '\n')
				line[j] = '\r';
		}
		/* Start with a control byte so the line can never be a valid command. */
		line[0] = '\x02';
		send_all(fd, line, len);
		send_all(fd, "\n", 1);
		char *body;
		cr_assert_eq(harness_read_answer(fd, &body, ANSWER_MS), 0, "line %d", i);
		cr_assert(strstr(body, "invalid byte") != NULL, "%s", body);
		free(body);
	}
	assert_still_serving(fd);
	close(fd);
}

Test(abuse, a_nul_byte_is_refused_with_its_column)
{
	int fd = harness_connect(&d);
	char *body;

	send_all(fd, "show\0ports\n", 11);
	cr_assert_eq(harness_read_answer(fd, &body, ANSWER_MS), 0);
	cr_assert(strstr(body, "invalid byte 0x00 at column 5") != NULL, "%s", body);
	free(body);
	assert_still_serving(fd);
	close(fd);
}

Test(abuse, a_one_mebibyte_line_gets_one_error_and_the_connection_keeps_working)
{
	int fd = harness_connect(&d);
	size_t len = 1 << 20;
	char *big = malloc(len);
	char *body;

	memset(big, 'a', len);
	send_all(fd, big, len);
	send_all(fd, "\n", 1);
	free(big);
	cr_assert_eq(harness_read_answer(fd, &body, ANSWER_MS), 0);
	cr_assert(strstr(body, "line too long") != NULL, "%s", body);
	free(body);
	/* The tail of the long line was skipped: the next answer is the next command's. */
	assert_still_serving(fd);
	close(fd);
}

Test(abuse, pipelined_commands_are_answered_in_order)
{
	int fd = harness_connect(&d);
	char batch[4096] = "";

	for (int i = 0; i < 40; i++)
		strcat(batch, i % 2 ? "show version\n" : "bogus\n");
	send_all(fd, batch, strlen(batch));
	for (int i = 0; i < 40; i++) {
		char *body;
		cr_assert_eq(harness_read_answer(fd, &body, ANSWER_MS), i % 2, "answer %d", i);
		free(body);
	}
	close(fd);
}

Test(abuse, a_half_closed_client_still_gets_its_answer)
{
	char *body;

	/* With and without the final newline. */
	const char *requests[] = {"show version\n", "show version"};
	for (int i = 0; i < 2; i++) {
		int fd = harness_connect(&d);
		send_all(fd, requests[i], strlen(requests[i]));
		shutdown(fd, SHUT_WR);
		cr_assert_eq(harness_read_answer(fd, &body, ANSWER_MS), 1, "request %d", i);
		cr_assert(strstr(body, "version:") != NULL);
		free(body);
		/* Then the daemon closes its side. */
		char c;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		cr_assert_eq(poll(&pfd, 1, ANSWER_MS), 1);
		cr_assert_eq(read(fd, &c, 1), 0);
		close(fd);
	}
}

Test(abuse, clients_that_vanish_mid_request_cost_nothing)
{
	for (int i = 0; i < 200; i++) {
		int fd = harness_connect(&d);
		cr_assert_geq(fd, 0);
		/* Half a line, a whole request, or a request and a reset. */
		if (i % 3 == 0)
			send_all(fd, "show po", 7);
		else
			send_all(fd, "show ports\n", 11);
		if (i % 3 == 2) {
			struct linger lg = {.l_onoff = 1, .l_linger = 0};
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		close(fd);
	}
	int fd = harness_connect(&d);
	assert_still_serving(fd);
	close(fd);
}

Test(abuse, fifty_clients_at_once)
{
	enum { CLIENTS = 50 };
	int fds[CLIENTS];

	for (int i = 0; i < CLIENTS; i++) {
		fds[i] = harness_connect(&d);
		cr_assert_geq(fds[i], 0, "client %d", i);
	}
	/* Every client has a request in flight before any answer is read. */
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < CLIENTS; i++)
			send_all(fds[i], "show ports\nshow loop\n", 21);
		for (int i = 0; i < CLIENTS; i++) {
			char *body;
			cr_assert_eq(harness_read_answer(fds[i], &body, ANSWER_MS), 1, "client %d",
			             i);
			cr_assert(strstr(body, "r0") != NULL, "%s", body);
			free(body);
			cr_assert_eq(harness_read_answer(fds[i], &body, ANSWER_MS), 1, "client %d",
			             i);
			cr_assert(strstr(body, "iterations:") != NULL, "%s", body);
			free(body);
		}
	}
	for (int i = 0; i < CLIENTS; i++)
		close(fds[i]);
}

Test(abuse, a_slow_reader_does_not_block_other_clients)
{
	int slow = harness_connect(&d);
	int fast = harness_connect(&d);

	/* The slow client asks for a lot and reads nothing. */
	for (int i = 0; i < 2000; i++) {
		if (send(slow, "help\n", 5, MSG_NOSIGNAL | MSG_DONTWAIT) != 5)
			break;
	}
	assert_still_serving(fast);
	close(slow);
	assert_still_serving(fast);
	close(fast);
}

Test(limits, clients_over_the_limit_are_told_why_and_the_others_keep_working, .timeout = 60)
{
	struct harness_ferryd small;
	const char *const options[] = {"--max-clients", "2", NULL};
	char *body;

	cr_assert_eq(harness_ferryd_start_with(&small, NULL, options), 0);
	/* The start-up probe's connection may still hold a slot for a moment: retry b until
	 * both slots are a's and b's. */
	int a = harness_connect(&small);
	cr_assert_eq(harness_call(a, "show version", NULL, ANSWER_MS), 1);
	int b = -1;
	uint64_t deadline = harness_now_ms() + ANSWER_MS;
	while (harness_now_ms() < deadline) {
		b = harness_connect(&small);
		if (harness_call(b, "show version", NULL, ANSWER_MS) == 1)
			break;
		close(b);
		b = -1;
		usleep(10000);
	}
	cr_assert_geq(b, 0, "a second client is served");
	int c = harness_connect(&small);
	cr_assert_eq(harness_read_answer(c, &body, ANSWER_MS), 0);
	cr_assert_str_eq(body, "too many clients (at most 2)\n");
	free(body);
	close(c);
	cr_assert_eq(harness_call(a, "show version", NULL, ANSWER_MS), 1);
	close(b);
	/* A freed slot is served again. */
	deadline = harness_now_ms() + ANSWER_MS;
	int served = -1;
	while (served != 1 && harness_now_ms() < deadline) {
		int d = harness_connect(&small);
		served = harness_call(d, "show version", NULL, ANSWER_MS);
		close(d);
	}
	cr_assert_eq(served, 1);
	close(a);
	cr_assert_eq(harness_ferryd_stop(&small), 0);
}
