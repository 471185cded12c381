/* ferryd's switching commands: vswitches, port groups, port roles, the MAC table, errors. */
#include "vswitch_commands.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_ether.h>

#include "cli/cli.h"
#include "host/host.h"
#include "lookup.h"

/* The vswitch port of a port name, with errors said. */
static struct vswitch_port *find_vport(struct host *host, const char *name, struct reply *reply)
{
	struct port *port = lookup_port(host, name, reply);

	if (port == NULL)
		return NULL;
	struct vswitch_port *vport = vswitch_port_find(&host->vswitches, port);
	if (vport == NULL)
		reply_error(reply, -EINVAL, "port '%.64s' is on no vswitch", name);
	return vport;
}

/* The optional [vswitch <vswitch>] argument: that one, or every vswitch when absent. Returns
 * the number of vswitches put in out, or -ENOENT. */
static int selected_vswitches(struct host *host, const struct cli_args *args, struct vswitch **out,
                              struct reply *reply)
{
	const char *name = cli_arg(args, "vswitch");

	if (name != NULL) {
		out[0] = lookup_vswitch(host, name, reply);
		return out[0] != NULL ? 1 : -ENOENT;
	}
	for (unsigned int i = 0; i < host->vswitches.nb_vswitches; i++)
		out[i] = host->vswitches.vswitches[i];
	return (int)host->vswitches.nb_vswitches;
}

static int parse_vlan(const struct cli_args *args, uint16_t *vlan, struct reply *reply)
{
	uint64_t value = *vlan;

	if (cli_arg_u64(args, "vlan", 0, VSWITCH_VLAN_MAX, &value, reply) < 0)
		return -EINVAL;
	*vlan = (uint16_t)value;
	return 0;
}

static int cmd_vswitch_add(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	const char *name = cli_arg(args, "name");
	struct vswitch *vswitch;
	int ret = vswitch_add(&host->vswitches, name, &vswitch);

	if (ret == -EEXIST)
		return reply_error(reply, ret, "vswitch '%.64s' exists already", name);
	if (ret < 0)
		return reply_error(reply, ret, "cannot add vswitch '%.64s': %s", name,
		                   strerror(-ret));
	reply_str(reply, "vswitch", "%s", vswitch->name);
	return 0;
}

static int cmd_vswitch_del(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct vswitch *vswitch = lookup_vswitch(ctx, cli_arg(args, "name"), reply);

	if (vswitch == NULL)
		return -ENOENT;
	int ret = vswitch_del(vswitch);
	if (ret == -EBUSY)
		return reply_error(reply, ret, "%s still has ports or port groups", vswitch->name);
	return ret;
}

static int cmd_show_vswitches(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	const struct vswitch_table *vswitches = &host->vswitches;

	(void)args;
	reply_list_begin(reply, "vswitches");
	for (unsigned int v = 0; v < vswitches->nb_vswitches; v++) {
		const struct vswitch *vswitch = vswitches->vswitches[v];
		unsigned int uplinks = 0, portgroups = 0;
		for (unsigned int i = 0; i < vswitch->nb_ports; i++)
			uplinks += vswitch->slots[vswitch->order[i]]->role == VSWITCH_ROLE_UPLINK;
		for (unsigned int i = 0; i < vswitches->nb_portgroups; i++)
			portgroups += vswitches->portgroups[i]->vswitch == vswitch;
		reply_object_begin(reply, NULL);
		reply_str(reply, "name", "%s", vswitch->name);
		reply_u64(reply, "ports", vswitch->nb_ports);
		reply_u64(reply, "uplinks", uplinks);
		reply_u64(reply, "portgroups", portgroups);
		reply_u64(reply, "mac_entries", vswitch->fdb.count);
		reply_u64(reply, "mac_limit", vswitch->fdb.limit);
		reply_u64(reply, "mac_aging_s", vswitch->fdb.aging_ns / 1000000000ull);
		reply_object_end(reply);
	}
	reply_list_end(reply);
	return 0;
}

static int cmd_portgroup_add(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	const char *name = cli_arg(args, "name");
	const char *vswitch_name = cli_arg(args, "vswitch");
	uint16_t vlan = 0;

	if (parse_vlan(args, &vlan, reply) < 0)
		return -EINVAL;
	struct vswitch *vswitch = lookup_vswitch(
	        host, vswitch_name != NULL ? vswitch_name : VSWITCH_DEFAULT_NAME, reply);
	if (vswitch == NULL)
		return -ENOENT;
	struct vswitch_portgroup *pg;
	int ret = vswitch_portgroup_add(&host->vswitches, name, vswitch, vlan, &pg);
	if (ret == -EEXIST)
		return reply_error(reply, ret, "port group '%.64s' exists already", name);
	if (ret < 0)
		return reply_error(reply, ret, "cannot add port group '%.64s': %s", name,
		                   strerror(-ret));
	reply_str(reply, "portgroup", "%s", pg->name);
	reply_str(reply, "vswitch", "%s", vswitch->name);
	reply_u64(reply, "vlan", pg->vlan);
	return 0;
}

static int cmd_portgroup_set(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct vswitch_portgroup *pg = lookup_portgroup(host, cli_arg(args, "name"), reply);
	const char *notify = cli_arg(args, "notify");
	bool on;

	if (pg == NULL)
		return -ENOENT;
	on = pg->notify_switches;
	if (cli_arg_bool(args, "notify-switches", &on, reply) < 0)
		return -EINVAL;
	int how = notify != NULL ? vswitch_notify_parse(notify) : (int)pg->notify;
	if (how < 0)
		return reply_error(reply, -EINVAL, "notify: '%.32s' (rarp, garp or both)", notify);
	pg->notify_switches = on;
	pg->notify = (enum vswitch_notify)how;
	reply_str(reply, "portgroup", "%s", pg->name);
	reply_bool(reply, "notify_switches", pg->notify_switches);
	reply_str(reply, "notify", "%s", vswitch_notify_name(pg->notify));
	return 0;
}

static int cmd_portgroup_del(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct vswitch_portgroup *pg = lookup_portgroup(host, cli_arg(args, "name"), reply);

	if (pg == NULL)
		return -ENOENT;
	if (pg->nb_ports > 0)
		return reply_error(reply, -EBUSY, "port group '%s' still has %u ports", pg->name,
		                   pg->nb_ports);
	return vswitch_portgroup_del(&host->vswitches, pg);
}

static int cmd_show_portgroups(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	const struct vswitch_table *vswitches = &host->vswitches;

	(void)args;
	reply_list_begin(reply, "portgroups");
	for (unsigned int i = 0; i < vswitches->nb_portgroups; i++) {
		const struct vswitch_portgroup *pg = vswitches->portgroups[i];
		reply_object_begin(reply, NULL);
		reply_str(reply, "name", "%s", pg->name);
		reply_str(reply, "vswitch", "%s", pg->vswitch->name);
		reply_u64(reply, "vlan", pg->vlan);
		reply_u64(reply, "ports", pg->nb_ports);
		reply_str(reply, "notify_switches", "%s",
		          pg->notify_switches ? vswitch_notify_name(pg->notify) : "off");
		reply_object_end(reply);
	}
	reply_list_end(reply);
	return 0;
}

static int cmd_port_set_receive(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct vswitch_port *vport = find_vport(host, cli_arg(args, "name"), reply);
	bool on;

	if (vport == NULL)
		return -ENOENT;
	if (cli_arg_bool(args, "state", &on, reply) < 0)
		return -EINVAL;
	vswitch_port_set_receive(vport, on);
	return 0;
}

static int cmd_port_set_portgroup(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct vswitch_port *vport = find_vport(host, cli_arg(args, "name"), reply);

	if (vport == NULL)
		return -ENOENT;
	struct vswitch_portgroup *pg = lookup_portgroup(host, cli_arg(args, "portgroup"), reply);
	if (pg == NULL)
		return -ENOENT;
	int ret = vswitch_port_set_portgroup(vport, pg);
	if (ret == -EINVAL)
		return reply_error(reply, ret, "an uplink carries every port group: it has none");
	if (ret == -EXDEV)
		return reply_error(reply, ret, "port group '%s' is on %s, the port on %s", pg->name,
		                   pg->vswitch->name, vport->vswitch->name);
	return ret;
}

struct mac_filter {
	struct reply *reply;
	const struct vswitch *vswitch;
	bool by_vlan, by_port;
	uint16_t vlan, port;
	uint64_t now_ns;
};

static int show_mac_entry(const struct fdb_entry *e, void *arg)
{
	const struct mac_filter *f = arg;
	char mac[RTE_ETHER_ADDR_FMT_SIZE];

	if ((f->by_vlan && e->key.vlan != f->vlan) || (f->by_port && e->port != f->port))
		return 0;
	const struct vswitch_port *vport = f->vswitch->slots[e->port];
	rte_ether_format_addr(mac, sizeof(mac), &e->key.mac);
	reply_object_begin(f->reply, NULL);
	reply_str(f->reply, "vswitch", "%s", f->vswitch->name);
	reply_u64(f->reply, "vlan", e->key.vlan);
	reply_str(f->reply, "mac", "%s", mac);
	reply_str(f->reply, "port", "%s", vport != NULL ? vport->port->name : "?");
	if (e->is_static)
		reply_str(f->reply, "age", "static");
	else
		reply_u64(f->reply, "age", (f->now_ns - e->seen_ns) / 1000000000ull);
	reply_u64(f->reply, "moves", e->moves);
	reply_object_end(f->reply);
	return 0;
}

static int cmd_show_mac(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct vswitch *vswitches[VSWITCH_MAX];
	struct mac_filter filter = {.reply = reply, .now_ns = vswitch_now_ns(&host->vswitches)};
	int n = selected_vswitches(host, args, vswitches, reply);

	if (n < 0)
		return n;
	if (cli_arg(args, "vlan") != NULL) {
		filter.by_vlan = true;
		if (parse_vlan(args, &filter.vlan, reply) < 0)
			return -EINVAL;
	}
	const char *port_name = cli_arg(args, "port");
	const struct vswitch_port *only = NULL;
	if (port_name != NULL) {
		only = find_vport(host, port_name, reply);
		if (only == NULL)
			return -ENOENT;
		filter.by_port = true;
		filter.port = only->index;
	}
	reply_list_begin(reply, "entries");
	for (int v = 0; v < n; v++) {
		if (only != NULL && only->vswitch != vswitches[v])
			continue;
		filter.vswitch = vswitches[v];
		fdb_foreach(&vswitches[v]->fdb, show_mac_entry, &filter);
	}
	reply_list_end(reply);
	return 0;
}

static int cmd_show_mac_stats(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct vswitch *vswitches[VSWITCH_MAX];
	int n = selected_vswitches(host, args, vswitches, reply);

	if (n < 0)
		return n;
	reply_list_begin(reply, "tables");
	for (int v = 0; v < n; v++) {
		const struct fdb *fdb = &vswitches[v]->fdb;
		reply_object_begin(reply, NULL);
		reply_str(reply, "vswitch", "%s", vswitches[v]->name);
		reply_u64(reply, "entries", fdb->count);
		reply_u64(reply, "static", fdb->nb_static);
		reply_u64(reply, "max", fdb->limit);
		reply_u64(reply, "aging_s", fdb->aging_ns / 1000000000ull);
		reply_u64(reply, "learned", fdb->stats.learned);
		reply_u64(reply, "expired", fdb->stats.expired);
		reply_u64(reply, "evicted", fdb->stats.evicted);
		reply_u64(reply, "moved", fdb->stats.moved);
		reply_u64(reply, "static_refused", fdb->stats.static_refused);
		reply_u64(reply, "full_drops", fdb->stats.full_drops);
		reply_object_end(reply);
	}
	reply_list_end(reply);
	return 0;
}

static int cmd_mac_add(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct rte_ether_addr mac;
	uint16_t vlan = 0;

	if (cli_arg_mac(args, "mac", false, &mac, reply) < 0 || parse_vlan(args, &vlan, reply) < 0)
		return -EINVAL;
	if (!rte_is_unicast_ether_addr(&mac) || rte_is_zero_ether_addr(&mac))
		return reply_error(reply, -EINVAL, "only unicast MACs have table entries");
	struct vswitch_port *vport = find_vport(host, cli_arg(args, "port"), reply);
	if (vport == NULL)
		return -ENOENT;
	int ret = fdb_add_static(&vport->vswitch->fdb, vlan, &mac, vport->index);
	if (ret < 0)
		return reply_error(reply, ret, "cannot add the entry: %s", strerror(-ret));
	return 0;
}

static int cmd_mac_del(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct vswitch *vswitches[VSWITCH_MAX];
	struct rte_ether_addr mac;
	uint16_t vlan = 0;
	unsigned int removed = 0;

	if (cli_arg_mac(args, "mac", false, &mac, reply) < 0 || parse_vlan(args, &vlan, reply) < 0)
		return -EINVAL;
	int n = selected_vswitches(host, args, vswitches, reply);
	if (n < 0)
		return n;
	for (int v = 0; v < n; v++)
		removed += fdb_del(&vswitches[v]->fdb, vlan, &mac) == 0;
	if (removed == 0)
		return reply_error(reply, -ENOENT, "no entry for %s on VLAN %u",
		                   cli_arg(args, "mac"), vlan);
	return 0;
}

static int cmd_mac_flush(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct vswitch *vswitches[VSWITCH_MAX];
	unsigned int removed = 0;
	uint16_t vlan = 0;

	if (cli_arg(args, "port") != NULL && cli_arg(args, "vlan") != NULL)
		return reply_error(reply, -EINVAL, "flush by port or by vlan, not both");
	if (cli_arg(args, "port") != NULL) {
		struct vswitch_port *vport = find_vport(host, cli_arg(args, "port"), reply);
		if (vport == NULL)
			return -ENOENT;
		removed = fdb_flush_port(&vport->vswitch->fdb, vport->index);
	} else {
		if (parse_vlan(args, &vlan, reply) < 0)
			return -EINVAL;
		int n = selected_vswitches(host, args, vswitches, reply);
		if (n < 0)
			return n;
		for (int v = 0; v < n; v++)
			removed += cli_arg(args, "vlan") != NULL
			                   ? fdb_flush_vlan(&vswitches[v]->fdb, vlan)
			                   : fdb_flush(&vswitches[v]->fdb, false);
	}
	reply_u64(reply, "flushed", removed);
	return 0;
}

static int cmd_mac_aging(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct vswitch *vswitches[VSWITCH_MAX];
	uint64_t seconds = 0;

	if (cli_arg_u64(args, "seconds", 0, FDB_MAX_AGING_S, &seconds, reply) < 0)
		return -EINVAL;
	if (seconds != 0 && seconds < FDB_MIN_AGING_S)
		return reply_error(reply, -EINVAL, "aging is 0 (off) or %u to %u seconds",
		                   FDB_MIN_AGING_S, FDB_MAX_AGING_S);
	int n = selected_vswitches(host, args, vswitches, reply);
	if (n < 0)
		return n;
	for (int v = 0; v < n; v++)
		fdb_set_aging(&vswitches[v]->fdb, (uint32_t)seconds);
	if (cli_arg(args, "vswitch") == NULL)
		host->vswitches.fdb_aging_s = (uint32_t)seconds;
	reply_u64(reply, "aging_s", seconds);
	return 0;
}

static int cmd_mac_limit(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct vswitch *vswitches[VSWITCH_MAX];
	uint64_t limit = 0;

	if (cli_arg_u64(args, "entries", 1, FDB_MAX_LIMIT, &limit, reply) < 0)
		return -EINVAL;
	int n = selected_vswitches(host, args, vswitches, reply);
	if (n < 0)
		return n;
	/* A new table replaces the old: no worker may be reading it. */
	vswitch_workers_park(&host->vswitches);
	for (int v = 0; v < n; v++) {
		int ret = fdb_set_limit(&vswitches[v]->fdb, (uint32_t)limit);
		if (ret < 0)
			return reply_error(reply, ret, "%s: cannot hold %llu entries: %s",
			                   vswitches[v]->name, (unsigned long long)limit,
			                   ret == -ENOSPC ? "more static entries than that"
			                                  : strerror(-ret));
	}
	if (cli_arg(args, "vswitch") == NULL)
		host->vswitches.fdb_limit = (uint32_t)limit;
	reply_u64(reply, "limit", limit);
	return 0;
}

static int cmd_show_errors(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;

	(void)args;
	reply_list_begin(reply, "errors");
	for (unsigned int i = 0; i < host->ports.nb_ports; i++) {
		const struct port *port = host->ports.ports[i];
		struct vswitch_drop_counter counters[VSWITCH_PORT_DROP_COUNTERS];
		vswitch_port_drop_counters(port, counters);
		for (unsigned int r = 0; r < VSWITCH_PORT_DROP_COUNTERS; r++) {
			if (counters[r].count == 0)
				continue;
			reply_object_begin(reply, NULL);
			reply_u64(reply, "count", counters[r].count);
			reply_str(reply, "port", "%s", port->name);
			reply_str(reply, "reason", "%s", counters[r].name);
			reply_str(reply, "description", "%s", counters[r].description);
			reply_object_end(reply);
		}
	}
	reply_list_end(reply);
	return 0;
}

static int cmd_debug_clock_advance(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	uint64_t seconds = 0;

	if (cli_arg_u64(args, "seconds", 0, 1000000, &seconds, reply) < 0)
		return -EINVAL;
	vswitch_clock_advance(&host->vswitches, seconds * 1000000000ull);
	reply_u64(reply, "clock_offset_s", host->vswitches.clock_offset_ns / 1000000000ull);
	return 0;
}

static const struct cli_command vswitch_commands[] = {
        {"vswitch add <name>", "add a virtual switch", cmd_vswitch_add},
        {"vswitch del <name>", "remove a virtual switch with no ports or port groups",
         cmd_vswitch_del},
        {"show vswitches", "every vswitch: ports, uplinks, port groups, MAC table size",
         cmd_show_vswitches},
        {"portgroup add <name> [vswitch <vswitch>] [vlan <id>]",
         "add a port group (VLAN 0 = untagged; vswitch default vSwitch0)", cmd_portgroup_add},
        {"portgroup del <name>", "remove a port group no port uses", cmd_portgroup_del},
        {"portgroup set <name> [notify-switches <on|off>] [notify <how>]",
         "ESXi's Notify switches: whether a VM that arrives on the port group announces itself, "
         "and how (rarp, the default; garp; or both)",
         cmd_portgroup_set},
        {"show portgroups", "every port group: vswitch, VLAN, ports", cmd_show_portgroups},
        {"port set <name> portgroup <portgroup>", "move a vnic or vmk port to another port group",
         cmd_port_set_portgroup},
        {"port set <name> receive <state>",
         "on: the switch polls the port (the default); off: its frames wait in the device",
         cmd_port_set_receive},
        {"show mac [vlan <id>] [port <port>] [vswitch <vswitch>]",
         "MAC table entries: vswitch, VLAN, MAC, port, age or static, moves", cmd_show_mac},
        {"show mac stats [vswitch <vswitch>]",
         "MAC table size and counters: learned, expired, evicted, moved", cmd_show_mac_stats},
        {"mac add <mac> port <port> [vlan <id>]", "add a static entry (never ages or moves)",
         cmd_mac_add},
        {"mac del <mac> [vlan <id>] [vswitch <vswitch>]", "remove an entry", cmd_mac_del},
        {"mac flush [port <port>] [vlan <id>] [vswitch <vswitch>]",
         "remove learned entries: all, or by port (statics too), or by VLAN", cmd_mac_flush},
        {"mac aging <seconds> [vswitch <vswitch>]", "aging time, 10-3600 s, 0 = off (default 300)",
         cmd_mac_aging},
        {"mac limit <entries> [vswitch <vswitch>]", "MAC table capacity (default 8192)",
         cmd_mac_limit},
        {"show errors", "every non-zero drop counter: count, port, reason", cmd_show_errors},
        {"debug clock advance <seconds>", "move the switches' clock forward (aging tests)",
         cmd_debug_clock_advance},
};

int vswitch_commands_register(struct cli_table *cli, struct host *host)
{
	return cli_table_register(cli, vswitch_commands, RTE_DIM(vswitch_commands), host);
}
