/* ferryd's capture commands: any port's frames to a pcapng file, as dpdk-dumpcap and VPP's
 * pcap trace take them. */
#include "capture_commands.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_lcore.h>

#include "cli/cli.h"
#include "dataplane/capture.h"
#include "host/host.h"
#include "lookup.h"

/* The ports a capture names: "all", one name, or names joined by commas. Returns how many, or a
 * negative errno after saying why. */
static int capture_ports_parse(struct host *host, const char *names, struct port **ports,
                               struct reply *reply)
{
	char list[PORT_MAX * PORT_NAME_MAX];
	unsigned int n = 0;
	char *save = NULL;

	if (strcmp(names, "all") == 0) {
		for (unsigned int i = 0; i < host->ports.nb_ports; i++)
			ports[n++] = host->ports.ports[i];
		if (n == 0)
			return reply_error(reply, -ENOENT, "no port to capture");
		return (int)n;
	}
	if (strlen(names) >= sizeof(list))
		return reply_error(reply, -EINVAL, "too many ports");
	strcpy(list, names);
	for (char *name = strtok_r(list, ",", &save); name != NULL;
	     name = strtok_r(NULL, ",", &save)) {
		struct port *port = lookup_port(host, name, reply);
		if (port == NULL)
			return -ENOENT;
		for (unsigned int i = 0; i < n; i++)
			if (ports[i] == port)
				return reply_error(reply, -EINVAL, "port '%.64s' named twice",
				                   name);
		if (n == PORT_MAX)
			return reply_error(reply, -EINVAL, "too many ports");
		ports[n++] = port;
	}
	if (n == 0)
		return reply_error(reply, -EINVAL, "no port named");
	return (int)n;
}

static void capture_reply(const struct capture *capture, struct reply *reply)
{
	const struct capture_config *config = capture_config(capture);
	unsigned int nb_ports = capture_nb_ports(capture);
	struct capture_stats stats;
	struct capture_writer_stats written;

	capture_stats_sum(capture, &stats);
	capture_writer_stats(capture, &written);
	reply_str(reply, "state", "%s", capture_state_name(capture_state(capture)));
	reply_str(reply, "file", "%s", config->path);
	reply_str(reply, "direction", "%s", capture_direction_name(config->direction));
	reply_list_begin(reply, "ports");
	for (unsigned int i = 0; i < nb_ports; i++)
		reply_str(reply, NULL, "%s", capture_port_name(capture, i));
	reply_list_end(reply);
	reply_u64(reply, "snaplen", config->snaplen);
	reply_u64(reply, "count", config->count);
	reply_str(reply, "filter", "%s", config->filter);
	reply_u64(reply, "ring", config->ring_size);
	reply_u64(reply, "captured", stats.captured);
	reply_u64(reply, "filtered_out", stats.filtered_out);
	reply_u64(reply, "dropped_ring_full", stats.dropped_full);
	reply_u64(reply, "dropped_no_buffer", stats.dropped_nomem);
	reply_u64(reply, "written", written.frames);
	reply_u64(reply, "bytes_written", written.bytes);
	reply_u64(reply, "write_errors", written.errors);
}

static int cmd_capture_start(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct capture_config config = {.direction = 0};
	struct port *ports[PORT_MAX];
	char error[CAPTURE_ERROR_MAX];
	uint64_t value;

	if (host->capture != NULL && capture_state(host->capture) == CAPTURE_RUNNING)
		return reply_error(reply, -EBUSY,
		                   "a capture is running (to %s): capture stop first",
		                   capture_config(host->capture)->path);
	const char *path = cli_arg(args, "file");
	if (path == NULL)
		return reply_error(reply, -EINVAL, "capture start needs file <path.pcapng>");
	if (strlen(path) >= sizeof(config.path))
		return reply_error(reply, -ENAMETOOLONG, "file name too long");
	strcpy(config.path, path);
	const char *filter = cli_arg(args, "filter");
	if (filter != NULL) {
		if (strlen(filter) >= sizeof(config.filter))
			return reply_error(reply, -EINVAL, "filter too long");
		strcpy(config.filter, filter);
	}
	if (cli_arg(args, "rx") != NULL)
		config.direction |= CAPTURE_RX;
	if (cli_arg(args, "tx") != NULL)
		config.direction |= CAPTURE_TX;
	if (cli_arg(args, "both") != NULL || config.direction == 0)
		config.direction = CAPTURE_BOTH;
	value = 0;
	if (cli_arg_u64(args, "snaplen", 64, UINT16_MAX, &value, reply) < 0)
		return -EINVAL;
	config.snaplen = (uint32_t)value;
	if (cli_arg_u64(args, "count", 1, UINT64_MAX, &config.count, reply) < 0)
		return -EINVAL;
	value = CAPTURE_DEFAULT_RING;
	if (cli_arg_u64(args, "ring", 8, 1u << 20, &value, reply) < 0)
		return -EINVAL;
	config.ring_size = (uint32_t)value;
	int nb_ports = capture_ports_parse(host, cli_arg(args, "ports"), ports, reply);
	if (nb_ports < 0)
		return nb_ports;

	struct capture *capture;
	int ret = capture_open(&capture, &config, ports, (unsigned int)nb_ports,
	                       (int)rte_socket_id(), error);
	if (ret < 0)
		return reply_error(reply, ret, "%s", error);
	if (host->capture != NULL) {
		/* The last one ended (complete or stopped): it goes now. */
		host_capture_end(host);
		capture_free(host->capture);
	}
	host->capture = capture;
	capture_attach(capture);
	capture_reply(capture, reply);
	return 0;
}

static int cmd_capture_stop(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;

	(void)args;
	if (host->capture == NULL)
		return reply_error(reply, -ENOENT, "no capture");
	host_capture_end(host);
	capture_reply(host->capture, reply);
	return 0;
}

static int cmd_show_capture(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;

	(void)args;
	if (host->capture == NULL) {
		reply_str(reply, "state", "none");
		return 0;
	}
	capture_reply(host->capture, reply);
	return 0;
}

static const struct cli_command capture_commands[] = {
        {"capture start <ports> [rx] [tx] [both] [file <path>] [snaplen <bytes>] "
         "[count <frames>] [ring <frames>] [filter <expression>]",
         "copy the frames of ports (a name, names joined by commas, or all) to a pcapng file; "
         "a filter in tcpdump's syntax, quoted",
         cmd_capture_start},
        {"capture stop", "stop the capture and close its file", cmd_capture_stop},
        {"show capture", "the capture: file, ports, frames captured, filtered out, dropped",
         cmd_show_capture},
};

int capture_commands_register(struct cli_table *cli, struct host *host)
{
	return cli_table_register(cli, capture_commands, RTE_DIM(capture_commands), host);
}
