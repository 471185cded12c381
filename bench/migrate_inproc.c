/* One live migration between two ferryd hosts in one process, wired by the ring PMD, with its
 * figures (QEMU query-migrate's), beside a memcpy of the same memory measured in the same run.
 * tools/bench/migrate-inproc.sh runs it for each case. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ring.h>

#include "cli/cli.h"
#include "ferryd/commands.h"
#include "host/host.h"

struct options {
	unsigned int memory_mb, mtu, rate, fill, warmup_ms;
	const char *pattern, *bandwidth, *extra, *encryption;
};

/* One host and the commands that drive it. */
struct bench_host {
	struct host host;
	struct cli_table cli;
};

#define run(d, ...)                                                                                \
	({                                                                                         \
		char *text_;                                                                       \
		int ret_ = cli_runf(&(d)->cli, &text_, __VA_ARGS__);                               \
		if (ret_ < 0)                                                                      \
			fprintf(stderr, "%s\n", text_ != NULL ? text_ : strerror(-ret_));          \
		free(text_);                                                                       \
		ret_;                                                                              \
	})

static int host_setup(struct bench_host *d, const char *ip, struct rte_ring *rx,
                      struct rte_ring *tx, const struct options *o, const char *key)
{
	struct host_config config = {.mbuf_data_room = 9216 + 128, .min_mbufs = 8192};

	if (host_init(&d->host, &config) < 0 || ferryd_commands_init(&d->cli, &d->host) < 0 ||
	    host_uplink_add_rings(&d->host, "link0", rx, tx, 9000) < 0 ||
	    run(d, "portgroup add \"VM Network\" vlan 10") < 0 ||
	    run(d, "portgroup add vMotion vlan 20") < 0 ||
	    run(d, "vmk add vmk1 portgroup vMotion ip %s/24 mtu %u", ip, o->mtu) < 0 ||
	    run(d, "migrate listen vmk1 key %s", key) < 0)
		return -1;
	return 0;
}

/* GB/s of a memcpy of the VM's memory size, the reference the migration is read against. */
static double memcpy_gbps(size_t bytes)
{
	uint8_t *src =
	        mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *dst =
	        mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (src == MAP_FAILED || dst == MAP_FAILED)
		return 0;
	memset(src, 0x5a, bytes);
	memset(dst, 0, bytes);
	uint64_t start = loop_tsc_now_ns();
	memcpy(dst, src, bytes);
	uint64_t ns = loop_tsc_now_ns() - start;
	munmap(src, bytes);
	munmap(dst, bytes);
	return (double)bytes * 8 / (double)ns;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: migrate_inproc [EAL args] -- [--memory MiB] [--rate pages/s|max] "
	        "[--pattern uniform|hotcold|sequential] [--fill %%] [--mtu 1500|9000] "
	        "[--bandwidth rate] [--warmup ms] [--encryption required|opportunistic|disabled] "
	        "[--extra 'migrate start options']\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {{"memory", required_argument, NULL, 'm'},
	                                      {"rate", required_argument, NULL, 'r'},
	                                      {"pattern", required_argument, NULL, 'p'},
	                                      {"fill", required_argument, NULL, 'f'},
	                                      {"mtu", required_argument, NULL, 'u'},
	                                      {"bandwidth", required_argument, NULL, 'b'},
	                                      {"warmup", required_argument, NULL, 'w'},
	                                      {"extra", required_argument, NULL, 'x'},
	                                      {"encryption", required_argument, NULL, 'e'},
	                                      {NULL, 0, NULL, 0}};
	static char rate[32] = "1000";
	int c;

	*o = (struct options){.memory_mb = 1024,
	                      .mtu = 9000,
	                      .fill = 100,
	                      .warmup_ms = 1000,
	                      .pattern = "uniform",
	                      .bandwidth = "unlimited",
	                      .extra = "",
	                      .encryption = "required"};
	o->rate = 1000;
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (c) {
		case 'm':
			o->memory_mb = (unsigned int)atoi(optarg);
			break;
		case 'r':
			snprintf(rate, sizeof(rate), "%s", optarg);
			break;
		case 'p':
			o->pattern = optarg;
			break;
		case 'f':
			o->fill = (unsigned int)atoi(optarg);
			break;
		case 'u':
			o->mtu = (unsigned int)atoi(optarg);
			break;
		case 'b':
			o->bandwidth = optarg;
			break;
		case 'w':
			o->warmup_ms = (unsigned int)atoi(optarg);
			break;
		case 'x':
			o->extra = optarg;
			break;
		case 'e':
			o->encryption = optarg;
			break;
		default:
			usage();
			return -1;
		}
	}
	o->rate = strcmp(rate, "max") == 0 ? UINT32_MAX : (unsigned int)atoi(rate);
	return 0;
}

/* Every drop the run caused, on stderr: the destination engine's, then both hosts' vmks and
 * ports (source/destination). */
static void print_drops(const struct host *a, const struct host *b)
{
	fprintf(stderr, "engine drops:");
	for (unsigned int r = 0; r < MIGRATION_DROP_MAX; r++)
		if (b->migrations.drops[r] != 0)
			fprintf(stderr, " %s=%lu", migration_drop_names[r],
			        (unsigned long)b->migrations.drops[r]);
	for (unsigned int i = 0; i < b->nb_vmks; i++)
		for (unsigned int r = 0; r < NETIF_DROP_MAX; r++)
			if (b->vmks[i]->netif.counters.drops[r] +
			    a->vmks[i]->netif.counters.drops[r])
				fprintf(stderr, " netif%u=%lu/%lu", r,
				        (unsigned long)a->vmks[i]->netif.counters.drops[r],
				        (unsigned long)b->vmks[i]->netif.counters.drops[r]);
	for (unsigned int i = 0; i < a->ports.nb_ports; i++) {
		struct vswitch_drop_counter da[VSWITCH_PORT_DROP_COUNTERS];
		struct vswitch_drop_counter db[VSWITCH_PORT_DROP_COUNTERS];
		vswitch_port_drop_counters(a->ports.ports[i], da);
		vswitch_port_drop_counters(b->ports.ports[i], db);
		for (unsigned int r = 0; r < VSWITCH_PORT_DROP_COUNTERS; r++)
			if (da[r].count + db[r].count)
				fprintf(stderr, " %s:%s=%lu/%lu", a->ports.ports[i]->name,
				        da[r].name, (unsigned long)da[r].count,
				        (unsigned long)db[r].count);
	}
	fprintf(stderr, "\n");
}

int main(int argc, char **argv)
{
	struct options o;
	static struct bench_host a, b;
	char key[] = "/tmp/ferry-bench-key-XXXXXX";

	int consumed = rte_eal_init(argc, argv);
	if (consumed < 0) {
		fprintf(stderr, "EAL init failed\n");
		return 2;
	}
	argc -= consumed;
	argv += consumed;
	if (parse_options(argc, argv, &o) < 0)
		return 2;
	int fd = mkstemp(key);
	if (fd < 0 || write(fd, "ferry in-process benchmark key\n", 31) != 31)
		return 2;
	close(fd);
	struct rte_ring *ab =
	        rte_ring_create("bench_ab", 8192, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	struct rte_ring *ba =
	        rte_ring_create("bench_ba", 8192, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (ab == NULL || ba == NULL || host_setup(&a, "50.50.50.1", ba, ab, &o, key) < 0 ||
	    host_setup(&b, "50.50.50.2", ab, ba, &o, key) < 0)
		return 2;
	char rate[32];
	if (o.rate == UINT32_MAX)
		snprintf(rate, sizeof(rate), "max");
	else
		snprintf(rate, sizeof(rate), "%u", o.rate);
	uint64_t start = loop_tsc_now_ns();
	if (run(&a,
	        "vm create vm1 mem %u mac 02:00:00:00:00:01 ip 10.0.0.10/24 portgroup \"VM "
	        "Network\" "
	        "workload %s,rate=%s,fill=%u",
	        o.memory_mb, o.pattern, rate, o.fill) < 0)
		return 2;
	if (run(&a, "vm set vm1 encryption %s", o.encryption) < 0)
		return 2;
	fprintf(stderr, "VM of %u MiB made and filled in %.0f ms\n", o.memory_mb,
	        (double)(loop_tsc_now_ns() - start) / 1e6);
	/* The VM runs a while, so its dirty rate is established. */
	uint64_t until = loop_tsc_now_ns() + (uint64_t)o.warmup_ms * 1000000;
	while (loop_tsc_now_ns() < until) {
		loop_run_once(&a.host.loop);
		loop_run_once(&b.host.loop);
	}
	if (run(&a, "migrate start vm1 to 50.50.50.2 key %s max-bandwidth %s %s", key, o.bandwidth,
	        o.extra) < 0)
		return 2;
	uint32_t id = a.host.migrations.next_id;
	struct migration_info m;
	uint64_t deadline = loop_tsc_now_ns() + 300ull * 1000000000;
	do {
		loop_run_once(&a.host.loop);
		loop_run_once(&b.host.loop);
		migration_info(&a.host.migrations, id, loop_now_ns(&a.host.loop), &m);
	} while (m.running && loop_tsc_now_ns() < deadline);
	unlink(key);
	const struct migration_stats *s = &m.stats;
	print_drops(&a.host, &b.host);
	double total_ms = (double)m.total_ns / 1e6;
	double active_s = (double)(m.total_ns - s->setup_ns) / 1e9;
	double gbps = (double)m.throughput_bps / 1e9;
	double page_gbps = (double)s->pages_normal * 4096 * 8 / active_s / 1e9;
	double reference = memcpy_gbps((size_t)o.memory_mb << 20);
	printf("memory_mib=%u pattern=%s rate=%s mtu=%u bandwidth=%s encryption=%s cipher=%s "
	       "encrypted=%s status=%s",
	       o.memory_mb, o.pattern, rate, o.mtu, o.bandwidth, o.encryption,
	       proto_cipher_name(m.cipher), m.encrypted ? "yes" : "no",
	       migration_status_name(m.status));
	if (m.reason[0] != '\0')
		printf(" reason=\"%s\"", m.reason);
	printf(" total_ms=%.1f setup_ms=%.2f downtime_ms=%.3f rounds=%u throttle=%u "
	       "pages_normal=%lu pages_zero=%lu retransmitted=%lu bytes=%lu wire_gbps=%.2f "
	       "page_gbps=%.2f memcpy_gbps=%.1f page_vs_memcpy=%.3f\n",
	       total_ms, (double)s->setup_ns / 1e6, (double)s->downtime_ns / 1e6, s->rounds,
	       s->throttle_percent, (unsigned long)s->pages_normal, (unsigned long)s->pages_zero,
	       (unsigned long)s->pages_retransmitted, (unsigned long)s->bytes_transferred, gbps,
	       page_gbps, reference, page_gbps / reference);
	int status = m.status == MIGRATION_COMPLETED ? 0 : 1;
	host_fini(&a.host);
	host_fini(&b.host);
	rte_eal_cleanup();
	return status;
}
