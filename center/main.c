/* ferry-center: the cluster's manager, a daemon of its own with its inventory and its CLI. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>

#include "center/center.h"
#include "center/commands.h"
#include "cli/cli.h"
#include "cli/ctlsock.h"

#define CENTER_DEFAULT_SOCKET    "/run/ferry/ferry-center.sock"
#define CENTER_DEFAULT_INVENTORY "/var/lib/ferry/center.db"

static volatile sig_atomic_t stopping;

static void on_signal(int signo)
{
	(void)signo;
	stopping = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: ferry-center [options]\n"
	        "  -s, --socket <path>      its CLI socket (default " CENTER_DEFAULT_SOCKET ")\n"
	        "  -i, --inventory <where>  an SQLite file (default " CENTER_DEFAULT_INVENTORY ")\n"
	        "                           or a PostgreSQL connection string\n"
	        "      --cert, --key, --ca  its client certificate, key and the hosts' CA, for\n"
	        "                           hosts added at host:port (their management port)\n"
	        "      --manage <addr:port> also serve its CLI there over TLS (same certificate,\n"
	        "                           clients need one from the CA)\n"
	        "      --concurrent <n>     vMotions at once in an evacuation (default 2)\n"
	        "      --refresh-ms <ms>    how often every host is asked (default 2000)\n"
	        "      --timeout-ms <ms>    one call to a host (default 10000)\n"
	        "      --balance-spread <%%> balance until the spread is under it (default 20)\n"
	        "      --vmotion-options <text>  added to each migration (as its pre-flight\n"
	        "                           limits: \"min-bandwidth 100M rtt-limit 50\")\n"
	        "      --vmotion-key <file> the cluster's vMotion key (default: a random one,\n"
	        "                           made at start); it provisions it to every host\n"
	        "  -V, --version, -h, --help\n");
}

static int number(const char *name, const char *text, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(text, &end, 10);
	if (*text == '\0' || *end != '\0' || errno != 0 || *out == 0 || *out > max) {
		fprintf(stderr, "ferry-center: --%s: '%s' is not a number from 1 to %lu\n", name,
		        text, max);
		return -1;
	}
	return 0;
}

struct options {
	const char *socket;
	struct center_config center;
	struct ctlsock_tls_config manage;
};

static int parse(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
	        {"socket", required_argument, NULL, 's'},
	        {"inventory", required_argument, NULL, 'i'},
	        {"cert", required_argument, NULL, 'e'},
	        {"key", required_argument, NULL, 'k'},
	        {"ca", required_argument, NULL, 'a'},
	        {"manage", required_argument, NULL, 'm'},
	        {"concurrent", required_argument, NULL, 'n'},
	        {"refresh-ms", required_argument, NULL, 'r'},
	        {"timeout-ms", required_argument, NULL, 't'},
	        {"balance-spread", required_argument, NULL, 'b'},
	        {"vmotion-options", required_argument, NULL, 'o'},
	        {"vmotion-key", required_argument, NULL, 'K'},
	        {"version", no_argument, NULL, 'V'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	unsigned long value;
	int c;

	while ((c = getopt_long(argc, argv, "s:i:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->socket = optarg;
			break;
		case 'i':
			o->center.inventory = optarg;
			break;
		case 'e':
			o->center.cert = o->manage.cert = optarg;
			break;
		case 'k':
			o->center.key = o->manage.key = optarg;
			break;
		case 'a':
			o->center.ca = o->manage.ca = optarg;
			break;
		case 'm':
			o->manage.address = optarg;
			break;
		case 'n':
			if (number("concurrent", optarg, 16, &value) < 0)
				return -1;
			o->center.concurrent = (unsigned int)value;
			break;
		case 'r':
			if (number("refresh-ms", optarg, 3600000, &value) < 0)
				return -1;
			o->center.refresh_ms = value;
			break;
		case 't':
			if (number("timeout-ms", optarg, 600000, &value) < 0)
				return -1;
			o->center.timeout_ms = value;
			break;
		case 'b':
			if (number("balance-spread", optarg, 100, &value) < 0)
				return -1;
			o->center.balance_spread = (unsigned int)value;
			break;
		case 'o':
			o->center.vmotion_options = optarg;
			break;
		case 'K':
			o->center.vmotion_key = optarg;
			break;
		case 'V':
			printf("ferry-center %s\n", FERRY_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -1;
	}
	if ((o->center.cert != NULL || o->center.key != NULL || o->center.ca != NULL) &&
	    (o->center.cert == NULL || o->center.key == NULL || o->center.ca == NULL)) {
		fprintf(stderr, "ferry-center: --cert, --key and --ca go together\n");
		return -1;
	}
	if (o->manage.address != NULL && o->center.cert == NULL) {
		fprintf(stderr, "ferry-center: --manage needs --cert, --key and --ca\n");
		return -1;
	}
	return 0;
}

/* The CLI's control thread queued a command: wake the main thread. */
static void wake(void *arg)
{
	uint64_t one = 1;

	if (write(*(int *)arg, &one, sizeof(one)) < 0) {
		/* the counter is full: the main thread is awake anyway */
	}
}

int main(int argc, char **argv)
{
	struct options o = {.socket = CENTER_DEFAULT_SOCKET,
	                    .center = {.inventory = CENTER_DEFAULT_INVENTORY}};
	static struct cli_table cli;
	struct center *center = NULL;
	struct ctlsock *ctl = NULL;
	char why[512];
	int status = EXIT_FAILURE;

	if (parse(argc, argv, &o) < 0)
		return 2;
	/* The CLI socket's rings live in DPDK memory: a small EAL of its own, nothing shared, no
	 * device, no hugepage. */
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "--file-prefix=ferry-center-%d", (int)getpid());
	char *eal_argv[] = {
	        argv[0], "--no-huge",      "--no-pci", "--no-shconf",      "-m",
	        "64",    "--no-telemetry", prefix,     "--lcores=0@(0-1)", "--log-level=*:warning"};
	if (rte_eal_init((int)(sizeof(eal_argv) / sizeof(eal_argv[0])), eal_argv) < 0) {
		fprintf(stderr, "ferry-center: cannot initialise DPDK EAL: %s\n",
		        rte_strerror(rte_errno));
		return 1;
	}
	int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	int ret = center_start(&center, &o.center, why, sizeof(why));
	if (ret < 0) {
		fprintf(stderr, "ferry-center: %s\n", why);
		goto out;
	}
	cli_table_init(&cli);
	if ((ret = center_commands_register(&cli, center)) < 0 ||
	    (ret = ctlsock_open(&ctl, o.socket, CTLSOCK_DEFAULT_MAX_CLIENTS, &cli)) < 0) {
		fprintf(stderr, "ferry-center: cannot open %s: %s\n", o.socket, strerror(-ret));
		goto out;
	}
	if (o.manage.address != NULL && (ret = ctlsock_listen_tls(ctl, &o.manage)) < 0)
		goto out;
	ctlsock_set_worker_wake(ctl, wake, &wake_fd);
	if ((ret = ctlsock_start(ctl)) < 0)
		goto out;
	printf("ferry-center %s: inventory %s, CLI on %s\n", FERRY_VERSION,
	       store_kind_name(store_kind(center_store(center))), o.socket);
	fflush(stdout);
	/* Commands run here, one at a time, as they come: nothing to do in between. */
	while (!stopping) {
		struct pollfd pfd = {.fd = wake_fd, .events = POLLIN};
		uint64_t count;
		if (poll(&pfd, 1, 1000) > 0 && read(wake_fd, &count, sizeof(count)) < 0) {
			/* nothing to drain */
		}
		ctlsock_worker_poll(ctl);
	}
	status = EXIT_SUCCESS;
out:
	ctlsock_close(ctl);
	center_stop(center);
	close(wake_fd);
	rte_eal_cleanup();
	return status;
}
