/* One host: its ports and vswitches, vmks, VMs and migrations, on one worker loop. */
#include "host.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_log.h>

struct vm *host_vm_find(const struct host *host, const char *name)
{
	for (unsigned int i = 0; i < host->nb_vms; i++)
		if (strcmp(host->vms[i]->machine.name, name) == 0)
			return host->vms[i];
	return NULL;
}

struct iface *host_vmk_find(const struct host *host, const char *name)
{
	for (unsigned int i = 0; i < host->nb_vmks; i++)
		if (strcmp(host->vmks[i]->name, name) == 0)
			return host->vmks[i];
	return NULL;
}

struct vm *host_vm_find_mac(const struct host *host, const struct rte_ether_addr *mac)
{
	for (unsigned int i = 0; i < host->nb_vms; i++)
		if (rte_is_same_ether_addr(&host->vms[i]->vnic.netif.mac, mac))
			return host->vms[i];
	return NULL;
}

struct iface *host_vmk_on_subnet(const struct host *host, uint32_t ip)
{
	for (unsigned int i = 0; i < host->nb_vmks; i++) {
		const struct netif *n = &host->vmks[i]->netif;
		if ((n->ip & n->netmask) == (ip & n->netmask))
			return host->vmks[i];
	}
	return NULL;
}

/* Takes an element out of an array of pointers, keeping the order. */
static void remove_pointer(void **array, unsigned int *count, const void *element)
{
	for (unsigned int i = 0; i < *count; i++) {
		if (array[i] != element)
			continue;
		memmove(&array[i], &array[i + 1], (*count - i - 1) * sizeof(array[0]));
		(*count)--;
		return;
	}
}

int host_vm_add(struct host *host, struct vm *vm)
{
	if (host->nb_vms == HOST_MAX_VMS)
		return -ENOSPC;
	host->vms[host->nb_vms++] = vm;
	return 0;
}

int host_vmk_add(struct host *host, struct iface *vmk)
{
	if (host->nb_vmks == HOST_MAX_VMKS)
		return -ENOSPC;
	host->vmks[host->nb_vmks++] = vmk;
	netif_set_echo_handler(&vmk->netif, vmkping_on_echo, &host->pings);
	return 0;
}

void host_vmk_remove(struct host *host, struct iface *vmk)
{
	remove_pointer((void **)host->vmks, &host->nb_vmks, vmk);
	vmkping_forget_vmk(&host->pings, vmk);
	migration_unlisten(&host->migrations, vmk);
	iface_destroy(vmk);
	free(vmk);
}

/* The migration engine's view of this host's VMs. */
static bool hook_vm_exists(void *ctx, const char *name, const struct rte_ether_addr *mac)
{
	struct host *host = ctx;

	return name != NULL ? host_vm_find(host, name) != NULL
	                    : host_vm_find_mac(host, mac) != NULL;
}

static bool hook_vm_room(void *ctx)
{
	const struct host *host = ctx;

	return host->nb_vms < HOST_MAX_VMS;
}

static void hook_vm_arrived(void *ctx, struct vm *vm)
{
	struct host *host = ctx;

	/* vm_room said yes at admission, and only the engine adds VMs between. */
	host_vm_add(host, vm);
}

void host_vm_remove(struct host *host, struct vm *vm)
{
	remove_pointer((void **)host->vms, &host->nb_vms, vm);
	migration_forget_vm(&host->migrations, vm);
	vm_destroy(vm);
	free(vm);
}

static void hook_vm_departed(void *ctx, struct vm *vm)
{
	host_vm_remove(ctx, vm);
}

static int hook_disk_place(void *ctx, const char *datastore, const char *vm_name, char *path,
                           struct vm_disk_place *place)
{
	struct host *host = ctx;
	const struct host_datastore *ds = host_datastore_find(host, datastore);

	if (ds == NULL)
		return -ENOENT;
	int ret = host_disk_path(ds, vm_name, path, PATH_MAX);
	if (ret < 0)
		return ret;
	*place = (struct vm_disk_place){
	        .datastore = ds->name, .path = path, .owner = host->name, .lease_ns = ds->lease_ns};
	return 0;
}

static uint32_t hook_available_mb(void *ctx, enum machine_backing backing)
{
	(void)ctx;
	return host_available_mb(backing);
}

void host_capture_end(struct host *host)
{
	if (host->capture == NULL)
		return;
	capture_detach(host->capture);
	/* Workers may still be inside it until they next go round their loop. */
	vswitch_workers_park(&host->vswitches);
	capture_finish(host->capture);
}

int host_disk_path(const struct host_datastore *ds, const char *vm_name, char *path, size_t size)
{
	int n = snprintf(path, size, "%s/%s/%s-flat.vmdk", ds->path, vm_name, vm_name);

	return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

struct host_datastore *host_datastore_find(struct host *host, const char *name)
{
	for (unsigned int i = 0; i < host->nb_datastores; i++)
		if (strcmp(host->datastores[i].name, name) == 0)
			return &host->datastores[i];
	return NULL;
}

int host_init(struct host *host, const struct host_config *config)
{
	struct loop_backoff_config backoff;
	int ret;

	memset(host, 0, sizeof(*host));
	loop_backoff_config_default(&backoff);
	if (config->max_sleep_ns != 0)
		backoff.max_sleep_ns = config->max_sleep_ns;
	ret = loop_init(&host->loop, &backoff, NULL, NULL);
	if (ret < 0)
		return ret;
	host->start_ns = loop_now_ns(&host->loop);
	if (gethostname(host->name, sizeof(host->name)) < 0 || host->name[0] == '\0')
		snprintf(host->name, sizeof(host->name), "ferryd");
	host->name[sizeof(host->name) - 1] = '\0';
	/* Mempool names are process-wide; the address keeps two daemons in one test apart. */
	char prefix[16];
	snprintf(prefix, sizeof(prefix), "fd%lx", (unsigned long)((uintptr_t)host & 0xffffff));
	pktpool_set_init(&host->pools, prefix, config->mbuf_data_room, config->min_mbufs);
	port_table_init(&host->ports);
	vmkping_table_init(&host->pings, &host->loop);
	ret = vswitch_table_init(&host->vswitches, &host->loop, config->nb_workers);
	struct migration_hooks hooks = {
	        .ctx = host,
	        .vm_exists = hook_vm_exists,
	        .vm_room = hook_vm_room,
	        .vm_arrived = hook_vm_arrived,
	        .vm_departed = hook_vm_departed,
	        .available_mb = hook_available_mb,
	        .disk_place = hook_disk_place,
	};
	if (ret == 0)
		ret = migration_engine_init(&host->migrations, &host->loop, &host->vswitches,
		                            &host->pools, &hooks);
	if (ret < 0)
		loop_fini(&host->loop);
	return ret;
}

void host_fini(struct host *host)
{
	vswitch_workers_stop(&host->vswitches);
	if (host->capture != NULL) {
		capture_detach(host->capture);
		capture_free(host->capture);
		host->capture = NULL;
	}
	vmkping_table_fini(&host->pings);
	migration_engine_fini(&host->migrations);
	while (host->nb_vms > 0) {
		struct vm *vm = host->vms[--host->nb_vms];
		vm_destroy(vm);
		free(vm);
	}
	while (host->nb_vmks > 0) {
		struct iface *vmk = host->vmks[--host->nb_vmks];
		iface_destroy(vmk);
		free(vmk);
	}
	vswitch_table_fini(&host->vswitches);
	port_table_fini(&host->ports);
	pktpool_set_fini(&host->pools);
	loop_fini(&host->loop);
}

int host_uplink_add_rings(struct host *host, const char *name, struct rte_ring *rx,
                          struct rte_ring *tx, uint16_t mtu)
{
	struct port_config config;
	struct port *port;

	port_config_default(&config);
	config.mtu = mtu;
	config.nb_workers = (uint16_t)host->vswitches.nb_workers;
	int ret = port_table_add_rings(&host->ports, name, rx, tx, &config, &host->pools, &port);
	if (ret < 0)
		return ret;
	ret = vswitch_port_attach(vswitch_find(&host->vswitches, VSWITCH_DEFAULT_NAME), port,
	                          VSWITCH_ROLE_UPLINK, NULL, NULL);
	if (ret < 0)
		port_table_del(&host->ports, port);
	return ret;
}

/* MemAvailable, or the hugetlb pool's free pages, in MiB: what the pre-flight check and admission
 * compare a VM's size with. */
uint32_t host_available_mb(enum machine_backing backing)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	unsigned long available_kb = 0, free_pages = 0, page_kb = 0;

	if (f == NULL)
		return UINT32_MAX;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "MemAvailable: %lu kB", &available_kb) == 1 ||
		    sscanf(line, "HugePages_Free: %lu", &free_pages) == 1)
			continue;
		(void)sscanf(line, "Hugepagesize: %lu kB", &page_kb);
	}
	fclose(f);
	/* No pool (or a kernel that does not say): no room for a hugepage-backed VM. */
	if (backing == MACHINE_BACKING_HUGETLB)
		return (uint32_t)(free_pages * page_kb / 1024);
	return available_kb == 0 ? UINT32_MAX : (uint32_t)(available_kb / 1024);
}

int host_key_load(const char *path, uint8_t *key, uint16_t size, char *why, size_t why_size)
{
	struct stat st;

	/* A key a manager provisions over the management channel, never written to disk. */
	if (strncmp(path, HOST_KEY_INLINE, strlen(HOST_KEY_INLINE)) == 0) {
		size_t len = strlen(path + strlen(HOST_KEY_INLINE));
		if (len < MIGRATION_KEY_MIN || len > size) {
			snprintf(why, why_size, "give %d to %d bytes", MIGRATION_KEY_MIN, size);
			return -EINVAL;
		}
		memcpy(key, path + strlen(HOST_KEY_INLINE), len);
		return (int)len;
	}
	/* No symlink: the daemon runs as root, and a client names the path. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	if (fd < 0) {
		int err = errno;
		snprintf(why, why_size, "%s",
		         err == ELOOP ? "a symbolic link (name the file itself)" : strerror(err));
		return -err;
	}
	int ret = 0;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		snprintf(why, why_size, "%s", strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		snprintf(why, why_size, "not a regular file");
	} else if (st.st_uid != 0 && st.st_uid != geteuid()) {
		ret = -EPERM;
		snprintf(why, why_size, "owned by uid %u, not by root", (unsigned int)st.st_uid);
	} else if ((st.st_mode & 077) != 0) {
		/* As ssh does with its keys: a shared key nobody else may read or change. */
		ret = -EPERM;
		snprintf(why, why_size, "mode %04o lets group or others in (chmod 600 it)",
		         (unsigned int)(st.st_mode & 07777));
	}
	if (ret < 0) {
		close(fd);
		return ret;
	}
	ssize_t len = read(fd, key, size);
	int err = errno;
	uint8_t extra;
	ssize_t more = len >= 0 ? read(fd, &extra, 1) : 0;
	close(fd);
	if (len < 0) {
		snprintf(why, why_size, "%s", strerror(err));
		return -err;
	}
	while (len > 0 && (key[len - 1] == '\n' || key[len - 1] == '\r'))
		len--;
	if (more > 0 || len < MIGRATION_KEY_MIN) {
		snprintf(why, why_size, "give %d to %d bytes", MIGRATION_KEY_MIN,
		         MIGRATION_KEY_MAX);
		return -EINVAL;
	}
	return (int)len;
}
