/* ferryd's VMkernel commands: vmk add/del, show vmk, show arp, arp flush. */
#include "vmk_commands.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>

#include "cli/cli.h"
#include "host/host.h"
#include "lookup.h"

static int cmd_vmk_add(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	const char *name = cli_arg(args, "name");
	struct netif_config config = {.name = name};
	uint64_t mtu = NETIF_DEFAULT_MTU;
	char ip_text[16];

	if (strlen(name) >= IFACE_NAME_MAX)
		return reply_error(reply, -ENAMETOOLONG, "name too long (at most %d bytes)",
		                   IFACE_NAME_MAX - 1);
	if (host_vmk_find(host, name) != NULL)
		return reply_error(reply, -EEXIST, "VMkernel port '%s' exists already", name);
	if (host->nb_vmks == HOST_MAX_VMKS)
		return reply_error(reply, -ENOSPC, "at most %d VMkernel ports", HOST_MAX_VMKS);
	struct vswitch_portgroup *pg = lookup_portgroup(host, cli_arg(args, "portgroup"), reply);
	if (pg == NULL)
		return -ENOENT;
	if (cli_arg_ipv4_prefix(args, "address", "netmask", &config.ip, &config.prefix_len, reply) <
	            0 ||
	    cli_arg_u64(args, "mtu", RTE_ETHER_MIN_MTU, NETIF_MAX_MTU, &mtu, reply) < 0 ||
	    cli_arg_ipv4(args, "gw", &config.gateway, reply) < 0 ||
	    cli_arg_mac(args, "mac", true, &config.mac, reply) < 0)
		return -EINVAL;
	config.mtu = (uint16_t)mtu;

	struct iface *vmk = iface_alloc();
	if (vmk == NULL)
		return reply_error(reply, -ENOMEM, "out of memory");
	int ret = iface_create(vmk, &host->vswitches, pg, VSWITCH_ROLE_VMK, &config, &host->pools);
	if (ret < 0) {
		free(vmk);
		return reply_error(reply, ret, "cannot add VMkernel port '%s': %s", name,
		                   strerror(-ret));
	}
	host_vmk_add(host, vmk); /* room was checked above */
	char mac[RTE_ETHER_ADDR_FMT_SIZE];
	rte_ether_format_addr(mac, sizeof(mac), &vmk->netif.mac);
	reply_str(reply, "vmk", "%s", vmk->name);
	reply_str(reply, "ip", "%s/%u", netif_format_ipv4(vmk->netif.ip, ip_text, sizeof(ip_text)),
	          vmk->netif.prefix_len);
	reply_str(reply, "mac", "%s", mac);
	reply_str(reply, "portgroup", "%s", pg->name);
	return 0;
}

static int cmd_vmk_set(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct iface *vmk = lookup_vmk(host, cli_arg(args, "name"), reply);
	struct netif *n;
	uint64_t mtu = 0, reachable = 0, stale = 0;

	if (vmk == NULL)
		return -ENOENT;
	n = &vmk->netif;
	uint32_t ip = n->ip, gateway = n->gateway;
	uint8_t prefix_len = n->prefix_len;
	if (cli_arg_ipv4_prefix(args, "ip", "netmask", &ip, &prefix_len, reply) < 0 ||
	    cli_arg_ipv4(args, "gw", &gateway, reply) < 0 ||
	    cli_arg_u64(args, "mtu", RTE_ETHER_MIN_MTU, NETIF_MAX_MTU, &mtu, reply) < 0 ||
	    cli_arg_u64(args, "arp-reachable", 1, 3600, &reachable, reply) < 0 ||
	    cli_arg_u64(args, "arp-stale", 1, 86400, &stale, reply) < 0)
		return -EINVAL;
	if (mtu != 0) {
		int ret = port_set_mtu(&vmk->switch_side, (uint16_t)mtu);
		if (ret == 0)
			ret = port_set_mtu(&vmk->host_side, (uint16_t)mtu);
		if (ret == -ENOBUFS)
			return reply_error(
			        reply, ret,
			        "cannot set MTU %u: %s's packet buffers were sized for its "
			        "MTU when it was added (vmk del, then vmk add ... mtu %u)",
			        (unsigned int)mtu, vmk->name, (unsigned int)mtu);
		if (ret < 0)
			return reply_error(reply, ret, "cannot set MTU %u: %s", (unsigned int)mtu,
			                   strerror(-ret));
		n->mtu = (uint16_t)mtu;
	}
	if (reachable != 0)
		n->reachable_ns = reachable * 1000000000ull;
	if (stale != 0)
		n->stale_ns = stale * 1000000000ull;
	/* A new address is announced with a gratuitous ARP, so switches and caches follow. */
	if (ip != n->ip || prefix_len != n->prefix_len || gateway != n->gateway)
		netif_set_address(n, ip, prefix_len, gateway);
	char text[16];
	reply_str(reply, "vmk", "%s", vmk->name);
	reply_str(reply, "ip", "%s/%u", netif_format_ipv4(n->ip, text, sizeof(text)),
	          n->prefix_len);
	reply_u64(reply, "mtu", n->mtu);
	reply_u64(reply, "arp_reachable_s", n->reachable_ns / 1000000000ull);
	reply_u64(reply, "arp_stale_s", n->stale_ns / 1000000000ull);
	return 0;
}

static int cmd_vmk_del(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct iface *vmk = lookup_vmk(host, cli_arg(args, "name"), reply);

	if (vmk == NULL)
		return -ENOENT;
	host_vmk_remove(host, vmk);
	return 0;
}

static int cmd_show_vmk(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	char ip[16], gw[16], mac[RTE_ETHER_ADDR_FMT_SIZE];

	(void)args;
	reply_list_begin(reply, "vmks");
	for (unsigned int i = 0; i < host->nb_vmks; i++) {
		const struct iface *vmk = host->vmks[i];
		const struct netif *n = &vmk->netif;
		uint64_t drops = 0;
		for (unsigned int r = 0; r < NETIF_DROP_MAX; r++)
			drops += n->counters.drops[r];
		rte_ether_format_addr(mac, sizeof(mac), &n->mac);
		reply_object_begin(reply, NULL);
		reply_str(reply, "name", "%s", vmk->name);
		reply_str(reply, "portgroup", "%s", vmk->vport->portgroup->name);
		reply_str(reply, "ip", "%s/%u", netif_format_ipv4(n->ip, ip, sizeof(ip)),
		          n->prefix_len);
		reply_str(reply, "gateway", "%s",
		          n->gateway != 0 ? netif_format_ipv4(n->gateway, gw, sizeof(gw)) : "-");
		reply_str(reply, "mac", "%s", mac);
		reply_u64(reply, "mtu", n->mtu);
		reply_str(reply, "state", "%s", n->up ? "up" : "down");
		reply_u64(reply, "rx_packets", n->counters.rx_packets);
		reply_u64(reply, "tx_packets", n->counters.tx_packets);
		reply_u64(reply, "drops", drops);
		reply_object_end(reply);
	}
	reply_list_end(reply);
	return 0;
}

static const char *const neigh_state_names[] = {
        [NETIF_NEIGH_FREE] = "free",
        [NETIF_NEIGH_INCOMPLETE] = "incomplete",
        [NETIF_NEIGH_REACHABLE] = "reachable",
        [NETIF_NEIGH_STALE] = "stale",
};

static int cmd_show_arp(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	uint64_t now = loop_now_ns(&host->loop);
	char ip[16], mac[RTE_ETHER_ADDR_FMT_SIZE];

	(void)args;
	reply_list_begin(reply, "neighbours");
	for (unsigned int i = 0; i < host->nb_vmks; i++) {
		const struct netif *n = &host->vmks[i]->netif;
		for (unsigned int e = 0; e < NETIF_NEIGH_MAX; e++) {
			const struct netif_neigh *neigh = &n->neighs[e];
			if (neigh->state == NETIF_NEIGH_FREE)
				continue;
			rte_ether_format_addr(mac, sizeof(mac), &neigh->mac);
			reply_object_begin(reply, NULL);
			reply_str(reply, "vmk", "%s", host->vmks[i]->name);
			reply_str(reply, "ip", "%s", netif_format_ipv4(neigh->ip, ip, sizeof(ip)));
			reply_str(reply, "mac", "%s",
			          neigh->state == NETIF_NEIGH_INCOMPLETE ? "-" : mac);
			reply_str(reply, "state", "%s", neigh_state_names[neigh->state]);
			reply_u64(reply, "age_s", (now - neigh->updated_ns) / 1000000000ull);
			reply_u64(reply, "queued", neigh->nb_queued);
			reply_object_end(reply);
		}
	}
	reply_list_end(reply);
	return 0;
}

static int cmd_arp_flush(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	const char *only = cli_arg(args, "vmk");

	if (only != NULL && lookup_vmk(host, only, reply) == NULL)
		return -ENOENT;
	for (unsigned int i = 0; i < host->nb_vmks; i++)
		if (only == NULL || strcmp(host->vmks[i]->name, only) == 0)
			netif_neigh_flush(&host->vmks[i]->netif);
	return 0;
}

/* The UDP echo service (RFC 862): every datagram goes back to its sender. */
static void udp_echo(void *ctx, uint32_t src_ip, uint16_t src_port, const uint8_t *payload,
                     uint16_t len, uint16_t dst_port)
{
	struct iface *vmk = ctx;
	netif_udp_send(&vmk->netif, src_ip, src_port, dst_port, payload, len,
	               loop_now_ns(vmk->loop));
}

static int cmd_vmk_udp_echo(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct iface *vmk = lookup_vmk(host, cli_arg(args, "name"), reply);
	uint64_t port = 0;

	if (vmk == NULL)
		return -ENOENT;
	if (cli_arg_u64(args, "port", 1, 65535, &port, reply) < 0)
		return -EINVAL;
	if (cli_arg(args, "off") != NULL) {
		netif_udp_unbind(&vmk->netif, (uint16_t)port);
		return 0;
	}
	int ret = netif_udp_bind(&vmk->netif, (uint16_t)port, udp_echo, vmk);
	if (ret == -EADDRINUSE)
		return reply_error(reply, ret, "UDP port %u is taken on %s", (unsigned int)port,
		                   vmk->name);
	if (ret < 0)
		return reply_error(reply, ret, "cannot bind UDP port %u: %s", (unsigned int)port,
		                   strerror(-ret));
	reply_str(reply, "vmk", "%s", vmk->name);
	reply_u64(reply, "udp_echo_port", port);
	return 0;
}

/* The vmk a destination goes out of: the named one, else the one on its subnet, else the
 * first. */
static struct iface *route_vmk(struct host *host, const char *name, uint32_t dst,
                               struct reply *reply)
{
	if (name != NULL)
		return lookup_vmk(host, name, reply);
	struct iface *vmk = host_vmk_on_subnet(host, dst);
	if (vmk != NULL)
		return vmk;
	if (host->nb_vmks > 0)
		return host->vmks[0];
	reply_error(reply, -ENOENT, "no VMkernel port to ping from (see 'vmk add')");
	return NULL;
}

static int cmd_vmkping(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct vmkping_request req = {.count = 3, .size = 56};
	uint64_t count = req.count, size = req.size;
	char ip[16];

	req.interval_ns = 1000000000ull;
	req.timeout_ns = 1000000000ull;
	if (cli_arg_ipv4(args, "ip", &req.dst, reply) < 0 ||
	    cli_arg_u64(args, "-c", 1, VMKPING_MAX_COUNT, &count, reply) < 0 ||
	    cli_arg_u64(args, "-s", 0, NETIF_MAX_MTU - 28, &size, reply) < 0 ||
	    cli_arg_seconds(args, "-i", 0.001, 60, &req.interval_ns, reply) < 0 ||
	    cli_arg_seconds(args, "-W", 0.001, 60, &req.timeout_ns, reply) < 0)
		return -EINVAL;
	req.count = (uint16_t)count;
	req.size = (uint16_t)size;
	req.dont_fragment = cli_arg(args, "-d") != NULL;
	req.vmk = route_vmk(host, cli_arg(args, "-I"), req.dst, reply);
	if (req.vmk == NULL)
		return -ENOENT;
	if (28u + req.size > req.vmk->netif.mtu)
		return reply_error(
		        reply, -EMSGSIZE, "%u bytes of data do not fit %s's MTU of %u (at most %u)",
		        req.size, req.vmk->name, req.vmk->netif.mtu, req.vmk->netif.mtu - 28u);
	struct vmkping_session *s = vmkping_start(&host->pings, &req);
	if (s == NULL)
		return reply_error(reply, -errno, "cannot start: %s", strerror(errno));
	reply_u64(reply, "session", s->id);
	reply_str(reply, "vmk", "%s", req.vmk->name);
	reply_str(reply, "destination", "%s", netif_format_ipv4(req.dst, ip, sizeof(ip)));
	reply_u64(reply, "size", req.size);
	reply_u64(reply, "count", req.count);
	return 0;
}

static int cmd_vmkping_status(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	uint64_t id = 0;
	char ip[16];

	if (cli_arg_u64(args, "session", 1, UINT16_MAX, &id, reply) < 0)
		return -EINVAL;
	const struct vmkping_session *s = vmkping_find(&host->pings, (uint16_t)id);
	if (s == NULL)
		return reply_error(reply, -ENOENT, "no vmkping session %u", (unsigned int)id);
	double min = 0, max = 0, sum = 0;
	bool first = true;
	reply_u64(reply, "session", s->id);
	reply_str(reply, "destination", "%s", netif_format_ipv4(s->dst, ip, sizeof(ip)));
	reply_u64(reply, "size", s->size);
	reply_bool(reply, "done", s->finished_ns != 0);
	if (s->error != 0)
		reply_str(reply, "error", "%s", strerror(-s->error));
	reply_u64(reply, "transmitted", s->sent);
	reply_u64(reply, "received", s->received);
	reply_list_begin(reply, "replies");
	for (uint16_t seq = 0; seq < s->sent; seq++) {
		if (s->rtt_ns[seq] < 0)
			continue;
		double ms = (double)s->rtt_ns[seq] / 1e6;
		min = first ? ms : RTE_MIN(min, ms);
		first = false;
		max = RTE_MAX(max, ms);
		sum += ms;
		reply_object_begin(reply, NULL);
		reply_u64(reply, "seq", seq);
		reply_u64(reply, "bytes", s->size + 8u);
		reply_u64(reply, "ttl", s->ttl[seq]);
		reply_double(reply, "rtt_ms", ms, 3);
		reply_object_end(reply);
	}
	reply_list_end(reply);
	reply_double(reply, "loss_percent", s->sent ? 100.0 * (s->sent - s->received) / s->sent : 0,
	             1);
	reply_double(reply, "rtt_min_ms", min, 3);
	reply_double(reply, "rtt_avg_ms", s->received ? sum / s->received : 0, 3);
	reply_double(reply, "rtt_max_ms", max, 3);
	return 0;
}

static const struct cli_command vmk_commands[] = {
        {"vmkping <ip> [-c <count>] [-s <size>] [-I <vmk>] [-d] [-W <timeout>] [-i <interval>]",
         "start pinging from a VMkernel port (ferryctl follows it to the end, like ping)",
         cmd_vmkping},
        {"vmkping status <session>", "a vmkping session's replies and summary", cmd_vmkping_status},
        {"vmk udp-echo <name> <port> [off]", "serve UDP echo (RFC 862) on a port of a vmk",
         cmd_vmk_udp_echo},
        {"vmk add <name> portgroup <portgroup> ip <address> [netmask <netmask>] [mtu <bytes>] "
         "[gw <gateway>] [mac <mac>]",
         "add a VMkernel interface (ip A.B.C.D/N, or A.B.C.D netmask W.X.Y.Z)", cmd_vmk_add},
        {"vmk del <name>", "remove a VMkernel interface", cmd_vmk_del},
        {"vmk set <name> [ip <address>] [netmask <netmask>] [gw <gateway>] [mtu <bytes>] "
         "[arp-reachable <seconds>] [arp-stale <seconds>]",
         "change a vmk's address (announced by gratuitous ARP), MTU or ARP timeouts", cmd_vmk_set},
        {"show vmk", "VMkernel interfaces: address, MAC, MTU, state, counters", cmd_show_vmk},
        {"show arp", "the VMkernel interfaces' neighbour caches", cmd_show_arp},
        {"arp flush [vmk <name>]", "forget the neighbours (of one VMkernel interface)",
         cmd_arp_flush},
};

int vmk_commands_register(struct cli_table *cli, struct host *host)
{
	return cli_table_register(cli, vmk_commands, RTE_DIM(vmk_commands), host);
}
