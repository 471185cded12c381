/* ferryctl: the command line client of ferryd's CLI socket, one-shot or interactive. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_LIBEDIT
#include <editline/readline.h>
#endif

#include "cli/client.h"
#include "cli/json.h"
#include "timeline.h"

#define DEFAULT_SOCKET "/run/ferry/ferryd.sock"
#define LINE_MAX_BYTES 65536

/* Exit codes: the command worked, the daemon said no, the daemon could not be reached. */
enum { EXIT_OK = 0, EXIT_COMMAND_FAILED = 1, EXIT_UNREACHABLE = 2 };

/* One command through the client, as an exit status; a lost connection said on stderr. */
static int conn_call(struct client *conn, const char *line, char **body)
{
	enum client_status status = client_call(conn, line, body);

	if (status == CLIENT_LOST)
		fprintf(stderr, "ferryctl: %s\n", client_error(conn));
	return status == CLIENT_OK        ? EXIT_OK
	       : status == CLIENT_REFUSED ? EXIT_COMMAND_FAILED
	                                  : EXIT_UNREACHABLE;
}

static int run_command(struct client *conn, const char *line)
{
	char *body;
	int ret = conn_call(conn, line, &body);

	if (body != NULL) {
		fputs(body, ret == EXIT_OK ? stdout : stderr);
		fflush(stdout);
	}
	free(body);
	return ret;
}

/* Runs a command in JSON and leaves its answer in body: a session the daemon runs on its own
 * (vmkping, a migration), or what a report draws; on failure prints the daemon's reason and
 * returns the exit status. The connection stays in JSON, so a follower can read progress. */
static int follow_start(struct client *conn, const char *line, char **body)
{
	int ret = conn_call(conn, "output json", body);

	free(*body);
	ret = conn_call(conn, line, body);
	if (ret != EXIT_OK) {
		char error[1024];
		if (*body != NULL && json_string(*body, "error", error, sizeof(error)))
			fprintf(stderr, "%s\n", error);
		free(*body);
		*body = NULL;
	}
	return ret;
}

/* vmkping as ping shows it: the daemon runs the session on its own timers; we start it, then
 * poll its progress and print each reply as it comes, and the summary at the end. */
static int vmkping_follow(struct client *conn, const char *line, bool json)
{
	char *body = NULL, status_line[64];
	int ret = follow_start(conn, line, &body);

	if (ret != EXIT_OK)
		return ret;
	unsigned int session = 0, size = 0;
	char dst[32] = "";
	const char *p;
	if ((p = json_find(body, "session")) != NULL)
		session = (unsigned int)strtoul(p, NULL, 10);
	if ((p = json_find(body, "size")) != NULL)
		size = (unsigned int)strtoul(p, NULL, 10);
	if ((p = json_find(body, "destination")) != NULL)
		snprintf(dst, sizeof(dst), "%.*s", (int)strcspn(p + 1, "\""), p + 1);
	free(body);
	if (!json)
		printf("PING %s: %u data bytes\n", dst, size);

	snprintf(status_line, sizeof(status_line), "vmkping status %u", session);
	int printed = -1;
	for (;;) {
		ret = conn_call(conn, status_line, &body);
		if (ret != EXIT_OK) {
			free(body);
			return ret;
		}
		/* Replies come in sequence order: print those not printed yet. */
		for (const char *r = strstr(body, "{\"seq\": "); r != NULL;
		     r = strstr(r + 1, "{\"seq\": ")) {
			int seq;
			unsigned int bytes, ttl;
			double rtt;
			if (sscanf(r, "{\"seq\": %d, \"bytes\": %u, \"ttl\": %u, \"rtt_ms\": %lf",
			           &seq, &bytes, &ttl, &rtt) == 4 &&
			    seq > printed) {
				if (!json)
					printf("%u bytes from %s: icmp_seq=%d ttl=%u time=%.3f "
					       "ms\n",
					       bytes, dst, seq, ttl, rtt);
				printed = seq;
			}
		}
		fflush(stdout);
		p = json_find(body, "done");
		if (p != NULL && strncmp(p, "true", 4) == 0)
			break;
		free(body);
		usleep(20000);
	}
	unsigned long sent = 0, received = 0;
	double loss = 0, min = 0, avg = 0, max = 0;
	if ((p = json_find(body, "transmitted")) != NULL)
		sent = strtoul(p, NULL, 10);
	if ((p = json_find(body, "received")) != NULL)
		received = strtoul(p, NULL, 10);
	if ((p = json_find(body, "loss_percent")) != NULL)
		loss = strtod(p, NULL);
	if ((p = json_find(body, "rtt_min_ms")) != NULL)
		min = strtod(p, NULL);
	if ((p = json_find(body, "rtt_avg_ms")) != NULL)
		avg = strtod(p, NULL);
	if ((p = json_find(body, "rtt_max_ms")) != NULL)
		max = strtod(p, NULL);
	if (json) {
		fputs(body, stdout);
	} else {
		char error[1024];
		if (json_string(body, "error", error, sizeof(error)))
			printf("vmkping: %s\n", error);
		printf("\n--- %s vmkping statistics ---\n"
		       "%lu packets transmitted, %lu packets received, %.0f%% packet loss\n",
		       dst, sent, received, loss);
		if (received > 0)
			printf("round-trip min/avg/max = %.3f/%.3f/%.3f ms\n", min, avg, max);
	}
	free(body);
	return received > 0 ? EXIT_OK : EXIT_COMMAND_FAILED;
}

/* One line of progress: a bar on a terminal (redrawn in place), plain lines otherwise. */
static void migrate_progress(const char *body, bool tty, char *last, size_t last_size)
{
	char status[32], line[256];

	json_string(body, "status", status, sizeof(status));
	double percent = json_double(body, "round_percent", 0);
	int round = (int)json_double(body, "round", 0);
	if (strcmp(status, "active") == 0 || strcmp(status, "switchover") == 0) {
		char bar[21];
		int filled = (int)(percent / 5);
		for (int i = 0; i < 20; i++)
			bar[i] = i < filled ? '#' : '-';
		bar[20] = '\0';
		snprintf(line, sizeof(line),
		         "%-10s round %d [%s] %5.1f%%  %8.1f Mbit/s  dirty %6.0f pages/s  "
		         "expected downtime %.3f ms  throttle %.0f%%",
		         status, round, bar, percent, json_double(body, "mbps", 0),
		         json_double(body, "dirty_pages_rate", 0),
		         json_double(body, "expected_downtime_ms", 0),
		         json_double(body, "throttle_percent", 0));
	} else {
		snprintf(line, sizeof(line), "%-10s", status);
	}
	if (tty) {
		printf("\r%s\033[K", line);
	} else {
		/* Without a terminal: a line when the status or the round changes. */
		char key[64];
		snprintf(key, sizeof(key), "%s %d", status, round);
		if (strcmp(key, last) == 0)
			return;
		snprintf(last, last_size, "%s", key);
		printf("%s\n", line);
	}
	fflush(stdout);
}

/* `migrate start ... --wait` and `migrate check ...`: the daemon runs the session; we follow it
 * with a progress bar and end with its report. Exits 0 if it completed. */
static int migrate_follow(struct client *conn, const char *line, bool json)
{
	char *body = NULL, status_line[64], status[32], last[64] = "";
	int ret = follow_start(conn, line, &body);

	if (ret != EXIT_OK)
		return ret;
	unsigned int id = (unsigned int)json_double(body, "id", 0);
	free(body);
	snprintf(status_line, sizeof(status_line), "migrate status %u", id);
	bool tty = !json && isatty(STDOUT_FILENO);
	for (;;) {
		ret = conn_call(conn, status_line, &body);
		if (ret != EXIT_OK) {
			free(body);
			return ret;
		}
		json_string(body, "status", status, sizeof(status));
		bool over = strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0 ||
		            strcmp(status, "cancelled") == 0;
		if (!json)
			migrate_progress(body, tty, last, sizeof(last));
		if (over)
			break;
		free(body);
		usleep(100000);
	}
	if (tty)
		printf("\n");
	if (json) {
		fputs(body, stdout);
	} else {
		free(body);
		body = NULL;
		ret = conn_call(conn, "output text", &body);
		free(body);
		body = NULL;
		ret = run_command(conn, status_line);
		if (ret != EXIT_OK)
			return ret;
	}
	free(body);
	return strcmp(status, "completed") == 0 ? EXIT_OK : EXIT_COMMAND_FAILED;
}

static int interactive(struct client *conn)
{
	int last = EXIT_OK;
	bool tty = isatty(STDIN_FILENO);

	for (;;) {
		char *line;
#ifdef HAVE_LIBEDIT
		if (tty) {
			line = readline("ferry> ");
			if (line != NULL && line[0] != '\0')
				add_history(line);
		} else
#endif
		{
			size_t size = 0;
			line = NULL;
			if (tty) {
				fputs("ferry> ", stdout);
				fflush(stdout);
			}
			ssize_t len = getline(&line, &size, stdin);
			if (len < 0) {
				free(line);
				line = NULL;
			} else if (len > 0 && line[len - 1] == '\n') {
				line[len - 1] = '\0';
			}
		}
		if (line == NULL)
			break;
		if (strcmp(line, "quit") == 0 || strcmp(line, "exit") == 0) {
			free(line);
			break;
		}
		if (line[0] != '\0')
			last = run_command(conn, line);
		free(line);
		if (last == EXIT_UNREACHABLE)
			break;
	}
	if (tty)
		putchar('\n');
	return last;
}

/* Rebuilds one command line from argv, quoting each word that would not arrive as one word
 * ("double quotes" with \" and \\ escaped, as the daemon's tokenizer reads them). */
static int join_words(char *line, size_t size, int nb_words, char **words)
{
	size_t len = 0;

	for (int i = 0; i < nb_words; i++) {
		const char *w = words[i];
		bool quote = w[0] == '\0' || strpbrk(w, " \t'\"#\\") != NULL;
		if (len + 4 > size)
			return -1;
		if (i > 0)
			line[len++] = ' ';
		if (quote)
			line[len++] = '"';
		for (; *w != '\0'; w++) {
			if (len + 4 > size)
				return -1;
			if (quote && (*w == '"' || *w == '\\'))
				line[len++] = '\\';
			line[len++] = *w;
		}
		if (quote)
			line[len++] = '"';
	}
	line[len] = '\0';
	return 0;
}

/* migrate report <id> [--svg <file>]: the migration's status, and its timeline as a picture. */
static int migrate_report(struct client *conn, int argc, char **argv, bool json)
{
	const char *svg = NULL;
	char line[64], *body = NULL;

	if (argc == 5 && strcmp(argv[3], "--svg") == 0)
		svg = argv[4];
	else if (argc != 3) {
		fprintf(stderr, "usage: ferryctl migrate report <id> [--svg <file>]\n");
		return EXIT_COMMAND_FAILED;
	}
	snprintf(line, sizeof(line), "migrate status %.20s", argv[2]);
	if (svg == NULL)
		return run_command(conn, line);
	int ret = follow_start(conn, line, &body);
	if (ret != EXIT_OK)
		return ret;
	FILE *out = fopen(svg, "w");
	if (out == NULL) {
		fprintf(stderr, "ferryctl: cannot write %s: %s\n", svg, strerror(errno));
		free(body);
		return EXIT_COMMAND_FAILED;
	}
	int drawn = timeline_svg(body, out);
	if (fclose(out) != 0)
		drawn = -1;
	if (drawn < 0)
		fprintf(stderr, "ferryctl: migration %s has no round to draw (a source's, begun)\n",
		        argv[2]);
	else if (json)
		fputs(body, stdout);
	else
		printf("timeline of migration %s written to %s\n", argv[2], svg);
	free(body);
	return drawn < 0 ? EXIT_COMMAND_FAILED : EXIT_OK;
}

/* ferry-center's tasks: runs the command (or `task <id>`), then asks after the task it made
 * until it ends, and shows it; 0 if it succeeded. */
static int task_follow(struct client *conn, const char *line, bool json)
{
	char *body = NULL, state[16] = "";
	uint64_t id = 0;
	int ret = follow_start(conn, line, &body);

	if (ret != EXIT_OK)
		return ret;
	if (!json_u64(body, "task", &id) && !json_u64(body, "id", &id)) {
		fputs(body, stdout);
		free(body);
		return EXIT_OK; /* no task: the answer is all there is */
	}
	char ask[64];
	snprintf(ask, sizeof(ask), "task %" PRIu64, id);
	for (;;) {
		free(body);
		if ((ret = conn_call(conn, ask, &body)) != EXIT_OK)
			break;
		json_string(body, "state", state, sizeof(state));
		if (strcmp(state, "success") == 0 || strcmp(state, "error") == 0)
			break;
		struct timespec pause = {.tv_nsec = 100 * 1000 * 1000};
		nanosleep(&pause, NULL);
	}
	if (ret == EXIT_OK && !json) {
		free(body);
		conn_call(conn, "output text", &body);
		free(body);
		ret = conn_call(conn, ask, &body);
	}
	if (body != NULL)
		fputs(body, ret == EXIT_OK ? stdout : stderr);
	free(body);
	return ret != EXIT_OK ? ret : strcmp(state, "success") == 0 ? EXIT_OK : EXIT_COMMAND_FAILED;
}

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: ferryctl [-s SOCKET | -H HOST:PORT --cert F --key F --ca F] [-j] "
	        "[COMMAND...]\n"
	        "\n"
	        "  -s, --socket PATH  ferryd's CLI socket (default " DEFAULT_SOCKET ")\n"
	        "  -H, --host H:P     ferryd's management port (TLS) instead, with this client's\n"
	        "                     --cert and --key and the --ca of ferryd's certificate\n"
	        "                     (or FERRYCTL_CERT, FERRYCTL_KEY, FERRYCTL_CA)\n"
	        "  -j, --json         answers as JSON\n"
	        "  -w, --wait         ferry-center: wait for the task the command makes (or\n"
	        "                     'task <id>') to end; exit 0 if it succeeded\n"
	        "  -h, --help         this help\n"
	        "\n"
	        "With a command, runs it and exits: 0 on success, 1 if ferryd reported an\n"
	        "error (on stderr), 2 if ferryd could not be reached. Without one, reads\n"
	        "commands interactively; 'help' lists them.\n"
	        "\n"
	        "'migrate check ...' and 'migrate start ... --wait' follow the migration with\n"
	        "a progress bar and end with its report; they exit 0 if it completed.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"socket", required_argument, NULL, 's'},
	        {"json", no_argument, NULL, 'j'},
	        {"host", required_argument, NULL, 'H'},
	        {"cert", required_argument, NULL, 'e'},
	        {"key", required_argument, NULL, 'k'},
	        {"ca", required_argument, NULL, 'a'},
	        {"help", no_argument, NULL, 'h'},
	        {"wait", no_argument, NULL, 'w'},
	        {NULL, 0, NULL, 0},
	};
	const char *path = DEFAULT_SOCKET;
	struct client_tls tls = {
	        .cert = getenv("FERRYCTL_CERT"),
	        .key = getenv("FERRYCTL_KEY"),
	        .ca = getenv("FERRYCTL_CA"),
	};
	bool json = false, wait_task = false;
	int c;

	/* '+' stops at the first command word, so "ferryctl log level ..." is not an option. */
	while ((c = getopt_long(argc, argv, "+s:jwH:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'w':
			wait_task = true;
			break;
		case 'H':
			tls.address = optarg;
			break;
		case 'e':
			tls.cert = optarg;
			break;
		case 'k':
			tls.key = optarg;
			break;
		case 'a':
			tls.ca = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_UNREACHABLE;
		}
	}

	struct client *conn = NULL;
	char why[256];
	if ((tls.address != NULL ? client_open_tls(&conn, &tls, why, sizeof(why))
	                         : client_open_unix(&conn, path, why, sizeof(why))) < 0) {
		fprintf(stderr, "ferryctl: %s\n", why);
		return EXIT_UNREACHABLE;
	}
	if (json) {
		char *body;
		int ret = conn_call(conn, "output json", &body);
		free(body);
		if (ret != EXIT_OK)
			return ret;
	}

	int ret;
	if (optind < argc) {
		char line[LINE_MAX_BYTES];
		if (join_words(line, sizeof(line), argc - optind, &argv[optind]) < 0) {
			fprintf(stderr, "ferryctl: command too long\n");
			client_close(conn);
			return EXIT_COMMAND_FAILED;
		}
		bool migrate = strcmp(argv[optind], "migrate") == 0 && argc - optind >= 2;
		if (migrate && strcmp(argv[optind + 1], "report") == 0) {
			ret = migrate_report(conn, argc - optind, &argv[optind], json);
			client_close(conn);
			return ret;
		}
		bool wait = migrate && strcmp(argv[argc - 1], "--wait") == 0;
		if (wait && join_words(line, sizeof(line), argc - optind - 1, &argv[optind]) < 0)
			wait = false;
		if (wait_task)
			ret = task_follow(conn, line, json);
		else if (strcmp(argv[optind], "vmkping") == 0 && argc - optind >= 2 &&
		         strcmp(argv[optind + 1], "status") != 0)
			ret = vmkping_follow(conn, line, json);
		else if (migrate && (wait || strcmp(argv[optind + 1], "check") == 0))
			ret = migrate_follow(conn, line, json);
		else
			ret = run_command(conn, line);
	} else {
		ret = interactive(conn);
	}
	client_close(conn);
	return ret;
}
