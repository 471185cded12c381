/* ferryd's VM commands: vm create/list/show/pause/resume/destroy. */
#include "vm_commands.h"

#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_ether.h>

#include "cli/cli.h"
#include "host/host.h"
#include "lookup.h"
#include "migrate/proto.h"
#include "vm/vm_kvm.h"

/* A VM no migration holds: pause, resume and destroy leave a migrating one to the engine. */
static struct vm *find_idle_vm(struct host *host, const char *name, struct reply *reply)
{
	struct vm *vm = lookup_vm(host, name, reply);

	if (vm != NULL && migration_vm_busy(&host->migrations, vm)) {
		reply_error(reply, -EBUSY, "VM '%s' is migrating (see 'migrate status')",
		            vm->machine.name);
		return NULL;
	}
	return vm;
}

/* A VM's configuration file on its datastore (<vm>.vmx beside its disk), "key = value" lines:
 * what `vm create` was given, under the names the file uses and the arguments they stand for.
 * `vm register` reads it back through the same checks as a typed command. */
static const struct {
	const char *key, *arg;
} vmx_keys[] = {
        {"name", "name"},
        {"memory_mb", "mib"},
        {"mac", "mac"},
        {"ip", "address"},
        {"portgroup", "portgroup"},
        {"workload", "workload"},
        {"encryption", "encryption"},
        {"hugepages", "hugepages"},
        {"backend", "backend"},
        {"disk_mib", "disk-mib"},
};

#define VMX_KEYS  (sizeof(vmx_keys) / sizeof(vmx_keys[0]))
#define VMX_LINE  512
#define VMX_LINES 32

static int vmx_path(char *out, size_t size, const struct host_datastore *ds, const char *vm)
{
	int n = snprintf(out, size, "%s/%s/%s.vmx", ds->path, vm, vm);

	return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

/* Writes the file whole (a new one renamed over the old): a host that reads it never sees half. */
static int vmx_write(const struct host_datastore *ds, const char *vm, const struct cli_args *args)
{
	char path[PATH_MAX], next[PATH_MAX + 8];

	if (vmx_path(path, sizeof(path), ds, vm) < 0)
		return -ENAMETOOLONG;
	snprintf(next, sizeof(next), "%s.new", path);
	FILE *f = fopen(next, "we");
	if (f == NULL)
		return -errno;
	fprintf(f,
	        "# ferry VM configuration: 'vm register %s datastore %s' on any host that mounts "
	        "%s\n",
	        vm, ds->name, ds->name);
	for (unsigned int k = 0; k < VMX_KEYS; k++) {
		const char *value = cli_arg(args, vmx_keys[k].arg);
		if (value != NULL)
			fprintf(f, "%s = %s\n", vmx_keys[k].key, value);
	}
	int ret = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -EIO;
	fclose(f);
	if (ret == 0 && rename(next, path) < 0)
		ret = -errno;
	if (ret < 0)
		unlink(next);
	return ret;
}

/* vm create, typed or registered from the VM's files (then its configuration is there already). */
static int create_vm(struct host *host, const struct cli_args *args, bool registered,
                     struct reply *reply)
{
	struct vm_config config = {.name = cli_arg(args, "name")};
	uint64_t memory_mb = 0;

	if (strlen(config.name) >= VM_NAME_MAX)
		return reply_error(reply, -ENAMETOOLONG, "name too long (at most %d bytes)",
		                   VM_NAME_MAX - 1);
	if (host_vm_find(host, config.name) != NULL)
		return reply_error(reply, -EEXIST, "VM '%s' exists already", config.name);
	if (host->nb_vms == HOST_MAX_VMS)
		return reply_error(reply, -ENOSPC, "at most %d VMs", HOST_MAX_VMS);
	if (cli_arg_size(args, "mib", 1u << 20, 1, VM_MAX_MEMORY_MB, &memory_mb, reply) < 0)
		return -EINVAL;
	config.memory_mb = memory_mb;
	if (cli_arg_mac(args, "mac", true, &config.mac, reply) < 0 ||
	    cli_arg_ipv4_prefix(args, "address", NULL, &config.ip, &config.prefix_len, reply) < 0)
		return -EINVAL;
	int encryption = VM_ENCRYPTION_REQUIRED;
	if (lookup_encryption(cli_arg(args, "encryption"), &encryption, reply) < 0)
		return -EINVAL;
	config.encryption = (enum vm_encryption)encryption;
	bool hugepages = false;
	if (cli_arg_bool(args, "hugepages", &hugepages, reply) < 0)
		return -EINVAL;
	config.backing = hugepages ? MACHINE_BACKING_HUGETLB : MACHINE_BACKING_ANONYMOUS;
	const char *backend = cli_arg(args, "backend");
	if (backend != NULL && vm_backend_parse(backend, &config.backend) < 0)
		return reply_error(reply, -EINVAL, "backend: '%.32s' (synthetic|kvm)", backend);
	const char *spec = cli_arg(args, "workload");
	if (vm_workload_parse(spec != NULL ? spec : "uniform,rate=1000", &config.workload) < 0)
		return reply_error(reply, -EINVAL,
		                   "workload: '%.64s' (uniform|hotcold|sequential[,rate=N|max]"
		                   "[,ws=PAGES][,seed=N][,fill=PERCENT])",
		                   spec);
	const struct vm *same_mac = host_vm_find_mac(host, &config.mac);
	if (same_mac != NULL)
		return reply_error(reply, -EEXIST, "VM '%s' has that MAC already",
		                   same_mac->machine.name);
	struct vswitch_portgroup *pg = lookup_portgroup(host, cli_arg(args, "portgroup"), reply);
	if (pg == NULL)
		return -ENOENT;
	struct host_datastore *ds = NULL;
	uint64_t disk_mb = 64;
	char disk[PATH_MAX];
	if (cli_arg(args, "datastore") != NULL) {
		ds = host_datastore_find(host, cli_arg(args, "datastore"));
		if (ds == NULL)
			return reply_error(reply, -ENOENT,
			                   "no datastore '%.64s' (see 'show datastores')",
			                   cli_arg(args, "datastore"));
		if (cli_arg_size(args, "disk-mib", 1u << 20, 1, VM_DISK_MAX_MB, &disk_mb, reply) <
		    0)
			return -EINVAL;
		/* As vSphere lays a VM out: a folder of its own, the flat disk in it. */
		char folder[PATH_MAX];
		if (host_disk_path(ds, config.name, disk, sizeof(disk)) < 0)
			return reply_error(reply, -ENAMETOOLONG, "datastore path too long");
		snprintf(folder, sizeof(folder), "%s", disk);
		*strrchr(folder, '/') = '\0';
		if (mkdir(folder, 0755) < 0 && errno != EEXIST)
			return reply_error(reply, -errno, "cannot make %s: %s", folder,
			                   strerror(errno));
	} else if (cli_arg(args, "disk-mib") != NULL) {
		return reply_error(reply, -EINVAL, "disk-mib needs a datastore");
	}
	struct vm *vm = vm_alloc();
	if (vm == NULL)
		return reply_error(reply, -ENOMEM, "out of memory");
	/* A VM of this MAC that left moments ago may still have it held here: no longer. */
	migration_mac_in_use(&host->migrations, &config.mac);
	int ret = vm_create(vm, &host->vswitches, pg, &config, &host->pools);
	if (ret < 0) {
		free(vm);
		return reply_error(reply, ret, "cannot create VM '%s': %s%s", config.name,
		                   strerror(-ret),
		                   ret == -ENOMEM && hugepages
		                           ? " (too few free hugepages: see HugePages_Free in "
		                             "/proc/meminfo)"
		                           : "");
	}
	if (ds != NULL) {
		struct disklock_holder holder;
		struct vm_disk_place place = {.datastore = ds->name,
		                              .path = disk,
		                              .mb = disk_mb,
		                              .owner = host->name,
		                              .lease_ns = ds->lease_ns};
		ret = vm_disk_attach(vm, &place, &holder);
		if (ret < 0) {
			vm_destroy(vm);
			free(vm);
			if (ret == -EBUSY)
				return reply_error(
				        reply, ret,
				        "disk %s is locked by %s (pid %ld), its heartbeat %.1f s "
				        "old: the VM runs there",
				        disk, holder.owner, holder.pid,
				        (double)holder.heartbeat_age_ns / 1e9);
			return reply_error(reply, ret, "cannot open disk %s: %s", disk,
			                   strerror(-ret));
		}
	}
	/* Its configuration beside its disk, unless it came from there. */
	if (ds != NULL && !registered && (ret = vmx_write(ds, config.name, args)) < 0) {
		vm_destroy(vm);
		free(vm);
		return reply_error(reply, ret, "cannot write the VM's configuration on %s: %s",
		                   ds->name, strerror(-ret));
	}
	host_vm_add(host, vm); /* room was checked above */
	/* Created and started, as `vim-cmd vmsvc/power.on` would follow the registration. */
	vm_resume(vm);
	/* A vm that boots says where it is, as an OS's gratuitous ARP does. */
	netif_announce(&vm->vnic.netif);
	reply_str(reply, "vm", "%s", vm->machine.name);
	reply_u64(reply, "memory_mb", memory_mb);
	reply_str(reply, "state", "running");
	return 0;
}

/* The VM's TCP: its counters, each drop reason seen, and every connection in its memory. */
static void describe_tcp(struct reply *reply, const struct tcp *tcp)
{
	char ip[16];

	reply_u64(reply, "tcp_segments_rx", tcp->stats.segments_rx);
	reply_u64(reply, "tcp_segments_tx", tcp->stats.segments_tx);
	reply_u64(reply, "tcp_retransmits", tcp->stats.retransmits);
	reply_u64(reply, "tcp_segments_held", tcp->stats.segments_held);
	if (tcp->stats.blocks_discarded != 0)
		reply_u64(reply, "tcp_blocks_discarded", tcp->stats.blocks_discarded);
	reply_u64(reply, "tcp_resets_tx", tcp->stats.resets_tx);
	reply_u64(reply, "tcp_connections_opened", tcp->stats.connections);
	for (unsigned int r = 0; r < TCP_DROP_MAX; r++)
		if (tcp->stats.drops[r] != 0) {
			char name[40];
			snprintf(name, sizeof(name), "tcp_drop_%s", tcp_drop_names[r]);
			reply_u64(reply, name, tcp->stats.drops[r]);
		}
	reply_list_begin(reply, "tcp_connections");
	for (unsigned int i = 0; i < TCP_CONNECTIONS; i++) {
		const struct tcp_tcb *tcb = tcp_connection(tcp, i);
		if (tcb->state == TCP_FREE)
			continue;
		reply_object_begin(reply, NULL);
		reply_u64(reply, "port", tcb->local_port);
		reply_str(reply, "peer", "%s:%u", netif_format_ipv4(tcb->remote_ip, ip, sizeof(ip)),
		          rte_be_to_cpu_16(tcb->remote_port));
		reply_str(reply, "state", "%s", tcp_state_name((enum tcp_state)tcb->state));
		reply_u64(reply, "unacknowledged", tcb->snd_nxt - tcb->snd_una);
		reply_u64(reply, "send_buffer", tcb->tx_len);
		reply_u64(reply, "receive_buffer", tcb->rx_len);
		reply_u64(reply, "peer_window", tcb->snd_wnd);
		reply_u64(reply, "rto_ms", tcb->rto_ms);
		if (tcb->local_port == TCP_COUNTER_PORT)
			reply_u64(reply, "total", tcb->total);
		reply_object_end(reply);
	}
	reply_list_end(reply);
}

static void describe(struct reply *reply, const struct vm *g, bool full)
{
	char ip[16], mac[RTE_ETHER_ADDR_FMT_SIZE];
	const struct netif *n = &g->vnic.netif;

	rte_ether_format_addr(mac, sizeof(mac), &n->mac);
	reply_str(reply, "name", "%s", g->machine.name);
	reply_str(reply, "state", "%s", g->machine.state == MACHINE_RUNNING ? "running" : "paused");
	reply_u64(reply, "memory_mb", g->machine.nb_pages * VM_PAGE_SIZE / (1024 * 1024));
	reply_str(reply, "memory_backing", "%s", machine_backing_name(g->machine.backing));
	reply_str(reply, "backend", "%s", vm_backend_name(g->backend));
	reply_str(reply, "ip", "%s/%u", netif_format_ipv4(n->ip, ip, sizeof(ip)), n->prefix_len);
	reply_str(reply, "mac", "%s", mac);
	reply_str(reply, "portgroup", "%s", g->vnic.vport->portgroup->name);
	reply_str(reply, "encryption", "%s",
	          proto_encryption_name((enum proto_encryption)g->encryption));
	if (g->disk.fd >= 0) {
		reply_str(reply, "disk", "%s", g->disk.path);
		reply_str(reply, "datastore", "%s", g->disk.datastore);
		reply_u64(reply, "disk_mib", g->disk.blocks * VM_SYNTHETIC_DISK_BLOCK >> 20);
		reply_u64(reply, "disk_writes", g->disk.writes);
		reply_str(reply, "disk_lock", "%s", g->disk.lost ? "lost" : g->disk.lock.owner);
	}
	reply_u64(reply, "dirty_rate", g->machine.stats.dirty_rate);
	if (!full)
		return;
	reply_str(reply, "postcopy", "%s", g->postcopy_off ? "off" : "on");
	if (g->machine.remote.absent != NULL) {
		/* Running at a post-copy destination: pages still to come, and the vCPU's wait. */
		reply_u64(reply, "pages_absent", g->machine.remote.nb_absent);
		reply_bool(reply, "stalled", machine_stalled(&g->machine));
	}
	reply_str(reply, "workload", "%s", vm_pattern_name(g->workload.pattern));
	if (g->workload.idle)
		reply_u64(reply, "rate", 0);
	else if (g->workload.rate != 0)
		reply_u64(reply, "rate", g->workload.rate);
	else
		reply_str(reply, "rate", "max");
	reply_u64(reply, "working_set_pages", g->workload.working_set_pages);
	reply_u64(reply, "steps", machine_step(&g->machine));
	if (g->backend == VM_BACKEND_KVM) {
		struct vm_kvm_log_stats log = vm_kvm_log_stats(&g->machine);
		reply_u64(reply, "kvm_exits", vm_kvm_exits(&g->machine));
		reply_u64(reply, "kvm_dirty_log_reads", log.reads);
		reply_u64(reply, "kvm_dirty_log_read_us", log.read_ns / 1000);
		struct vm_kvm_fault_stats faults = vm_kvm_fault_stats(&g->machine);
		reply_u64(reply, "kvm_userfaults", faults.faults);
		reply_u64(reply, "kvm_userfaults_page_here", faults.resolved);
	}
	reply_u64(reply, "pages", g->machine.nb_pages);
	reply_u64(reply, "pages_touched", g->machine.stats.pages_touched);
	reply_u64(reply, "pages_written", g->machine.stats.pages_written);
	reply_u64(reply, "throttle_percent", g->machine.throttle_percent);
	reply_u64(reply, "udp_counter", vm_counter(g));
	reply_u64(reply, "rx_packets", n->counters.rx_packets);
	reply_u64(reply, "tx_packets", n->counters.tx_packets);
	uint64_t drops = 0;
	for (unsigned int r = 0; r < NETIF_DROP_MAX; r++)
		drops += n->counters.drops[r];
	reply_u64(reply, "drops", drops);
	if (g->nb_rx_waiting != 0 || g->rx_dropped != 0) {
		reply_u64(reply, "frames_waiting", g->nb_rx_waiting);
		reply_u64(reply, "frames_wait_dropped", g->rx_dropped);
	}
	if (g->tcp_on)
		describe_tcp(reply, &g->tcp);
}

/* vm register: a VM from its files on a datastore, as vSphere registers a .vmx. Every value is
 * checked by vm create's own checks, as if typed: the file is anyone's to write. */
static int cmd_vm_register(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	const char *name = cli_arg(args, "name");
	struct host_datastore *ds = host_datastore_find(host, cli_arg(args, "datastore"));
	char path[PATH_MAX], lines[VMX_LINES][VMX_LINE];
	struct cli_args create = {0};

	if (ds == NULL)
		return reply_error(reply, -ENOENT, "no datastore '%.64s' (see 'show datastores')",
		                   cli_arg(args, "datastore"));
	if (strlen(name) >= VM_NAME_MAX || strchr(name, '/') != NULL || name[0] == '.' ||
	    vmx_path(path, sizeof(path), ds, name) < 0)
		return reply_error(reply, -EINVAL,
		                   "VM name '%.64s': no '/', not hidden, at most %d "
		                   "bytes",
		                   name, VM_NAME_MAX - 1);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return reply_error(reply, -errno, "no configuration %s: %s", path, strerror(errno));
	unsigned int nb_lines = 0, line_no = 0;
	int ret = 0;
	while (ret == 0 && fgets(lines[nb_lines], VMX_LINE, f) != NULL) {
		char *line = lines[nb_lines];
		line_no++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			ret = reply_error(reply, -EINVAL, "%s:%u: longer than %d bytes", path,
			                  line_no, VMX_LINE - 1);
			break;
		}
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[strspn(line, " \t")] == '\0')
			continue;
		char *eq = strstr(line, " = ");
		unsigned int k = 0;
		if (eq != NULL) {
			*eq = '\0';
			for (; k < VMX_KEYS && strcmp(line, vmx_keys[k].key) != 0; k++)
				;
		}
		if (eq == NULL || k == VMX_KEYS || cli_arg(&create, vmx_keys[k].arg) != NULL ||
		    nb_lines + 1 == VMX_LINES) {
			ret = reply_error(reply, -EINVAL,
			                  "%s:%u: not 'key = value' with a known key, once", path,
			                  line_no);
			break;
		}
		create.names[create.nb_values] = vmx_keys[k].arg;
		create.values[create.nb_values++] = eq + 3;
		nb_lines++;
	}
	fclose(f);
	if (ret < 0)
		return ret;
	const char *named = cli_arg(&create, "name");
	if (named == NULL || strcmp(named, name) != 0)
		return reply_error(reply, -EINVAL, "%s names the VM '%.64s', not '%s'", path,
		                   named != NULL ? named : "", name);
	static const char *const required[] = {"mib", "mac", "address", "portgroup"};
	for (unsigned int i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (cli_arg(&create, required[i]) == NULL)
			return reply_error(reply, -EINVAL, "%s lacks its %s", path, required[i]);
	create.names[create.nb_values] = "datastore";
	create.values[create.nb_values++] = ds->name;
	create.session = args->session;
	return create_vm(host, &create, true, reply);
}

static int cmd_vm_create(void *ctx, const struct cli_args *args, struct reply *reply)
{
	return create_vm(ctx, args, false, reply);
}

static int cmd_vm_list(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;

	(void)args;
	reply_list_begin(reply, "vms");
	for (unsigned int i = 0; i < host->nb_vms; i++) {
		reply_object_begin(reply, NULL);
		describe(reply, host->vms[i], false);
		reply_object_end(reply);
	}
	reply_list_end(reply);
	return 0;
}

static int cmd_vm_show(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct vm *g = lookup_vm(ctx, cli_arg(args, "name"), reply);

	if (g == NULL)
		return -ENOENT;
	describe(reply, g, true);
	return 0;
}

static int cmd_vm_pause(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct vm *g = find_idle_vm(ctx, cli_arg(args, "name"), reply);

	if (g == NULL)
		return -ENOENT;
	vm_pause(g);
	return 0;
}

static int cmd_vm_resume(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct vm *g = find_idle_vm(ctx, cli_arg(args, "name"), reply);

	if (g == NULL)
		return -ENOENT;
	vm_resume(g);
	return 0;
}

static int cmd_vm_destroy(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct vm *g = find_idle_vm(host, cli_arg(args, "name"), reply);

	if (g == NULL)
		return -ENOENT;
	host_vm_remove(host, g);
	return 0;
}

static int cmd_vm_set(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct vm *g = lookup_vm(host, cli_arg(args, "name"), reply);
	int encryption;

	if (g == NULL)
		return -ENOENT;
	encryption = (int)g->encryption;
	if (lookup_encryption(cli_arg(args, "policy"), &encryption, reply) < 0)
		return -EINVAL;
	/* Read when a migration starts: one under way keeps the policy it began with. */
	g->encryption = (enum vm_encryption)encryption;
	describe(reply, g, false);
	return 0;
}

static int cmd_vm_set_postcopy(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct vm *g = lookup_vm(host, cli_arg(args, "name"), reply);
	bool on = true;

	if (g == NULL)
		return -ENOENT;
	if (cli_arg_bool(args, "state", &on, reply) < 0)
		return -EINVAL;
	if (on && g->backend == VM_BACKEND_KVM && !vm_kvm_postcopy_capable(&g->machine))
		return reply_error(reply, -EPERM, "VM '%s' " VM_KVM_PRECOPY_ONLY, g->machine.name);
	/* Read when a migration starts, and carried with the VM to every host it moves to. */
	g->postcopy_off = !on;
	describe(reply, g, false);
	return 0;
}

static int cmd_vm_announce(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct vm *g = lookup_vm(host, cli_arg(args, "name"), reply);
	struct announce_config config;
	uint64_t rounds, initial, step;

	if (g == NULL)
		return -ENOENT;
	announce_config_default(&config);
	rounds = config.rounds;
	initial = config.initial_ns / 1000000;
	step = config.step_ns / 1000000;
	if (cli_arg_u64(args, "rounds", 1, 100, &rounds, reply) < 0 ||
	    cli_arg_u64(args, "initial", 1, 100000, &initial, reply) < 0 ||
	    cli_arg_u64(args, "step", 0, 100000, &step, reply) < 0)
		return -EINVAL;
	config.rounds = (uint32_t)rounds;
	config.initial_ns = initial * 1000000;
	config.step_ns = step * 1000000;
	config.garp = cli_arg(args, "garp") != NULL;
	int ret = announce_start(&g->announce, &g->vnic, &host->loop, &config);
	if (ret < 0)
		return reply_error(reply, ret, "cannot announce: %s", strerror(-ret));
	reply_str(reply, "vm", "%s", g->machine.name);
	reply_u64(reply, "rounds", rounds);
	reply_u64(reply, "initial_ms", initial);
	reply_u64(reply, "step_ms", step);
	return 0;
}

static int cmd_host_name(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	const char *name = cli_arg(args, "name");

	if (strlen(name) == 0 || strlen(name) >= HOST_NAME_LEN ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") !=
	            strlen(name))
		return reply_error(reply, -EINVAL,
		                   "host name: letters, digits, '.', '-' and '_', at most %d bytes",
		                   HOST_NAME_LEN - 1);
	for (unsigned int i = 0; i < host->nb_vms; i++)
		if (host->vms[i]->disk.fd >= 0)
			return reply_error(
			        reply, -EBUSY,
			        "%s holds its disk's lock as %s: the name stays while a VM "
			        "has a disk",
			        host->vms[i]->machine.name, host->name);
	snprintf(host->name, sizeof(host->name), "%s", name);
	reply_str(reply, "host", "%s", host->name);
	return 0;
}

/* What a manager (ferry-center) asks a host for: its name, its VMs' committed memory, what it
 * can still give, and where it takes migrations. */
static int cmd_show_host(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	uint64_t committed = 0;
	char ip[16];

	(void)args;
	for (unsigned int i = 0; i < host->nb_vms; i++)
		committed += host->vms[i]->machine.nb_pages * VM_PAGE_SIZE >> 20;
	reply_str(reply, "name", "%s", host->name);
	reply_u64(reply, "vms", host->nb_vms);
	reply_u64(reply, "memory_committed_mb", committed);
	reply_u64(reply, "available_mb", host_available_mb(MACHINE_BACKING_ANONYMOUS));
	reply_list_begin(reply, "vmotion");
	for (unsigned int i = 0; i < MIGRATION_LISTENERS; i++) {
		const struct migration_listener *l = &host->migrations.listeners[i];
		if (l->vmk == NULL)
			continue;
		reply_object_begin(reply, NULL);
		reply_str(reply, "vmk", "%s", l->vmk->name);
		reply_str(reply, "ip", "%s", netif_format_ipv4(l->vmk->netif.ip, ip, sizeof(ip)));
		reply_u64(reply, "port", l->port);
		reply_object_end(reply);
	}
	reply_list_end(reply);
	reply_list_begin(reply, "portgroups");
	for (unsigned int i = 0; i < host->vswitches.nb_portgroups; i++)
		reply_str(reply, NULL, "%s", host->vswitches.portgroups[i]->name);
	reply_list_end(reply);
	return 0;
}

static int cmd_datastore_add(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	const char *name = cli_arg(args, "name"), *path = cli_arg(args, "path");
	struct stat st;
	uint64_t lease_ns = 15 * 1000000000ull;

	/* The name travels in a migration's HELLO (PROTO_NAME_LEN bytes). */
	if (strlen(name) >= VM_NAME_MAX || strlen(path) >= PATH_MAX || path[0] != '/')
		return reply_error(reply, -EINVAL,
		                   "datastore: a name of at most %d bytes and an "
		                   "absolute path",
		                   VM_NAME_MAX - 1);
	if (host_datastore_find(host, name) != NULL)
		return reply_error(reply, -EEXIST, "datastore '%s' exists already", name);
	if (host->nb_datastores == HOST_MAX_DATASTORES)
		return reply_error(reply, -ENOSPC, "at most %d datastores", HOST_MAX_DATASTORES);
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode) || access(path, W_OK) < 0)
		return reply_error(reply, -ENOTDIR, "%s is not a folder this host can write", path);
	if (cli_arg_seconds(args, "lease", 1, 600, &lease_ns, reply) < 0)
		return -EINVAL;
	struct host_datastore *ds = &host->datastores[host->nb_datastores++];
	snprintf(ds->name, sizeof(ds->name), "%s", name);
	snprintf(ds->path, sizeof(ds->path), "%s", path);
	ds->lease_ns = lease_ns;
	reply_str(reply, "datastore", "%s", ds->name);
	return 0;
}

/* The VMs with a disk on a datastore. */
static unsigned int datastore_disks(const struct host *host, const struct host_datastore *ds)
{
	unsigned int n = 0;
	size_t len = strlen(ds->path);

	for (unsigned int i = 0; i < host->nb_vms; i++)
		n += host->vms[i]->disk.fd >= 0 &&
		     strncmp(host->vms[i]->disk.path, ds->path, len) == 0 &&
		     host->vms[i]->disk.path[len] == '/';
	return n;
}

static int cmd_datastore_del(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct host_datastore *ds = host_datastore_find(host, cli_arg(args, "name"));

	if (ds == NULL)
		return reply_error(reply, -ENOENT, "no datastore '%.64s'", cli_arg(args, "name"));
	if (datastore_disks(host, ds) > 0)
		return reply_error(reply, -EBUSY, "VMs here have their disks on %s", ds->name);
	*ds = host->datastores[--host->nb_datastores];
	return 0;
}

static int cmd_show_datastores(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;

	(void)args;
	reply_str(reply, "host", "%s", host->name);
	reply_list_begin(reply, "datastores");
	for (unsigned int i = 0; i < host->nb_datastores; i++) {
		const struct host_datastore *ds = &host->datastores[i];
		struct statvfs fs;
		reply_object_begin(reply, NULL);
		reply_str(reply, "name", "%s", ds->name);
		reply_str(reply, "path", "%s", ds->path);
		reply_double(reply, "lease_s", (double)ds->lease_ns / 1e9, 1);
		if (statvfs(ds->path, &fs) == 0)
			reply_u64(reply, "free_mib", (uint64_t)fs.f_bavail * fs.f_frsize >> 20);
		reply_u64(reply, "disks", datastore_disks(host, ds));
		reply_object_end(reply);
	}
	reply_list_end(reply);
	return 0;
}

static const struct cli_command vm_commands[] = {
        {"host name <name>", "this host's name in the cluster (its disk locks carry it)",
         cmd_host_name},
        {"show host", "this host: name, VMs, memory committed and available, vMotion listeners",
         cmd_show_host},
        {"datastore add <name> <path> [lease <seconds>]",
         "a folder every host mounts, for VM disks; lease: how long a silent lock holds "
         "(default 15 s)",
         cmd_datastore_add},
        {"datastore del <name>", "forget a datastore no VM here uses", cmd_datastore_del},
        {"show datastores", "datastores: path, lock lease, free space, disks of VMs here",
         cmd_show_datastores},
        {"vm announce <name> [rounds <n>] [initial <ms>] [step <ms>] [garp]",
         "send the VM's RARP self-announcement (5 frames, 50 ms apart then +100 ms, as QEMU)",
         cmd_vm_announce},
        {"vm create <name> mem <mib> mac <mac> ip <address> portgroup <portgroup> "
         "[workload <spec>] [encryption <policy>] [hugepages <on|off>] "
         "[backend <backend>] [datastore <datastore>] [disk-mib <mib>]",
         "create and start an emulated VM (workload: uniform|hotcold|sequential[,rate=N|max]"
         "[,ws=PAGES][,seed=N][,fill=PERCENT], default uniform,rate=1000; encryption of its "
         "migrations: required (default), opportunistic or disabled; hugepages on: its memory "
         "from the host's 2 MiB hugetlb pool, reserved now, on every host it migrates to; "
         "backend: synthetic (default) or kvm, ferry's guest on a KVM vCPU, pre-copy only "
         "on hugepages)",
         cmd_vm_create},
        {"vm set <name> encryption <policy>",
         "change a VM's migration encryption: required, opportunistic or disabled", cmd_vm_set},
        {"vm set <name> postcopy <state>",
         "allow (on, the default) or forbid (off) post-copy for a VM's migrations: in post-copy "
         "a source that dies loses the VM",
         cmd_vm_set_postcopy},
        {"vm register <name> datastore <datastore>",
         "create and start a VM from its configuration on a datastore (<ds>/<vm>/<vm>.vmx, "
         "written by vm create ... datastore), its disk there locked for this host",
         cmd_vm_register},
        {"vm list", "the VMs on this host", cmd_vm_list},
        {"vm show <name>", "a VM: state, memory, pages touched, dirty rate, steps, counters",
         cmd_vm_show},
        {"vm pause <name>", "stop a VM's vCPU (its vnic drops what arrives)", cmd_vm_pause},
        {"vm resume <name>", "run a paused VM", cmd_vm_resume},
        {"vm destroy <name>", "power a VM off and free it", cmd_vm_destroy},
};

int vm_commands_register(struct cli_table *cli, struct host *host)
{
	return cli_table_register(cli, vm_commands, RTE_DIM(vm_commands), host);
}
