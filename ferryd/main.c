/* ferryd: the per-host daemon: EAL, ports, the worker loop and the CLI socket. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_log.h>

#ifdef FERRY_HAVE_SD_NOTIFY
#include <systemd/sd-daemon.h>
#endif

#include "cli/ctlsock.h"
#include "cli/cli.h"
#include "commands.h"
#include "host/host.h"
#include "telemetry.h"
#include "vswitch/vswitch.h"

/* The one daemon of this process, for the signal handler only. */
static struct loop *signal_loop;

static void on_signal(int signo)
{
	(void)signo;
	if (signal_loop != NULL)
		loop_stop(signal_loop);
}

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: ferryd [options] -- [EAL arguments]\n"
	        "\n"
	        "  -s, --socket PATH        CLI socket (default %s)\n"
	        "  -c, --config FILE        run the commands in FILE at start-up\n"
	        "      --manage ADDR:PORT   also serve the CLI over TCP with TLS (with --cert,\n"
	        "                           --key and --ca: clients need a certificate from the "
	        "CA)\n"
	        "      --cert FILE --key FILE --ca FILE   its certificate, key and client CA "
	        "(PEM)\n"
	        "      --max-sleep-us N     longest idle sleep of the worker (default 1000)\n"
	        "      --max-clients N      CLI clients served at once (default %u)\n"
	        "      --mbuf-size BYTES    packet buffer data room (default %u)\n"
	        "      --mbufs N            at least N buffers in each pool\n"
	        "  -V, --version            print the version and exit\n"
	        "  -h, --help               this help\n"
	        "\n"
	        "EAL arguments, for example:\n"
	        "  bare metal:  -l 2-3 -a 0000:3b:00.0 --socket-mem 1024\n"
	        "  virtual:     --no-huge -m 256 --no-pci --no-shconf "
	        "--vdev net_af_packet0,iface=veth0\n",
	        CTLSOCK_DEFAULT_PATH, CTLSOCK_DEFAULT_MAX_CLIENTS, PKTPOOL_DEFAULT_DATA_ROOM);
}

struct options {
	const char *socket_path;
	const char *config_file;
	unsigned long max_sleep_us;
	unsigned long max_clients;
	unsigned long mbuf_size;
	unsigned long mbufs;
	struct ctlsock_tls_config manage; /* address NULL: no management listener */
};

static int parse_number(const char *name, const char *text, unsigned long max, unsigned long *value)
{
	char *end;

	errno = 0;
	*value = strtoul(text, &end, 10);
	if (*text == '\0' || *end != '\0' || errno != 0 || *value > max) {
		fprintf(stderr, "ferryd: --%s: '%s' is not a number from 0 to %lu\n", name, text,
		        max);
		return -EINVAL;
	}
	return 0;
}

/* Parses our options, which end at "--"; returns the index of the first EAL argument. */
static int parse_options(int argc, char **argv, struct options *opts)
{
	static const struct option longopts[] = {
	        {"socket", required_argument, NULL, 's'},
	        {"config", required_argument, NULL, 'c'},
	        {"max-sleep-us", required_argument, NULL, 'S'},
	        {"max-clients", required_argument, NULL, 'C'},
	        {"mbuf-size", required_argument, NULL, 'M'},
	        {"mbufs", required_argument, NULL, 'N'},
	        {"manage", required_argument, NULL, 'm'},
	        {"cert", required_argument, NULL, 'e'},
	        {"key", required_argument, NULL, 'k'},
	        {"ca", required_argument, NULL, 'a'},
	        {"version", no_argument, NULL, 'V'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "s:c:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			opts->socket_path = optarg;
			break;
		case 'c':
			opts->config_file = optarg;
			break;
		case 'S':
			if (parse_number("max-sleep-us", optarg, 100000, &opts->max_sleep_us) < 0)
				return -1;
			break;
		case 'C':
			if (parse_number("max-clients", optarg, 65536, &opts->max_clients) < 0)
				return -1;
			break;
		case 'M':
			if (parse_number("mbuf-size", optarg, 65535, &opts->mbuf_size) < 0)
				return -1;
			break;
		case 'N':
			if (parse_number("mbufs", optarg, 16u << 20, &opts->mbufs) < 0)
				return -1;
			break;
		case 'm':
			opts->manage.address = optarg;
			break;
		case 'e':
			opts->manage.cert = optarg;
			break;
		case 'k':
			opts->manage.key = optarg;
			break;
		case 'a':
			opts->manage.ca = optarg;
			break;
		case 'V':
			printf("ferryd %s\n", FERRY_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (opts->manage.address != NULL &&
	    (opts->manage.cert == NULL || opts->manage.key == NULL || opts->manage.ca == NULL)) {
		fprintf(stderr, "ferryd: --manage needs --cert, --key and --ca\n");
		return -1;
	}
	return optind;
}

/* The CLI's control thread queued a command: the main loop may be asleep on its events. */
static void wake_main_loop(void *loop)
{
	loop_wake(loop);
}

int main(int argc, char **argv)
{
	struct options opts = {.socket_path = CTLSOCK_DEFAULT_PATH};
	struct host_config config = {0};
	struct ctlsock *ctl = NULL;
	static struct host host;
	static struct cli_table cli;
	int status = EXIT_FAILURE;

	int first_eal = parse_options(argc, argv, &opts);
	if (first_eal < 0)
		return 2;
	/* EAL wants a program name in argv[0]: reuse the slot before its first argument. */
	char **eal_argv = &argv[first_eal - 1];
	int eal_argc = argc - first_eal + 1;
	eal_argv[0] = argv[0];
	if (rte_eal_init(eal_argc, eal_argv) < 0) {
		fprintf(stderr, "ferryd: cannot initialise DPDK EAL: %s\n",
		        rte_strerror(rte_errno));
		return 1;
	}
	/* Idle sleeps are short; the default 50 us timer slack would stretch them. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);

	config.max_sleep_ns = opts.max_sleep_us * 1000;
	config.mbuf_data_room = (uint16_t)opts.mbuf_size;
	config.min_mbufs = (uint32_t)opts.mbufs;
	/* Every lcore of -l forwards: the main one (which also runs the rest) and each other. */
	config.nb_workers = rte_lcore_count();
	if (config.nb_workers > VSWITCH_MAX_WORKERS) {
		fprintf(stderr, "ferryd: at most %u lcores (-l), one per forwarding worker\n",
		        VSWITCH_MAX_WORKERS);
		goto out_eal;
	}
	int ret = host_init(&host, &config);
	if (ret < 0) {
		fprintf(stderr, "ferryd: cannot initialise: %s\n", strerror(-ret));
		goto out_eal;
	}
	ret = vswitch_workers_launch(&host.vswitches);
	if (ret < 0) {
		fprintf(stderr, "ferryd: cannot launch the forwarding workers: %s\n",
		        strerror(-ret));
		goto out_host;
	}
	ret = ferryd_commands_init(&cli, &host);
	if (ret < 0) {
		fprintf(stderr, "ferryd: cannot register the commands: %s\n", strerror(-ret));
		goto out_host;
	}

	signal_loop = &host.loop;
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (opts.config_file != NULL && cli_run_file(&cli, opts.config_file) < 0) {
		fprintf(stderr, "ferryd: start-up file %s failed (see the log above)\n",
		        opts.config_file);
		goto out_host;
	}
	ret = ctlsock_open(&ctl, opts.socket_path, (unsigned int)opts.max_clients, &cli);
	if (ret < 0) {
		fprintf(stderr, "ferryd: cannot open CLI socket %s: %s\n", opts.socket_path,
		        strerror(-ret));
		goto out_host;
	}
	if (opts.manage.address != NULL && (ret = ctlsock_listen_tls(ctl, &opts.manage)) < 0) {
		fprintf(stderr, "ferryd: cannot serve management on %s: %s\n", opts.manage.address,
		        strerror(-ret));
		goto out_ctl;
	}
	ctlsock_set_worker_wake(ctl, wake_main_loop, &host.loop);
	ret = loop_poller_add(&host.loop, "cli", LOOP_POLLER_CONTROL, ctlsock_worker_poll, ctl);
	if (ret == 0)
		ret = ctlsock_start(ctl);
	if (ret < 0)
		goto out_ctl;
	/* Without telemetry (--no-telemetry) or a runtime folder, ferryd runs without them. */
	if (telemetry_endpoints_register(opts.socket_path) < 0)
		rte_log(RTE_LOG_INFO, RTE_LOGTYPE_USER1, "ferryd: no telemetry endpoints\n");

	rte_log(RTE_LOG_NOTICE, RTE_LOGTYPE_USER1,
	        "ferryd %s ready on %s, main worker on lcore %u, %u forwarding workers\n",
	        FERRY_VERSION, opts.socket_path, rte_lcore_id(), host.vswitches.nb_workers);
#ifdef FERRY_HAVE_SD_NOTIFY
	/* Under systemd (Type=notify) the unit is up once the CLI answers; elsewhere a no-op. */
	sd_notifyf(0, "READY=1\nSTATUS=ready on %s, %u forwarding workers", opts.socket_path,
	           host.vswitches.nb_workers);
#endif
	loop_run(&host.loop);
	rte_log(RTE_LOG_NOTICE, RTE_LOGTYPE_USER1, "ferryd: shutting down\n");
#ifdef FERRY_HAVE_SD_NOTIFY
	sd_notify(0, "STOPPING=1");
#endif
	status = EXIT_SUCCESS;
out_ctl:
	telemetry_endpoints_unregister();
	ctlsock_close(ctl);
out_host:
	signal_loop = NULL;
	host_fini(&host);
out_eal:
	rte_eal_cleanup();
	return status;
}
