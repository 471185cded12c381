/* ferry-center's commands: what reads the inventory answers at once, what talks to hosts is a
 * task (its id in the answer; `task <id>` follows it, `ferryctl -w` waits for it). */
#include "commands.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "center/center.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/reply.h"

#define LIST_MAX 1024

/* Names as ferryd takes them: letters, digits, '-', '_' and '.', 1 to 31 bytes. */
static bool name_ok(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > 31)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)name[i]) && strchr("-_.", name[i]) == NULL)
			return false;
	return true;
}

static int bad_name(struct reply *reply, const char *what, const char *name)
{
	return reply_error(reply, -EINVAL, "%s '%.64s': 1 to 31 letters, digits, '-', '_' or '.'",
	                   what, name);
}

static int queued(struct center *c, struct reply *reply, const char *kind, const char *target,
                  const char *detail)
{
	uint64_t id;
	int ret = center_queue(c, kind, target, detail, &id);

	if (ret < 0)
		return reply_error(reply, ret, "cannot queue the task: %s",
		                   ret == -EBUSY ? "too many queued" : "inventory failed");
	reply_u64(reply, "task", id);
	reply_str(reply, "state", "queued");
	return 0;
}

/* When, as people read it. */
static void reply_time(struct reply *reply, const char *key, uint64_t ms)
{
	char text[32] = "-";

	if (ms != 0) {
		time_t s = (time_t)(ms / 1000);
		struct tm tm;
		gmtime_r(&s, &tm);
		size_t n = strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(text + n, sizeof(text) - n, ".%03uZ", (unsigned int)(ms % 1000));
	}
	reply_str(reply, key, "%s", text);
}

static int cmd_host_add(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct center *c = ctx;
	const char *name = cli_arg(args, "name"), *address = cli_arg(args, "address");
	struct inventory_host existing;
	char host[256];
	const char *port;

	if (!name_ok(name))
		return bad_name(reply, "host name", name);
	if (address[0] != '/' && (client_split_address(address, host, sizeof(host), &port) < 0 ||
	                          host[0] == '\0' || atoi(port) <= 0 || atoi(port) > 65535))
		return reply_error(reply, -EINVAL,
		                   "address '%.64s': a UNIX socket path, or host:port of ferryd's "
		                   "management port (TLS)",
		                   address);
	if (strlen(address) >= INVENTORY_ADDRESS_MAX || strchr(address, ' ') != NULL)
		return reply_error(reply, -EINVAL, "address: at most %d bytes, no spaces",
		                   INVENTORY_ADDRESS_MAX - 1);
	center_lock(c);
	int ret = inventory_host_get(center_store(c), name, &existing);
	center_unlock(c);
	if (ret == 0)
		return reply_error(reply, -EEXIST, "host %s is in the inventory already (at %s)",
		                   name, existing.address);
	return queued(c, reply, "host-add", name, address);
}

static int cmd_host_remove(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct center *c = ctx;
	const char *name = cli_arg(args, "name");
	struct inventory_vm vms[1];

	center_lock(c);
	int nb_vms = inventory_vms(center_store(c), name, vms, 1);
	int ret = nb_vms > 0 ? -EBUSY : inventory_host_remove(center_store(c), name);
	if (ret == 0)
		inventory_event(center_store(c), "info", name, "removed from the inventory");
	center_unlock(c);
	if (ret == -EBUSY)
		return reply_error(reply, ret,
		                   "%s runs VMs (%s, ...): evacuate it first ('host maintenance %s "
		                   "on')",
		                   name, vms[0].name, name);
	if (ret == -ENOENT)
		return reply_error(reply, ret, "no host %.64s (see 'host list')", name);
	if (ret < 0)
		return reply_error(reply, ret, "inventory: %s", store_error(center_store(c)));
	reply_str(reply, "removed", "%s", name);
	return 0;
}

static int cmd_host_list(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct center *c = ctx;

	(void)args;
	struct inventory_host *hosts = calloc(LIST_MAX, sizeof(*hosts));
	if (hosts == NULL)
		return reply_error(reply, -ENOMEM, "out of memory");
	center_lock(c);
	int n = inventory_hosts(center_store(c), hosts, LIST_MAX);
	center_unlock(c);
	reply_list_begin(reply, "hosts");
	for (int i = 0; i < n; i++) {
		reply_object_begin(reply, NULL);
		reply_str(reply, "name", "%s", hosts[i].name);
		reply_str(reply, "address", "%s", hosts[i].address);
		reply_str(reply, "state", "%s", hosts[i].state);
		reply_bool(reply, "maintenance", hosts[i].maintenance);
		reply_str(reply, "vmotion", "%s", hosts[i].vmotion_ip);
		reply_u64(reply, "memory_committed_mb", hosts[i].memory_mb);
		reply_u64(reply, "available_mb", hosts[i].free_mb);
		reply_time(reply, "last_seen", hosts[i].last_seen_ms);
		if (hosts[i].fingerprint[0] != '\0')
			reply_str(reply, "certificate_sha256", "%s", hosts[i].fingerprint);
		if (hosts[i].reason[0] != '\0')
			reply_str(reply, "reason", "%s", hosts[i].reason);
		reply_object_end(reply);
	}
	reply_list_end(reply);
	free(hosts);
	return 0;
}

static int cmd_host_maintenance(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct center *c = ctx;
	const char *name = cli_arg(args, "name"), *state = cli_arg(args, "state");
	struct inventory_host h;

	if (strcmp(state, "on") != 0 && strcmp(state, "off") != 0)
		return reply_error(reply, -EINVAL, "maintenance: on or off, not '%.32s'", state);
	center_lock(c);
	int ret = inventory_host_get(center_store(c), name, &h);
	center_unlock(c);
	if (ret < 0)
		return reply_error(reply, -ENOENT, "no host %.64s (see 'host list')", name);
	return queued(c, reply, strcmp(state, "on") == 0 ? "maintenance-on" : "maintenance-off",
	              name, "");
}

static int cmd_vm_list(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct center *c = ctx;

	(void)args;
	struct inventory_vm *vms = calloc(LIST_MAX, sizeof(*vms));
	if (vms == NULL)
		return reply_error(reply, -ENOMEM, "out of memory");
	center_lock(c);
	int n = inventory_vms(center_store(c), NULL, vms, LIST_MAX);
	center_unlock(c);
	reply_list_begin(reply, "vms");
	for (int i = 0; i < n; i++) {
		reply_object_begin(reply, NULL);
		reply_str(reply, "name", "%s", vms[i].name);
		reply_str(reply, "host", "%s", vms[i].host);
		reply_str(reply, "state", "%s", vms[i].state);
		reply_u64(reply, "memory_mb", vms[i].memory_mb);
		reply_str(reply, "portgroup", "%s", vms[i].portgroup);
		if (vms[i].datastore[0] != '\0')
			reply_str(reply, "datastore", "%s", vms[i].datastore);
		reply_u64(reply, "dirty_rate", vms[i].dirty_rate);
		reply_object_end(reply);
	}
	reply_list_end(reply);
	free(vms);
	return 0;
}

static int cmd_datastore_add(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct center *c = ctx;
	const char *name = cli_arg(args, "name"), *path = cli_arg(args, "path");
	uint64_t lease_ns = 15 * 1000000000ull;
	char detail[INVENTORY_ADDRESS_MAX + 32];

	if (!name_ok(name))
		return bad_name(reply, "datastore name", name);
	if (path[0] != '/' || strlen(path) >= INVENTORY_ADDRESS_MAX || strchr(path, ' ') != NULL)
		return reply_error(reply, -EINVAL,
		                   "path: the absolute path every host mounts it at, no spaces");
	if (cli_arg_seconds(args, "lease", 1, 600, &lease_ns, reply) < 0)
		return -EINVAL;
	snprintf(detail, sizeof(detail), "%s %" PRIu64, path, (uint64_t)(lease_ns / 1000000000ull));
	return queued(c, reply, "datastore-add", name, detail);
}

static int cmd_datastore_list(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct center *c = ctx;

	(void)args;
	struct inventory_datastore *ds = calloc(LIST_MAX, sizeof(*ds));
	if (ds == NULL)
		return reply_error(reply, -ENOMEM, "out of memory");
	center_lock(c);
	int n = inventory_datastores(center_store(c), ds, LIST_MAX);
	center_unlock(c);
	reply_list_begin(reply, "datastores");
	for (int i = 0; i < n; i++) {
		reply_object_begin(reply, NULL);
		reply_str(reply, "name", "%s", ds[i].name);
		reply_str(reply, "path", "%s", ds[i].path);
		reply_u64(reply, "lease_s", ds[i].lease_s);
		reply_object_end(reply);
	}
	reply_list_end(reply);
	free(ds);
	return 0;
}

static int cmd_vmotion(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct center *c = ctx;
	const char *vm = cli_arg(args, "vm"), *host = cli_arg(args, "host");
	struct inventory_vm v;
	struct inventory_host h;

	center_lock(c);
	int vm_ret = inventory_vm_get(center_store(c), vm, &v);
	int host_ret = inventory_host_get(center_store(c), host, &h);
	center_unlock(c);
	if (vm_ret < 0)
		return reply_error(reply, -ENOENT, "no VM %.64s (see 'vm list')", vm);
	if (host_ret < 0)
		return reply_error(reply, -ENOENT, "no host %.64s (see 'host list')", host);
	if (h.maintenance)
		return reply_error(reply, -EPERM, "%s is in maintenance mode: it takes no VMs",
		                   host);
	if (strcmp(v.host, host) == 0)
		return reply_error(reply, -EALREADY, "%s runs on %s already", vm, host);
	return queued(c, reply, "vmotion", vm, host);
}

static int cmd_balance(void *ctx, const struct cli_args *args, struct reply *reply)
{
	return queued(ctx, reply, "balance", "cluster",
	              cli_arg(args, "dry-run") != NULL ? "dry-run" : "");
}

static void describe_task(struct reply *reply, const struct inventory_task *t)
{
	reply_u64(reply, "id", t->id);
	reply_str(reply, "kind", "%s", t->kind);
	reply_str(reply, "target", "%s", t->target);
	reply_str(reply, "state", "%s", t->state);
	reply_time(reply, "started", t->started_ms);
	reply_time(reply, "ended", t->ended_ms);
	if (t->ended_ms != 0)
		reply_double(reply, "seconds", (double)(t->ended_ms - t->started_ms) / 1e3, 3);
	reply_str(reply, "result", "%s", t->result);
}

static int cmd_tasks(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct center *c = ctx;
	uint64_t count = 20;

	if (cli_arg_u64(args, "count", 1, LIST_MAX, &count, reply) < 0)
		return -EINVAL;
	struct inventory_task *tasks = calloc(LIST_MAX, sizeof(*tasks));
	if (tasks == NULL)
		return reply_error(reply, -ENOMEM, "out of memory");
	center_lock(c);
	int n = inventory_tasks(center_store(c), tasks, (int)count);
	center_unlock(c);
	reply_list_begin(reply, "tasks");
	for (int i = 0; i < n; i++) {
		reply_object_begin(reply, NULL);
		describe_task(reply, &tasks[i]);
		reply_object_end(reply);
	}
	reply_list_end(reply);
	free(tasks);
	return 0;
}

static int cmd_task(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct center *c = ctx;
	struct inventory_task t;
	uint64_t id = 0;

	if (cli_arg_u64(args, "id", 1, UINT64_MAX, &id, reply) < 0)
		return -EINVAL;
	center_lock(c);
	int ret = inventory_task_get(center_store(c), id, &t);
	center_unlock(c);
	if (ret < 0)
		return reply_error(reply, -ENOENT, "no task %" PRIu64 " (see 'tasks')", id);
	describe_task(reply, &t);
	return 0;
}

static int cmd_events(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct center *c = ctx;
	uint64_t count = 20;

	if (cli_arg_u64(args, "count", 1, LIST_MAX, &count, reply) < 0)
		return -EINVAL;
	struct inventory_event *events = calloc(LIST_MAX, sizeof(*events));
	if (events == NULL)
		return reply_error(reply, -ENOMEM, "out of memory");
	center_lock(c);
	int n = inventory_events(center_store(c), events, (int)count);
	center_unlock(c);
	reply_list_begin(reply, "events");
	for (int i = 0; i < n; i++) {
		reply_object_begin(reply, NULL);
		reply_time(reply, "at", events[i].at_ms);
		reply_str(reply, "severity", "%s", events[i].severity);
		reply_str(reply, "object", "%s", events[i].object);
		reply_str(reply, "message", "%s", events[i].message);
		reply_object_end(reply);
	}
	reply_list_end(reply);
	free(events);
	return 0;
}

static int cmd_refresh(void *ctx, const struct cli_args *args, struct reply *reply)
{
	(void)args;
	center_refresh_soon(ctx);
	reply_str(reply, "refresh", "queued");
	return 0;
}

static int cmd_show_center(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct center *c = ctx;

	(void)args;
	center_lock(c);
	enum store_kind kind = store_kind(center_store(c));
	int version = store_schema_version(center_store(c));
	center_unlock(c);
	reply_str(reply, "version", "%s", FERRY_VERSION);
	reply_str(reply, "inventory", "%s", store_kind_name(kind));
	reply_u64(reply, "schema_version", (uint64_t)version);
	return 0;
}

static const struct cli_command center_commands[] = {
        {"host add <name> <address>",
         "add a host: its ferryd's UNIX socket, or host:port of its management port (TLS, "
         "with ferry-center's certificate); it takes the name, the cluster's datastores and "
         "vMotion key (a task)",
         cmd_host_add},
        {"host remove <name>", "forget a host that runs no VM", cmd_host_remove},
        {"host list", "hosts: state, maintenance, vMotion address, memory, last seen",
         cmd_host_list},
        {"host maintenance <name> <state>",
         "on: evacuate every VM to the other hosts (admitted by memory, a few at once) and "
         "take no more; off: take VMs again (a task)",
         cmd_host_maintenance},
        {"vm list", "every VM of every host, with its host and state", cmd_vm_list},
        {"datastore add <name> <path> [lease <seconds>]",
         "a datastore every host mounts at path, added to each (a task)", cmd_datastore_add},
        {"datastore list", "the cluster's datastores", cmd_datastore_list},
        {"vmotion <vm> <host>",
         "move a running VM to a host: the hosts' vMotion vmks, the cluster's key, the "
         "pre-flight check and the migration, followed to its end (a task)",
         cmd_vmotion},
        {"balance [dry-run]",
         "move VMs from the most to the least loaded host (memory committed; of equal moves, "
         "the VM that dirties memory slowest) until the spread is under the threshold, one "
         "recommendation at a time with its reason in the events; dry-run moves nothing (a "
         "task)",
         cmd_balance},
        {"tasks [count <n>]", "the latest tasks: what ran, when, its outcome", cmd_tasks},
        {"task <id>", "one task", cmd_task},
        {"events [count <n>]", "the latest events", cmd_events},
        {"refresh", "ask every host now", cmd_refresh},
        {"show center", "ferry-center's version and inventory", cmd_show_center},
};

int center_commands_register(struct cli_table *cli, struct center *center)
{
	return cli_table_register(cli, center_commands,
	                          sizeof(center_commands) / sizeof(center_commands[0]), center);
}
