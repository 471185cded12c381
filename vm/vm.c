/* An emulated VM on a host: the VM model, its vnic on a port group (an in-process interface)
 * and its network services: ARP and ICMP echo, UDP echo, and a UDP counter whose value lives in
 * the VM's memory, so it moves with the VM. */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_byteorder.h>

#include "vm/vm_kvm.h"

/* Each datagram to the counter port adds one to the count in vm memory, and gets the new count
 * back (8 bytes, network byte order). */
static void vm_counter_service(void *ctx, uint32_t src_ip, uint16_t src_port,
                               const uint8_t *payload, uint16_t len, uint16_t dst_port)
{
	struct vm *vm = ctx;
	uint64_t count = vm_counter(vm) + 1;

	(void)payload;
	(void)len;
	machine_write64(&vm->machine, vm->counter_page, 0, count);
	uint64_t wire = rte_cpu_to_be_64(count);
	netif_udp_send(&vm->vnic.netif, src_ip, src_port, dst_port, &wire, sizeof(wire),
	               loop_now_ns(vm->loop));
}

/* The first page the services use that is still elsewhere (post-copy), UINT64_MAX if none. */
static uint64_t vm_service_page_absent(const struct vm *vm)
{
	const struct machine *m = &vm->machine;

	if (m->remote.absent == NULL)
		return UINT64_MAX;
	if (machine_page_absent(m, vm->counter_page))
		return vm->counter_page;
	for (uint64_t p = 0; vm->tcp_on && p < TCP_PAGES; p++)
		if (machine_page_absent(m, vm->tcp.first_page + p))
			return vm->tcp.first_page + p;
	return UINT64_MAX;
}

void vm_input(struct vm *vm, struct rte_mbuf **pkts, uint16_t n)
{
	uint64_t now = loop_now_ns(vm->loop);

	if (vm->nb_rx_waiting == 0 && vm_service_page_absent(vm) == UINT64_MAX) {
		if (vm->tcp_on && vm->machine.state == MACHINE_RUNNING)
			tcp_format(&vm->tcp);
		netif_input(&vm->vnic.netif, pkts, n, now);
		return;
	}
	for (uint16_t i = 0; i < n; i++) {
		if (vm->nb_rx_waiting == VM_RX_WAITING) {
			vm->rx_dropped++;
			rte_pktmbuf_free(pkts[i]);
			continue;
		}
		vm->rx_waiting[vm->nb_rx_waiting++] = pkts[i];
	}
	uint64_t page = vm_service_page_absent(vm);
	if (page != UINT64_MAX)
		machine_access(&vm->machine, page, now);
}

static void vm_receive(void *ctx, struct rte_mbuf **pkts, uint16_t n)
{
	vm_input(ctx, pkts, n);
}

void vm_input_attach(struct vm *vm)
{
	iface_divert(&vm->vnic, vm_receive, vm);
}

/* RFC 862: what comes to the echo port goes back as it came. */
static void vm_echo_service(void *ctx, uint32_t src_ip, uint16_t src_port, const uint8_t *payload,
                            uint16_t len, uint16_t dst_port)
{
	struct vm *vm = ctx;

	netif_udp_send(&vm->vnic.netif, src_ip, src_port, dst_port, payload, len,
	               loop_now_ns(vm->loop));
}

uint64_t vm_counter(const struct vm *vm)
{
	uint64_t count;

	memcpy(&count, machine_page(&vm->machine, vm->counter_page), sizeof(count));
	return count;
}

const char *vm_backend_name(enum vm_backend backend)
{
	return backend == VM_BACKEND_KVM ? "kvm" : "synthetic";
}

int vm_backend_parse(const char *text, enum vm_backend *backend)
{
	if (strcmp(text, "synthetic") == 0)
		*backend = VM_BACKEND_SYNTHETIC;
	else if (strcmp(text, "kvm") == 0)
		*backend = VM_BACKEND_KVM;
	else
		return -EINVAL;
	return 0;
}

uint64_t vm_workload_end(uint64_t nb_pages, enum vm_backend backend)
{
	uint64_t services = vm_services_first_page(nb_pages);
	uint64_t guest = backend == VM_BACKEND_KVM ? vm_kvm_guest_pages(nb_pages) : 0;

	return services > guest ? services - guest : 0;
}

uint64_t vm_services_first_page(uint64_t nb_pages)
{
	/* A VM too small for the TCP's pages has the counter alone. */
	return nb_pages >= 2 * (TCP_PAGES + 1) ? nb_pages - 1 - TCP_PAGES : nb_pages - 1;
}

_Static_assert(alignof(struct vm) <= alignof(struct port),
               "port_holder_alloc aligns as a port: a VM must need no more");

struct vm *vm_alloc(void)
{
	return port_holder_alloc(sizeof(struct vm));
}

int vm_create(struct vm *vm, struct vswitch_table *vswitches, struct vswitch_portgroup *portgroup,
              const struct vm_config *config, struct pktpool_set *pools)
{
	struct netif_config netif = {
	        .name = config->name,
	        .mac = config->mac,
	        .ip = config->ip,
	        .prefix_len = config->prefix_len,
	        /* A VM is created powered off: its vnic says nothing until it runs (an incoming
	         * migration must not draw its MAC's traffic before it resumes). */
	        .start_down = true,
	        /* Its neighbour cache is the host's, not in its memory: it does not move with it,
	         * so a VM that just moved learns its peers from what they send it. */
	        .glean = true,
	};
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->disk.fd = -1;
	vm->loop = vswitches->loop;
	vm->workload = config->workload;
	vm->encryption = config->encryption;
	uint64_t nb_pages = config->memory_mb * 1024 * 1024 / VM_PAGE_SIZE;
	if (nb_pages < 2)
		return -EINVAL;
	/* The last page holds the counter, the TCP's pages come before it (when the VM has room):
	 * keep the workload off them. */
	vm->counter_page = nb_pages - 1;
	uint64_t services = vm_services_first_page(nb_pages);
	vm->tcp_on = services < vm->counter_page;
	vm->backend = config->backend;
	uint64_t end = vm_workload_end(nb_pages, vm->backend);
	if (end == 0)
		return -EINVAL;
	if (vm->workload.working_set_pages == 0 || vm->workload.working_set_pages > end)
		vm->workload.working_set_pages = end;
	if (vm->backend == VM_BACKEND_KVM) {
		/* The guest's pages go right below the services, the workload below them. Its
		 * missing pages in post-copy are its vCPU's faults, through userfaultfd. */
		struct vm_kvm_config kvm = {.workload = vm->workload, .guest_page = end};
		ret = machine_create(&vm->machine, config->name, config->memory_mb, config->backing,
		                     &vm_kvm_ops, &kvm);
		vm->postcopy_off = ret == 0 && !vm_kvm_postcopy_capable(&vm->machine);
	} else {
		ret = machine_create(&vm->machine, config->name, config->memory_mb, config->backing,
		                     &vm_synthetic_ops, &vm->workload);
	}
	if (ret < 0)
		return ret;
	ret = iface_create(&vm->vnic, vswitches, portgroup, VSWITCH_ROLE_VNIC, &netif, pools);
	if (ret < 0)
		goto fail_vm;
	ret = netif_udp_bind(&vm->vnic.netif, VM_COUNTER_PORT, vm_counter_service, vm);
	if (ret == 0)
		ret = netif_udp_bind(&vm->vnic.netif, VM_ECHO_PORT, vm_echo_service, vm);
	if (ret == 0 && vm->tcp_on)
		ret = tcp_init(&vm->tcp, &vm->machine, vm->counter_page - TCP_PAGES,
		               &vm->vnic.netif);
	vm_input_attach(vm);
	if (ret < 0)
		goto fail_vnic;
	ret = loop_poller_add(vm->loop, config->name, LOOP_POLLER_DATAPLANE, vm_poll, vm);
	if (ret < 0)
		goto fail_vnic;
	return 0;
fail_vnic:
	iface_destroy(&vm->vnic);
fail_vm:
	machine_destroy(&vm->machine);
	return ret;
}

static void disk_close(struct vm_disk *disk)
{
	if (disk->fd < 0)
		return;
	if (!disk->lost)
		fdatasync(disk->fd);
	close(disk->fd);
	disk->fd = -1;
	disklock_release(&disk->lock);
}

/* Opens the disk file of a VM whose lock is held, and owes it the writes from its next step. */
static int disk_open(struct vm *vm, const struct vm_disk_place *place, int create_flag)
{
	struct vm_disk *disk = &vm->disk;
	int fd = open(place->path, O_RDWR | O_CLOEXEC | create_flag, 0644);

	if (fd < 0 || ftruncate(fd, (off_t)(place->mb << 20)) < 0) {
		int ret = -errno;
		if (fd >= 0)
			close(fd);
		disklock_release(&disk->lock);
		return ret;
	}
	snprintf(disk->path, sizeof(disk->path), "%s", place->path);
	snprintf(disk->datastore, sizeof(disk->datastore), "%s", place->datastore);
	disk->fd = fd;
	disk->mb = place->mb;
	disk->blocks = (place->mb << 20) / VM_SYNTHETIC_DISK_BLOCK;
	disk->next_step =
	        (machine_step(&vm->machine) + VM_DISK_EVERY - 1) / VM_DISK_EVERY * VM_DISK_EVERY;
	disk->writes = 0;
	disk->heartbeat_ns = loop_now_ns(vm->loop);
	disk->lost = false;
	return 0;
}

static bool disk_place_valid(const struct vm *vm, const struct vm_disk_place *place)
{
	return vm->disk.fd < 0 && place->mb != 0 && place->mb <= (UINT64_MAX >> 21) &&
	       strlen(place->path) < sizeof(vm->disk.path) &&
	       strlen(place->datastore) < sizeof(vm->disk.datastore);
}

int vm_disk_attach(struct vm *vm, const struct vm_disk_place *place, struct disklock_holder *holder)
{
	int ret;

	if (!disk_place_valid(vm, place))
		return -EINVAL;
	/* The lock first: a disk another host has is not even opened. */
	ret = disklock_acquire(&vm->disk.lock, place->path, place->owner, place->lease_ns, holder);
	return ret < 0 ? ret : disk_open(vm, place, O_CREAT);
}

int vm_disk_take(struct vm *vm, const struct vm_disk_place *place, uint64_t handoff,
                 struct disklock_holder *holder)
{
	int ret;

	if (!disk_place_valid(vm, place))
		return -EINVAL;
	ret = disklock_take(&vm->disk.lock, place->path, place->owner, place->lease_ns, handoff,
	                    holder);
	/* The disk exists: the source wrote it, and flushed it before it offered the lock. */
	return ret < 0 ? ret : disk_open(vm, place, 0);
}

/* Writes the blocks the workload owes the disk for the steps before step, at most max of them.
 * Returns false if a write failed. */
static bool disk_catch_up(struct vm *vm, uint64_t step, uint64_t max)
{
	struct vm_disk *disk = &vm->disk;
	uint8_t block[VM_SYNTHETIC_DISK_BLOCK];

	for (uint64_t i = 0; i < max && disk->next_step < step; i++) {
		vm_synthetic_disk_block(vm->workload.seed, disk->next_step, block);
		off_t at = (off_t)((disk->next_step / VM_DISK_EVERY) % disk->blocks) *
		           VM_SYNTHETIC_DISK_BLOCK;
		if (pwrite(disk->fd, block, sizeof(block), at) != (ssize_t)sizeof(block))
			return false;
		disk->writes++;
		disk->next_step += VM_DISK_EVERY;
	}
	return true;
}

int vm_disk_offer(struct vm *vm, uint64_t *handoff)
{
	struct vm_disk *disk = &vm->disk;

	if (disk->fd < 0 || disk->lost)
		return -ESTALE;
	/* Every write of every step the VM took, on the disk before anyone else opens it. */
	if (!disk_catch_up(vm, machine_step(&vm->machine), UINT64_MAX) || fdatasync(disk->fd) < 0)
		return -EIO;
	return disklock_offer(&disk->lock, handoff);
}

int vm_disk_withdraw(struct vm *vm)
{
	struct vm_disk *disk = &vm->disk;

	if (disk->fd < 0)
		return 0;
	int ret = disklock_withdraw(&disk->lock);
	if (ret == -ESTALE)
		disk->lost = true;
	return ret;
}

/* At most this many block writes a poll: a VM that ran far ahead catches up over a few. */
#define DISK_WRITES_PER_POLL 16

/* The workload's disk writes for the steps it took, and the lock's heartbeat. */
static void disk_poll(struct vm *vm, uint64_t now)
{
	struct vm_disk *disk = &vm->disk;

	if (disk->fd < 0 || disk->lost)
		return;
	if (now - disk->heartbeat_ns >= disk->lock.lease_ns / 4) {
		disk->heartbeat_ns = now;
		if (disklock_heartbeat(&disk->lock) == -ESTALE) {
			/* Another host has the disk: this VM must not write it again, as a
			 * VMFS host that lost a lock stops the VM. */
			disk->lost = true;
			vm_pause(vm);
			return;
		}
	}
	disk_catch_up(vm, machine_step(&vm->machine), DISK_WRITES_PER_POLL);
}

void vm_destroy(struct vm *vm)
{
	disk_close(&vm->disk);
	for (unsigned int i = 0; i < vm->nb_rx_waiting; i++)
		rte_pktmbuf_free(vm->rx_waiting[i]);
	vm->nb_rx_waiting = 0;
	announce_stop(&vm->announce);
	loop_poller_del(vm->loop, vm_poll, vm);
	iface_destroy(&vm->vnic);
	machine_destroy(&vm->machine);
}

void vm_resume(struct vm *vm)
{
	machine_resume(&vm->machine);
	vm->vnic.netif.up = true;
}

void vm_pause(struct vm *vm)
{
	machine_pause(&vm->machine);
	vm->vnic.netif.up = false;
}

unsigned int vm_poll(void *arg)
{
	struct vm *vm = arg;
	uint64_t written = machine_run(&vm->machine, loop_now_ns(vm->loop));

	uint64_t now = loop_now_ns(vm->loop);
	unsigned int work =
	        vm->workload.rate == 0 && !vm->workload.idle ? (unsigned int)written : 0;

	disk_poll(vm, now);
	if (vm_service_page_absent(vm) != UINT64_MAX)
		return work;
	if (vm->nb_rx_waiting > 0) {
		unsigned int n = vm->nb_rx_waiting;
		vm->nb_rx_waiting = 0;
		vm_input(vm, vm->rx_waiting, (uint16_t)n);
	}
	if (vm->tcp_on && vm->machine.state == MACHINE_RUNNING) {
		tcp_format(&vm->tcp);
		tcp_poll(&vm->tcp, now);
	}
	return work;
}

int vm_load_state(struct vm *vm, const void *buf, size_t len)
{
	int ret = machine_load_state(&vm->machine, buf, len);

	/* The workload travels in the vCPU state: show what now runs. */
	if (ret == 0)
		vm->workload = *machine_workload(&vm->machine);
	return ret;
}
