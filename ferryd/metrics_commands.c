/* ferryd's show metrics: its counters in the Prometheus text format (version 0.0.4), for a
 * scraper or node exporter's textfile collector. */
#include "metrics_commands.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_lcore.h>

#include "cli/cli.h"
#include "dataplane/capture.h"
#include "dataplane/loop.h"
#include "host/host.h"

/* A metric family's HELP and TYPE lines. */
static void family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP ferry_%s %s\n# TYPE ferry_%s %s\n", name, help, name, type);
}

/* A label value with \, " and newline escaped, as the format asks. */
static void label_value(FILE *out, const char *value)
{
	for (; *value != '\0'; value++) {
		if (*value == '\\' || *value == '"')
			fputc('\\', out);
		if (*value == '\n')
			fputs("\\n", out);
		else
			fputc(*value, out);
	}
}

static void sample(FILE *out, const char *name, const char *label, const char *value,
                   uint64_t count)
{
	fprintf(out, "ferry_%s", name);
	if (label != NULL) {
		fprintf(out, "{%s=\"", label);
		label_value(out, value);
		fputs("\"}", out);
	}
	fprintf(out, " %" PRIu64 "\n", count);
}

static void port_metrics(FILE *out, struct host *host)
{
	static const struct {
		const char *name, *help;
		size_t offset;
	} counters[] = {
	        {"port_rx_packets_total", "Frames a port received.",
	         offsetof(struct port_counters, rx_packets)},
	        {"port_rx_bytes_total", "Bytes a port received.",
	         offsetof(struct port_counters, rx_bytes)},
	        {"port_tx_packets_total", "Frames a port sent.",
	         offsetof(struct port_counters, tx_packets)},
	        {"port_tx_bytes_total", "Bytes a port sent.",
	         offsetof(struct port_counters, tx_bytes)},
	        {"port_rx_forwarded_total", "Received frames that left by at least one port.",
	         offsetof(struct port_counters, rx_forwarded)},
	};
	struct port_counters sums[PORT_MAX];

	for (unsigned int p = 0; p < host->ports.nb_ports; p++)
		port_counters_sum(host->ports.ports[p], &sums[p]);
	for (size_t c = 0; c < RTE_DIM(counters); c++) {
		family(out, counters[c].name, "counter", counters[c].help);
		for (unsigned int p = 0; p < host->ports.nb_ports; p++)
			sample(out, counters[c].name, "port", host->ports.ports[p]->name,
			       *(const uint64_t *)((const char *)&sums[p] + counters[c].offset));
	}
	family(out, "port_drops_total", "counter",
	       "Frames a port or its switch dropped, by reason.");
	for (unsigned int p = 0; p < host->ports.nb_ports; p++) {
		struct vswitch_drop_counter drops[VSWITCH_PORT_DROP_COUNTERS];
		vswitch_port_drop_counters(host->ports.ports[p], drops);
		for (unsigned int r = 0; r < VSWITCH_PORT_DROP_COUNTERS; r++) {
			fputs("ferry_port_drops_total{port=\"", out);
			label_value(out, host->ports.ports[p]->name);
			fprintf(out, "\",reason=\"%s\",side=\"%s\"} %" PRIu64 "\n", drops[r].name,
			        drops[r].side == PORT_DROP_SIDE_RX ? "rx" : "tx", drops[r].count);
		}
	}
}

static void fdb_metrics(FILE *out, struct host *host)
{
	static const struct {
		const char *name, *type, *help;
	} families[] = {
	        {"fdb_entries", "gauge", "MAC table entries."},
	        {"fdb_max_entries", "gauge", "MAC table capacity."},
	        {"fdb_learned_total", "counter", "MACs learned."},
	        {"fdb_expired_total", "counter", "Entries aged out."},
	        {"fdb_evicted_total", "counter", "Entries evicted from a full table."},
	        {"fdb_moved_total", "counter", "MACs seen moving to another port."},
	        {"fdb_full_drops_total", "counter", "MACs not learned: the table was full."},
	};

	for (size_t f = 0; f < RTE_DIM(families); f++) {
		family(out, families[f].name, families[f].type, families[f].help);
		for (unsigned int v = 0; v < host->vswitches.nb_vswitches; v++) {
			const struct vswitch *vswitch = host->vswitches.vswitches[v];
			const struct fdb *fdb = &vswitch->fdb;
			const uint64_t values[] = {
			        fdb->count,
			        fdb->limit,
			        fdb->stats.learned,
			        fdb->stats.expired,
			        fdb->stats.evicted,
			        fdb->stats.moved,
			        fdb->stats.full_drops,
			};
			_Static_assert(RTE_DIM(values) == RTE_DIM(families), "one value a family");
			sample(out, families[f].name, "vswitch", vswitch->name, values[f]);
		}
	}
}

static void worker_metrics(FILE *out, struct host *host)
{
	const struct vswitch_table *vswitches = &host->vswitches;
	static const struct {
		const char *name, *help;
		size_t offset;
	} counters[] = {
	        {"worker_packets_total", "Frames a worker moved.",
	         offsetof(struct loop_stats, packets)},
	        {"worker_busy_cycles_total",
	         "TSC cycles of a worker's iterations that moved frames.",
	         offsetof(struct loop_stats, busy_cycles)},
	        {"worker_idle_cycles_total", "TSC cycles a worker polled and found nothing.",
	         offsetof(struct loop_stats, idle_cycles)},
	        {"worker_sleep_cycles_total", "TSC cycles a worker slept.",
	         offsetof(struct loop_stats, sleep_cycles)},
	};
	char worker[16];

	for (size_t c = 0; c < RTE_DIM(counters); c++) {
		family(out, counters[c].name, "counter", counters[c].help);
		for (unsigned int w = 0; w < vswitches->nb_workers; w++) {
			/* Worker 0's loop is the host's: it also runs VMs, migrations and the CLI. */
			const struct loop *loop =
			        w == 0 ? &host->loop : vswitches->workers[w]->loop;
			snprintf(worker, sizeof(worker), "%u", w);
			sample(out, counters[c].name, "worker", worker,
			       *(const uint64_t *)((const char *)&loop->stats +
			                           counters[c].offset));
		}
	}
	family(out, "tsc_hz", "gauge", "TSC cycles a second (the cycle counters' unit).");
	sample(out, "tsc_hz", NULL, NULL, rte_get_tsc_hz());
}

static void vm_metrics(FILE *out, struct host *host)
{
	family(out, "vms", "gauge", "VMs on this host.");
	sample(out, "vms", NULL, NULL, host->nb_vms);
	family(out, "vm_running", "gauge", "1 while a VM runs here, 0 while it is paused.");
	for (unsigned int i = 0; i < host->nb_vms; i++)
		sample(out, "vm_running", "vm", host->vms[i]->machine.name,
		       host->vms[i]->machine.state == MACHINE_RUNNING);
	family(out, "vm_dirty_pages_per_second", "gauge", "A VM's measured dirty rate.");
	for (unsigned int i = 0; i < host->nb_vms; i++)
		sample(out, "vm_dirty_pages_per_second", "vm", host->vms[i]->machine.name,
		       host->vms[i]->machine.stats.dirty_rate);
}

static void migration_metrics(FILE *out, struct host *host)
{
	uint64_t by_status[MIGRATION_LOST + 1] = {0};
	uint64_t now = loop_now_ns(&host->loop);
	struct migration_info info;

	for (uint32_t id = 1; id <= host->migrations.next_id; id++)
		if (migration_info(&host->migrations, id, now, &info) == 0)
			by_status[info.status]++;
	family(out, "migrations", "gauge", "Migrations this host took part in, by status.");
	for (unsigned int s = 0; s <= MIGRATION_LOST; s++)
		sample(out, "migrations", "status", migration_status_name(s), by_status[s]);
}

static void capture_metrics(FILE *out, struct host *host)
{
	struct capture_stats stats = {0};
	struct capture_writer_stats written = {0};

	if (host->capture != NULL) {
		capture_stats_sum(host->capture, &stats);
		capture_writer_stats(host->capture, &written);
	}
	family(out, "capture_frames_total", "counter", "Frames the last capture took.");
	sample(out, "capture_frames_total", NULL, NULL, stats.captured);
	family(out, "capture_dropped_total", "counter", "Frames the last capture lost, by reason.");
	sample(out, "capture_dropped_total", "reason", "ring_full", stats.dropped_full);
	sample(out, "capture_dropped_total", "reason", "no_buffer", stats.dropped_nomem);
	family(out, "capture_written_bytes_total", "counter", "Bytes the last capture wrote.");
	sample(out, "capture_written_bytes_total", NULL, NULL, written.bytes);
}

static int cmd_show_metrics(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	(void)args;
	if (out == NULL)
		return reply_error(reply, -ENOMEM, "out of memory");
	family(out, "uptime_seconds", "gauge", "Seconds since ferryd started.");
	sample(out, "uptime_seconds", NULL, NULL,
	       (loop_now_ns(&host->loop) - host->start_ns) / 1000000000ull);
	port_metrics(out, host);
	fdb_metrics(out, host);
	worker_metrics(out, host);
	vm_metrics(out, host);
	migration_metrics(out, host);
	capture_metrics(out, host);
	if (fclose(out) != 0 || text == NULL) {
		free(text);
		return reply_error(reply, -ENOMEM, "out of memory");
	}
	reply_document(reply, "metrics", text);
	free(text);
	return 0;
}

static const struct cli_command metrics_commands[] = {
        {"show metrics", "every counter in the Prometheus text format", cmd_show_metrics},
};

int metrics_commands_register(struct cli_table *cli, struct host *host)
{
	return cli_table_register(cli, metrics_commands, RTE_DIM(metrics_commands), host);
}
