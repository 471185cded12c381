/* One ferryd: the dataplane state the worker owns, and the command table that drives it. */
#include "ferryd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_log.h>

#include "commands.h"
#include "migrate_commands.h"
#include "vm_commands.h"
#include "vmk_commands.h"
#include "vswitch_commands.h"

static RTE_LOG_REGISTER(ferryd_logtype, ferry.ferryd, INFO);

#define FERRYD_LOG(level, fmt, ...)                                                                \
	rte_log(RTE_LOG_##level, ferryd_logtype, "ferryd: " fmt "\n", ##__VA_ARGS__)

struct guest *ferryd_guest_find(const struct ferryd *ferryd, const char *name)
{
	for (unsigned int i = 0; i < ferryd->nb_guests; i++)
		if (strcmp(ferryd->guests[i]->vm.name, name) == 0)
			return ferryd->guests[i];
	return NULL;
}

struct iface *ferryd_vmk_find(const struct ferryd *ferryd, const char *name)
{
	for (unsigned int i = 0; i < ferryd->nb_vmks; i++)
		if (strcmp(ferryd->vmks[i]->name, name) == 0)
			return ferryd->vmks[i];
	return NULL;
}

/* The migration engine's view of this host's VMs. */
static bool hook_vm_exists(void *ctx, const char *name, const struct rte_ether_addr *mac)
{
	struct ferryd *ferryd = ctx;

	if (name != NULL)
		return ferryd_guest_find(ferryd, name) != NULL;
	for (unsigned int i = 0; i < ferryd->nb_guests; i++)
		if (rte_is_same_ether_addr(&ferryd->guests[i]->vnic.netif.mac, mac))
			return true;
	return false;
}

static bool hook_vm_room(void *ctx)
{
	const struct ferryd *ferryd = ctx;

	return ferryd->nb_guests < FERRYD_MAX_VMS;
}

static void hook_vm_arrived(void *ctx, struct guest *guest)
{
	struct ferryd *ferryd = ctx;

	/* vm_room said yes at admission, and only the engine adds VMs between. */
	ferryd->guests[ferryd->nb_guests++] = guest;
}

void ferryd_guest_remove(struct ferryd *ferryd, struct guest *guest)
{
	for (unsigned int i = 0; i < ferryd->nb_guests; i++) {
		if (ferryd->guests[i] != guest)
			continue;
		memmove(&ferryd->guests[i], &ferryd->guests[i + 1],
		        (ferryd->nb_guests - i - 1) * sizeof(ferryd->guests[0]));
		ferryd->nb_guests--;
		break;
	}
	guest_destroy(guest);
	free(guest);
}

static void hook_vm_departed(void *ctx, struct guest *guest)
{
	ferryd_guest_remove(ctx, guest);
}

int ferryd_init(struct ferryd *ferryd, const struct ferryd_config *config)
{
	struct loop_backoff_config backoff;
	int ret;

	memset(ferryd, 0, sizeof(*ferryd));
	loop_backoff_config_default(&backoff);
	if (config->max_sleep_ns != 0)
		backoff.max_sleep_ns = config->max_sleep_ns;
	ret = loop_init(&ferryd->loop, &backoff, NULL, NULL);
	if (ret < 0)
		return ret;
	ferryd->start_ns = loop_now_ns(&ferryd->loop);
	/* Mempool names are process-wide; the address keeps two daemons in one test apart. */
	char prefix[16];
	snprintf(prefix, sizeof(prefix), "fd%lx", (unsigned long)((uintptr_t)ferryd & 0xffffff));
	pktpool_set_init(&ferryd->pools, prefix, config->mbuf_data_room, config->min_mbufs);
	port_table_init(&ferryd->ports);
	vmkping_table_init(&ferryd->pings, &ferryd->loop);
	ret = vswitch_host_init(&ferryd->vswitches, &ferryd->loop);
	struct migration_hooks hooks = {
	        .ctx = ferryd,
	        .vm_exists = hook_vm_exists,
	        .vm_room = hook_vm_room,
	        .vm_arrived = hook_vm_arrived,
	        .vm_departed = hook_vm_departed,
	};
	if (ret == 0)
		ret = migration_engine_init(&ferryd->migrations, &ferryd->loop, &ferryd->vswitches,
		                            &ferryd->pools, &hooks);
	if (ret == 0) {
		cli_table_init(&ferryd->cli);
		ret = commands_register(ferryd);
		if (ret == 0)
			ret = vswitch_commands_register(ferryd);
		if (ret == 0)
			ret = vmk_commands_register(ferryd);
		if (ret == 0)
			ret = vm_commands_register(ferryd);
		if (ret == 0)
			ret = migrate_commands_register(ferryd);
	}
	if (ret < 0)
		loop_fini(&ferryd->loop);
	return ret;
}

void ferryd_fini(struct ferryd *ferryd)
{
	vmkping_table_fini(&ferryd->pings);
	migration_engine_fini(&ferryd->migrations);
	while (ferryd->nb_guests > 0) {
		struct guest *guest = ferryd->guests[--ferryd->nb_guests];
		guest_destroy(guest);
		free(guest);
	}
	while (ferryd->nb_vmks > 0) {
		struct iface *vmk = ferryd->vmks[--ferryd->nb_vmks];
		iface_destroy(vmk);
		free(vmk);
	}
	vswitch_host_fini(&ferryd->vswitches);
	port_table_fini(&ferryd->ports);
	pktpool_set_fini(&ferryd->pools);
	loop_fini(&ferryd->loop);
}

int ferryd_uplink_add_rings(struct ferryd *ferryd, const char *name, struct rte_ring *rx,
                            struct rte_ring *tx, uint16_t mtu)
{
	struct port_config config;
	struct port *port = calloc(1, sizeof(*port));

	if (port == NULL)
		return -ENOMEM;
	if (ferryd->ports.nb_ports == PORT_MAX) {
		free(port);
		return -ENOSPC;
	}
	port_config_default(&config);
	config.mtu = mtu;
	int ret = port_open_rings(port, name, rx, tx, &config, &ferryd->pools);
	if (ret < 0) {
		free(port);
		return ret;
	}
	ferryd->ports.ports[ferryd->ports.nb_ports++] = port;
	ret = vswitch_port_attach(vswitch_find(&ferryd->vswitches, VSWITCH_DEFAULT_NAME), port,
	                          VSWITCH_ROLE_UPLINK, NULL, NULL);
	if (ret < 0)
		port_table_del(&ferryd->ports, port);
	return ret;
}

int ferryd_run_file(struct ferryd *ferryd, const char *path)
{
	struct cli_session session = {.format = REPLY_FORMAT_TEXT};
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t size = 0;
	unsigned int number = 0;
	int ret = 0;

	if (f == NULL) {
		ret = -errno;
		FERRYD_LOG(ERR, "%s: %s", path, strerror(errno));
		return ret;
	}
	ssize_t len;
	while ((len = getline(&line, &size, f)) >= 0) {
		number++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if ((size_t)len != strlen(line)) {
			FERRYD_LOG(ERR, "%s:%u: invalid byte 0x00", path, number);
			ret = -EINVAL;
			break;
		}
		struct reply *reply = reply_new();
		if (reply == NULL) {
			ret = -ENOMEM;
			break;
		}
		ret = cli_execute(&ferryd->cli, &session, line, reply);
		if (ret < 0) {
			FERRYD_LOG(ERR, "%s:%u: %s", path, number, reply_error_message(reply));
		} else {
			char *text = reply_render(reply, REPLY_FORMAT_TEXT, NULL);
			if (text != NULL && text[0] != '\0')
				FERRYD_LOG(INFO, "%s:%u: %s\n%s", path, number, line, text);
			free(text);
		}
		reply_free(reply);
		if (ret < 0)
			break;
	}
	free(line);
	fclose(f);
	return ret;
}
