/* ferryd's commands: the table entries and handlers for ports, the loop, logging, version. */
#include "daemon_commands.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <rte_cycles.h>
#include <rte_log.h>
#include <rte_version.h>

#include "dataplane/impair.h"
#include "cli/cli.h"
#include "dataplane/capture.h"
#include "host/host.h"
#include "lookup.h"

static int cmd_show_version(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;

	(void)args;
	reply_str(reply, "version", "%s", FERRY_VERSION);
	reply_str(reply, "dpdk", "%s", rte_version());
	reply_u64(reply, "uptime_s", (loop_now_ns(&host->loop) - host->start_ns) / 1000000000ull);
	return 0;
}

static int cmd_show_ports(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;

	(void)args;
	reply_list_begin(reply, "ports");
	for (unsigned int i = 0; i < host->ports.nb_ports; i++) {
		const struct port *port = host->ports.ports[i];
		struct port_info info;

		port_get_info(port, &info);
		reply_object_begin(reply, NULL);
		reply_str(reply, "name", "%s", port->name);
		reply_str(reply, "driver", "%s", info.driver);
		reply_str(reply, "mac", "%s", info.mac);
		reply_str(reply, "link", "%s", info.link_up ? "up" : "down");
		reply_u64(reply, "speed_mbps", info.link_speed_mbps);
		reply_u64(reply, "mtu", port->mtu);
		const struct vswitch_port *vport = vswitch_port_find(&host->vswitches, port);
		reply_str(reply, "role", "%s", vport ? vswitch_role_name(vport->role) : "-");
		reply_str(reply, "vswitch", "%s", vport ? vport->vswitch->name : "-");
		reply_str(reply, "portgroup", "%s",
		          vport && vport->portgroup ? vport->portgroup->name : "-");
		reply_u64(reply, "ethdev", port->port_id);
		reply_i64(reply, "socket", info.socket);
		char impair[160] = "-";
		if (port->impair != NULL)
			impair_describe(&port->impair->config, impair, sizeof(impair));
		reply_str(reply, "impair", "%s", impair);
		reply_u64(reply, "rx_queues", port->nb_rx_queues);
		reply_u64(reply, "tx_queues", port->nb_tx_queues);
		reply_str(reply, "rx_interrupts", "%s", port->rx_interrupts ? "yes" : "no");
		reply_str(reply, "jumbo", "%s",
		          port->rx_scatter        ? "chains"
		          : port->tx_needs_linear ? "whole"
		                                  : "-");
		reply_u64(reply, "data_room", rte_pktmbuf_data_room_size(port->pool));
		if (vport != NULL && vport->receive_off)
			reply_str(reply, "receive", "off");
		reply_str(reply, "devargs", "%s", port->devargs);
		reply_object_end(reply);
	}
	reply_list_end(reply);
	return 0;
}

static int cmd_show_port_stats(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct port *port = lookup_port(ctx, cli_arg(args, "name"), reply);
	struct port_hw_stats hw;

	if (port == NULL)
		return -ENOENT;
	struct port_counters sum;
	const struct port_counters *c = &sum;
	port_counters_sum(port, &sum);
	struct vswitch_drop_counter counters[VSWITCH_PORT_DROP_COUNTERS];
	uint64_t drops[2] = {0, 0};
	vswitch_port_drop_counters(port, counters);
	for (unsigned int r = 0; r < VSWITCH_PORT_DROP_COUNTERS; r++)
		drops[counters[r].side] += counters[r].count;

	reply_str(reply, "port", "%s", port->name);
	reply_u64(reply, "rx_packets", c->rx_packets);
	reply_u64(reply, "rx_bytes", c->rx_bytes);
	reply_u64(reply, "tx_packets", c->tx_packets);
	reply_u64(reply, "tx_bytes", c->tx_bytes);
	reply_u64(reply, "rx_forwarded", c->rx_forwarded);
	reply_u64(reply, "rx_drops", drops[PORT_DROP_SIDE_RX]);
	reply_u64(reply, "tx_drops", drops[PORT_DROP_SIDE_TX]);
	reply_object_begin(reply, "drops_by_reason");
	for (unsigned int r = 0; r < VSWITCH_PORT_DROP_COUNTERS; r++)
		reply_u64(reply, counters[r].name, counters[r].count);
	reply_object_end(reply);
	if (port_get_hw_stats(port, &hw) == 0) {
		reply_object_begin(reply, "device");
		reply_u64(reply, "ipackets", hw.ipackets);
		reply_u64(reply, "ibytes", hw.ibytes);
		reply_u64(reply, "opackets", hw.opackets);
		reply_u64(reply, "obytes", hw.obytes);
		reply_u64(reply, "imissed", hw.imissed);
		reply_u64(reply, "ierrors", hw.ierrors);
		reply_u64(reply, "oerrors", hw.oerrors);
		reply_u64(reply, "rx_nombuf", hw.rx_nombuf);
		reply_object_end(reply);
	}
	return 0;
}

static int cmd_clear_port_stats(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct port *port = lookup_port(ctx, cli_arg(args, "name"), reply);

	if (port == NULL)
		return -ENOENT;
	port_clear_stats(port);
	return 0;
}

/* Where a new port goes: its role, vswitch and port group, checked before anything opens. */
struct port_placement {
	bool attach;
	enum vswitch_role role;
	struct vswitch *vswitch;
	struct vswitch_portgroup *portgroup;
};

static int resolve_placement(struct host *host, const struct cli_args *args,
                             struct port_placement *place, struct reply *reply)
{
	const char *role = cli_arg(args, "role");
	const char *vswitch = cli_arg(args, "vswitch");
	const char *portgroup = cli_arg(args, "portgroup");

	memset(place, 0, sizeof(*place));
	if (role == NULL) {
		if (vswitch != NULL || portgroup != NULL)
			return reply_error(reply, -EINVAL, "vswitch and portgroup need a role");
		return 0; /* opened, not switched */
	}
	place->attach = true;
	if (vswitch_role_parse(role, &place->role) < 0)
		return reply_error(reply, -EINVAL, "unknown role '%.32s' (uplink, vnic or vmk)",
		                   role);
	if (vswitch != NULL) {
		place->vswitch = lookup_vswitch(host, vswitch, reply);
		if (place->vswitch == NULL)
			return -ENOENT;
	}
	if (place->role == VSWITCH_ROLE_UPLINK) {
		if (portgroup != NULL)
			return reply_error(reply, -EINVAL,
			                   "an uplink carries every port group of its vswitch: "
			                   "give it no portgroup");
		if (place->vswitch == NULL)
			place->vswitch = vswitch_find(&host->vswitches, VSWITCH_DEFAULT_NAME);
		if (place->vswitch == NULL)
			return reply_error(reply, -ENOENT, "no vswitch %s", VSWITCH_DEFAULT_NAME);
		return 0;
	}
	if (portgroup == NULL)
		return reply_error(reply, -EINVAL, "a %s port needs a portgroup", role);
	place->portgroup = lookup_portgroup(host, portgroup, reply);
	if (place->portgroup == NULL)
		return -ENOENT;
	if (place->vswitch != NULL && place->vswitch != place->portgroup->vswitch)
		return reply_error(reply, -EXDEV, "port group '%s' is on %s, not %s",
		                   place->portgroup->name, place->portgroup->vswitch->name,
		                   place->vswitch->name);
	place->vswitch = place->portgroup->vswitch;
	return 0;
}

static int cmd_port_add(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	const char *name = cli_arg(args, "name");
	const char *devargs = cli_arg(args, "devargs");
	struct port_config config;
	uint64_t mtu = PORT_DEFAULT_MTU, rxd = PORT_DEFAULT_RX_DESC, txd = PORT_DEFAULT_TX_DESC;
	struct port_placement place;
	struct port *port;

	bool receive = true;
	if (cli_arg_bool(args, "receive", &receive, reply) < 0 ||
	    cli_arg_u64(args, "mtu", RTE_ETHER_MIN_MTU, 9216, &mtu, reply) < 0 ||
	    cli_arg_u64(args, "rxd", 32, 4096, &rxd, reply) < 0 ||
	    cli_arg_u64(args, "txd", 32, 4096, &txd, reply) < 0 ||
	    resolve_placement(host, args, &place, reply) < 0)
		return -EINVAL;
	if (place.attach && place.vswitch->nb_ports == VSWITCH_MAX_PORTS)
		return reply_error(reply, -ENOSPC, "%s has %u ports already", place.vswitch->name,
		                   VSWITCH_MAX_PORTS);
	config.mtu = (uint16_t)mtu;
	config.nb_rx_desc = (uint16_t)rxd;
	config.nb_tx_desc = (uint16_t)txd;
	config.nb_workers = (uint16_t)host->vswitches.nb_workers;

	int ret = port_table_add(&host->ports, name, devargs, &config, &host->pools, &port);
	if (ret == -EEXIST)
		return reply_error(reply, ret, "port '%.64s' exists already", name);
	if (ret == -ENAMETOOLONG)
		return reply_error(reply, ret, "name or devargs too long (at most %u and %u bytes)",
		                   PORT_NAME_MAX - 1, PORT_DEVARGS_MAX - 1);
	if (ret == -ENXIO)
		return reply_error(reply, ret,
		                   "cannot add port '%.64s': no DPDK driver or bus knows '%.200s' "
		                   "(virtual devices are named net_<driver><n>, e.g. net_ring0, "
		                   "net_tap0, net_af_packet0,iface=eth1; NICs by PCI address, e.g. "
		                   "0000:3b:00.0)",
		                   name, devargs);
	if (ret == -ENOMEM)
		return reply_error(
		        reply, ret,
		        "cannot add port '%.64s' (%.200s): no memory for its packet "
		        "buffers (give ferryd's EAL more with -m or --socket-mem, or the "
		        "port fewer descriptors with rxd and txd)",
		        name, devargs);
	if (ret < 0)
		return reply_error(reply, ret, "cannot add port '%.64s' (%.200s): %s", name,
		                   devargs, strerror(-ret));
	if (place.attach) {
		struct vswitch_port *vport;
		ret = vswitch_port_attach(place.vswitch, port, place.role, place.portgroup, &vport);
		if (ret == 0 && !receive)
			vswitch_port_set_receive(vport, false);
		if (ret < 0) {
			port_table_del(&host->ports, port);
			return reply_error(reply, ret, "cannot attach '%.64s' to %s: %s", name,
			                   place.vswitch->name, strerror(-ret));
		}
	}
	reply_str(reply, "port", "%s", port->name);
	reply_u64(reply, "ethdev", port->port_id);
	reply_u64(reply, "mtu", port->mtu);
	if (place.attach) {
		reply_str(reply, "role", "%s", vswitch_role_name(place.role));
		reply_str(reply, "vswitch", "%s", place.vswitch->name);
		if (place.portgroup != NULL)
			reply_str(reply, "portgroup", "%s", place.portgroup->name);
	}
	return 0;
}

static int cmd_port_del(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct port *port = lookup_port(host, cli_arg(args, "name"), reply);

	if (port == NULL)
		return -ENOENT;
	if (port->capture != NULL) {
		if (capture_state(port->capture) == CAPTURE_RUNNING)
			return reply_error(reply, -EBUSY,
			                   "%s is being captured: capture stop first", port->name);
		/* A finished capture lets its ports go: its counters stay for show capture. */
		host_capture_end(host);
	}
	struct vswitch_port *vport = vswitch_port_find(&host->vswitches, port);
	if (vport != NULL)
		vswitch_port_detach(vport);
	port_table_del(&host->ports, port);
	return 0;
}

static int cmd_show_pools(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct pktpool_info info[RTE_MAX_NUMA_NODES * PKTPOOL_MAX_PER_SOCKET];

	(void)args;
	unsigned int n = pktpool_info(&host->pools, info, RTE_DIM(info));
	reply_list_begin(reply, "pools");
	for (unsigned int i = 0; i < n && i < RTE_DIM(info); i++) {
		reply_object_begin(reply, NULL);
		reply_str(reply, "name", "%s", info[i].name);
		reply_i64(reply, "socket", info[i].socket);
		reply_u64(reply, "mbufs", info[i].capacity);
		reply_u64(reply, "reserved", info[i].reserved);
		reply_u64(reply, "in_use", info[i].in_use);
		reply_u64(reply, "data_room", info[i].data_room);
		reply_object_end(reply);
	}
	reply_list_end(reply);
	return 0;
}

/* One loop's figures: the main worker's at the top level, each worker's in the list. */
static void reply_loop_stats(struct reply *reply, const struct loop *loop)
{
	const struct loop_stats *s = &loop->stats;
	uint64_t total = s->busy_cycles + s->idle_cycles + s->sleep_cycles + s->control_cycles;
	double hz = (double)rte_get_tsc_hz();

	reply_u64(reply, "iterations", s->iterations);
	reply_u64(reply, "busy_iterations", s->busy_iterations);
	reply_u64(reply, "packets", s->packets);
	reply_u64(reply, "commands", s->control_work);
	reply_double(reply, "busy_seconds", (double)s->busy_cycles / hz, 3);
	reply_double(reply, "idle_seconds", (double)s->idle_cycles / hz, 3);
	reply_double(reply, "sleep_seconds", (double)s->sleep_cycles / hz, 3);
	reply_double(reply, "control_seconds", (double)s->control_cycles / hz, 3);
	reply_u64(reply, "busy_cycles", s->busy_cycles);
	reply_u64(reply, "idle_cycles", s->idle_cycles);
	reply_u64(reply, "sleep_cycles", s->sleep_cycles);
	reply_u64(reply, "control_cycles", s->control_cycles);
	reply_double(reply, "busy_percent",
	             total ? 100.0 * (double)s->busy_cycles / (double)total : 0, 2);
	reply_double(reply, "cycles_per_packet",
	             s->packets ? (double)s->busy_cycles / (double)s->packets : 0, 1);
	reply_double(reply, "packets_per_busy_iteration",
	             s->busy_iterations ? (double)s->packets / (double)s->busy_iterations : 0, 2);
	reply_u64(reply, "sleeps", s->sleeps);
	reply_u64(reply, "event_wakeups", s->event_wakeups);
	reply_u64(reply, "timers_armed", loop->nb_timers);
	reply_u64(reply, "timers_fired", s->timers_fired);
	reply_u64(reply, "max_sleep_us", loop->backoff.config.max_sleep_ns / 1000);
	reply_u64(reply, "tsc_hz", rte_get_tsc_hz());
	reply_list_begin(reply, "pollers");
	for (unsigned int i = 0; i < loop->nb_pollers; i++)
		reply_str(reply, NULL, "%s", loop->pollers[i].name);
	reply_list_end(reply);
}

static int cmd_show_loop(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	const struct vswitch_table *vswitches = &host->vswitches;

	(void)args;
	reply_loop_stats(reply, &host->loop);
	reply_u64(reply, "workers", vswitches->nb_workers);
	reply_list_begin(reply, "forwarding_workers");
	for (unsigned int w = 0; w < vswitches->nb_workers; w++) {
		const struct vswitch_worker *worker = vswitches->workers[w];
		reply_object_begin(reply, NULL);
		reply_u64(reply, "worker", w);
		reply_u64(reply, "lcore", w == 0 ? rte_lcore_id() : worker->lcore);
		reply_u64(reply, "rx_queues", worker->nb_rx);
		reply_u64(reply, "learn_dropped", worker->learn_dropped);
		reply_str(reply, "idle", "%s", worker->interrupt_mode ? "interrupts" : "back-off");
		reply_loop_stats(reply, worker->loop);
		reply_object_end(reply);
	}
	reply_list_end(reply);
	return 0;
}

static int cmd_clear_loop_stats(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;

	(void)args;
	(void)reply;
	/* Workers write their own figures: they wait while theirs are zeroed. */
	vswitch_workers_park(&host->vswitches);
	for (unsigned int w = 0; w < host->vswitches.nb_workers; w++)
		memset(&host->vswitches.workers[w]->loop->stats, 0,
		       sizeof(host->vswitches.workers[w]->loop->stats));
	return 0;
}

static int cmd_loop_max_sleep(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	uint64_t us = 0;

	if (cli_arg_u64(args, "microseconds", 0, 100000, &us, reply) < 0)
		return -EINVAL;
	struct loop_backoff_config config = host->loop.backoff.config;
	config.max_sleep_ns = us * 1000;
	if (config.min_sleep_ns > config.max_sleep_ns)
		config.min_sleep_ns = config.max_sleep_ns;
	loop_backoff_init(&host->loop.backoff, &config);
	reply_u64(reply, "max_sleep_us", host->loop.backoff.config.max_sleep_ns / 1000);
	return 0;
}

static const char *const log_level_names[] = {
        [RTE_LOG_EMERG] = "emergency", [RTE_LOG_ALERT] = "alert",     [RTE_LOG_CRIT] = "critical",
        [RTE_LOG_ERR] = "error",       [RTE_LOG_WARNING] = "warning", [RTE_LOG_NOTICE] = "notice",
        [RTE_LOG_INFO] = "info",       [RTE_LOG_DEBUG] = "debug",
};

/* DPDK's own spelling, as --log-level takes it. */
static const char *const log_level_short_names[] = {
        [RTE_LOG_EMERG] = "emerg", [RTE_LOG_ALERT] = "alert",  [RTE_LOG_CRIT] = "crit",
        [RTE_LOG_ERR] = "err",     [RTE_LOG_WARNING] = "warn", [RTE_LOG_NOTICE] = "notice",
        [RTE_LOG_INFO] = "info",   [RTE_LOG_DEBUG] = "debug",
};

static int parse_log_level(const char *text)
{
	char *end;
	long n = strtol(text, &end, 10);

	if (*text != '\0' && *end == '\0' && n >= RTE_LOG_EMERG && n <= (long)RTE_LOG_DEBUG)
		return (int)n;
	for (int level = RTE_LOG_EMERG; level <= (int)RTE_LOG_DEBUG; level++)
		if (strcasecmp(text, log_level_names[level]) == 0 ||
		    strcasecmp(text, log_level_short_names[level]) == 0)
			return level;
	return -EINVAL;
}

static int cmd_log_level(void *ctx, const struct cli_args *args, struct reply *reply)
{
	const char *type = cli_arg(args, "type");
	int level = parse_log_level(cli_arg(args, "level"));

	(void)ctx;
	if (level < 0)
		return reply_error(reply, -EINVAL,
		                   "unknown level '%.32s' (emergency, alert, critical, error, "
		                   "warning, notice, info, debug or 1-8)",
		                   cli_arg(args, "level"));
	/* A pattern such as ferry.* or pmd.net.* sets every matching type, as --log-level does. */
	int ret = rte_log_set_level_pattern(type, (uint32_t)level);
	if (ret < 0)
		return reply_error(reply, ret, "cannot set log level of '%.64s'", type);
	reply_str(reply, "type", "%s", type);
	reply_str(reply, "level", "%s", log_level_names[level]);
	return 0;
}

static int cmd_port_set_impair(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct port *port = lookup_port(host, cli_arg(args, "name"), reply);
	struct impair_config config = {.seed = 1};
	char text[160];

	if (port == NULL)
		return -ENOENT;
	if (cli_arg(args, "off") == NULL) {
		if (cli_arg_rate(args, "rate", 0, &config.rate_bps, reply) < 0 ||
		    cli_arg_ms(args, "delay", 0, &config.delay_ns, reply) < 0 ||
		    cli_arg_ms(args, "jitter", 0, &config.jitter_ns, reply) < 0 ||
		    cli_arg_percent(args, "loss", &config.loss_ppm, reply) < 0 ||
		    cli_arg_percent(args, "dup", &config.dup_ppm, reply) < 0 ||
		    cli_arg_percent(args, "reorder", &config.reorder_ppm, reply) < 0 ||
		    cli_arg_u64(args, "seed", 1, UINT64_MAX, &config.seed, reply) < 0)
			return -EINVAL;
		if (config.jitter_ns > config.delay_ns)
			return reply_error(reply, -EINVAL, "jitter is at most the delay");
	}
	/* The emulated link is allocated and freed here: no worker may be sending through it. */
	vswitch_workers_park(&host->vswitches);
	int ret = port_set_impair(port, &config);
	if (ret < 0)
		return reply_error(reply, ret, "cannot emulate the link: %s", strerror(-ret));
	impair_describe(&config, text, sizeof(text));
	reply_str(reply, "port", "%s", port->name);
	reply_str(reply, "impair", "%s", text);
	return 0;
}

static const struct cli_command ferryd_commands[] = {
        {"port set <name> impair [off] [rate <rate>] [delay <ms>] [jitter <ms>] [loss <percent>] "
         "[dup <percent>] [reorder <percent>] [seed <n>]",
         "emulate a link on the port's transmit side (deterministic for a seed), or stop",
         cmd_port_set_impair},
        {"show version", "ferry and DPDK versions, uptime", cmd_show_version},
        {"show ports", "every port: driver, MAC, link, MTU, devargs", cmd_show_ports},
        {"show port <name> stats", "a port's counters, drops by reason and device counters",
         cmd_show_port_stats},
        {"clear port <name> stats", "zero a port's counters", cmd_clear_port_stats},
        {"port add <name> <devargs> [role <role>] [vswitch <vswitch>] [portgroup <portgroup>] "
         "[mtu <bytes>] [rxd <descriptors>] [txd <descriptors>] [receive <on|off>]",
         "open a DPDK device (PCI address or vdev such as net_af_packet0,iface=eth0) as an "
         "uplink, vnic or vmk port",
         cmd_port_add},
        {"port del <name>", "stop and remove a port", cmd_port_del},
        {"show pools", "packet buffer pools per NUMA socket", cmd_show_pools},
        {"show loop", "worker loop: iterations, busy and idle cycles, cycles per packet",
         cmd_show_loop},
        {"clear loop stats", "zero the worker loop's counters", cmd_clear_loop_stats},
        {"loop max-sleep <microseconds>", "longest idle sleep of the worker (default 1000)",
         cmd_loop_max_sleep},
        {"log level <type> <level>", "set the level of log types matching a pattern (ferry.*)",
         cmd_log_level},
};

int daemon_commands_register(struct cli_table *cli, struct host *host)
{
	return cli_table_register(cli, ferryd_commands, RTE_DIM(ferryd_commands), host);
}
