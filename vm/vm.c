/* An emulated VM on a host: the VM model, its vnic on a port group (an in-process interface)
 * and its network services: ARP and ICMP echo, UDP echo, and a UDP counter whose value lives in
 * the VM's memory, so it moves with the VM. */
#include "vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>

/* Adds one to the count in vm memory and sends the new count back (8 bytes, network byte
 * order). */
static void vm_counter_count(struct vm *vm, const struct vm_counter_request *request)
{
	uint64_t count = vm_counter(vm) + 1;

	machine_write64(&vm->machine, vm->counter_page, 0, count);
	uint64_t wire = rte_cpu_to_be_64(count);
	netif_udp_send(&vm->vnic.netif, request->ip, request->port, request->local_port, &wire,
	               sizeof(wire), loop_now_ns(vm->loop));
}

/* Each datagram to the counter port counts, at once or, while the page is elsewhere, once it
 * came (asked for now, as a vCPU's touch would). */
static void vm_counter_service(void *ctx, uint32_t src_ip, uint16_t src_port,
                               const uint8_t *payload, uint16_t len, uint16_t dst_port)
{
	struct vm *vm = ctx;
	struct vm_counter_request request = {
	        .ip = src_ip, .port = src_port, .local_port = dst_port};

	(void)payload;
	(void)len;
	if (vm->nb_waiting == 0 && !machine_page_absent(&vm->machine, vm->counter_page)) {
		vm_counter_count(vm, &request);
		return;
	}
	if (vm->nb_waiting == VM_COUNTER_WAITING) {
		vm->counter_dropped++;
		return;
	}
	vm->waiting[vm->nb_waiting++] = request;
	machine_access(&vm->machine, vm->counter_page, loop_now_ns(vm->loop));
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
	vm->loop = vswitches->loop;
	vm->workload = config->workload;
	vm->encryption = config->encryption;
	uint64_t nb_pages = config->memory_mb * 1024 * 1024 / VM_PAGE_SIZE;
	if (nb_pages < 2)
		return -EINVAL;
	/* The last page holds the counter: keep the workload off it. */
	vm->counter_page = nb_pages - 1;
	if (vm->workload.working_set_pages == 0 ||
	    vm->workload.working_set_pages > vm->counter_page)
		vm->workload.working_set_pages = vm->counter_page;
	ret = machine_create(&vm->machine, config->name, config->memory_mb, config->backing,
	                     &vm_synthetic_ops, &vm->workload);
	if (ret < 0)
		return ret;
	ret = iface_create(&vm->vnic, vswitches, portgroup, VSWITCH_ROLE_VNIC, &netif, pools);
	if (ret < 0)
		goto fail_vm;
	ret = netif_udp_bind(&vm->vnic.netif, VM_COUNTER_PORT, vm_counter_service, vm);
	if (ret == 0)
		ret = netif_udp_bind(&vm->vnic.netif, VM_ECHO_PORT, vm_echo_service, vm);
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

void vm_destroy(struct vm *vm)
{
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

	if (vm->nb_waiting > 0 && !machine_page_absent(&vm->machine, vm->counter_page)) {
		for (unsigned int i = 0; i < vm->nb_waiting; i++)
			vm_counter_count(vm, &vm->waiting[i]);
		vm->nb_waiting = 0;
	}
	return vm->workload.rate == 0 && !vm->workload.idle ? (unsigned int)written : 0;
}

int vm_load_state(struct vm *vm, const void *buf, size_t len)
{
	int ret = machine_load_state(&vm->machine, buf, len);

	/* The workload travels in the vCPU state: show what now runs. */
	if (ret == 0)
		vm->workload = *vm_synthetic_workload(&vm->machine);
	return ret;
}
