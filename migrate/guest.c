/* An emulated VM on a host: the VM model, its vnic on a port group (an in-process interface)
 * and its network services: ARP and ICMP echo, and a UDP counter whose value lives in the VM's
 * memory, so it moves with the VM. */
#include "guest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>

/* Each datagram to the counter port adds one to the count in guest memory, and gets the new
 * count back (8 bytes, network byte order). */
static void guest_counter_service(void *ctx, uint32_t src_ip, uint16_t src_port,
                                  const uint8_t *payload, uint16_t len, uint16_t dst_port)
{
	struct guest *guest = ctx;
	uint64_t count = guest_counter(guest) + 1;

	(void)payload;
	(void)len;
	vm_write64(&guest->vm, guest->counter_page, 0, count);
	uint64_t wire = rte_cpu_to_be_64(count);
	netif_udp_send(&guest->vnic.netif, src_ip, src_port, dst_port, &wire, sizeof(wire),
	               loop_now_ns(guest->loop));
}

uint64_t guest_counter(const struct guest *guest)
{
	uint64_t count;

	memcpy(&count, vm_page(&guest->vm, guest->counter_page), sizeof(count));
	return count;
}

int guest_create(struct guest *guest, struct vswitch_host *host,
                 struct vswitch_portgroup *portgroup, const struct guest_config *config,
                 struct pktpool_set *pools)
{
	struct netif_config netif = {
	        .name = config->name,
	        .mac = config->mac,
	        .ip = config->ip,
	        .prefix_len = config->prefix_len,
	        /* A VM is created powered off: its vnic says nothing until it runs (an incoming
	         * migration must not draw its MAC's traffic before it resumes). */
	        .start_down = true,
	};
	int ret;

	memset(guest, 0, sizeof(*guest));
	guest->loop = host->loop;
	guest->workload = config->workload;
	uint64_t nb_pages = config->memory_mb * 1024 * 1024 / VM_PAGE_SIZE;
	if (nb_pages < 2)
		return -EINVAL;
	/* The last page holds the counter: keep the workload off it. */
	guest->counter_page = nb_pages - 1;
	if (guest->workload.working_set_pages == 0 ||
	    guest->workload.working_set_pages > guest->counter_page)
		guest->workload.working_set_pages = guest->counter_page;
	ret = vm_create(&guest->vm, config->name, config->memory_mb, &vm_synthetic_ops,
	                &guest->workload);
	if (ret < 0)
		return ret;
	ret = iface_create(&guest->vnic, host, portgroup, VSWITCH_ROLE_VNIC, &netif, pools);
	if (ret < 0)
		goto fail_vm;
	ret = netif_udp_bind(&guest->vnic.netif, GUEST_COUNTER_PORT, guest_counter_service, guest);
	if (ret < 0)
		goto fail_vnic;
	ret = loop_poller_add(guest->loop, config->name, LOOP_POLLER_DATAPLANE, guest_poll, guest);
	if (ret < 0)
		goto fail_vnic;
	return 0;
fail_vnic:
	iface_destroy(&guest->vnic);
fail_vm:
	vm_destroy(&guest->vm);
	return ret;
}

void guest_destroy(struct guest *guest)
{
	announce_stop(&guest->announce);
	loop_poller_del(guest->loop, guest_poll, guest);
	iface_destroy(&guest->vnic);
	vm_destroy(&guest->vm);
}

void guest_resume(struct guest *guest)
{
	vm_resume(&guest->vm);
	guest->vnic.netif.up = true;
}

void guest_pause(struct guest *guest)
{
	vm_pause(&guest->vm);
	guest->vnic.netif.up = false;
}

unsigned int guest_poll(void *arg)
{
	struct guest *guest = arg;
	uint64_t written = vm_run(&guest->vm, loop_now_ns(guest->loop));

	return guest->workload.rate == 0 && !guest->workload.idle ? (unsigned int)written : 0;
}

int guest_load_state(struct guest *guest, const void *buf, size_t len)
{
	int ret = vm_load_state(&guest->vm, buf, len);

	/* The workload travels in the vCPU state: show what now runs. */
	if (ret == 0)
		guest->workload = *vm_synthetic_workload(&guest->vm);
	return ret;
}

int guest_parse_workload(const char *spec, struct vm_workload *workload)
{
	char text[128], *save = NULL;

	memset(workload, 0, sizeof(*workload));
	workload->seed = 1;
	if (strlen(spec) >= sizeof(text))
		return -EINVAL;
	snprintf(text, sizeof(text), "%s", spec);
	char *item = strtok_r(text, ",", &save);
	if (item == NULL || vm_pattern_parse(item, &workload->pattern) < 0)
		return -EINVAL;
	while ((item = strtok_r(NULL, ",", &save)) != NULL) {
		char *eq = strchr(item, '='), *end;
		if (eq == NULL)
			return -EINVAL;
		*eq = '\0';
		const char *value = eq + 1;
		if (strcmp(item, "rate") == 0 && strcmp(value, "max") == 0) {
			workload->rate = 0;
			continue;
		}
		unsigned long long n = strtoull(value, &end, 10);
		if (*value == '\0' || *end != '\0')
			return -EINVAL;
		if (strcmp(item, "rate") == 0 && n == 0)
			workload->idle = true;
		else if (strcmp(item, "rate") == 0)
			workload->rate = n;
		else if (strcmp(item, "ws") == 0 && n > 0)
			workload->working_set_pages = n;
		else if (strcmp(item, "seed") == 0)
			workload->seed = n;
		else if (strcmp(item, "fill") == 0 && n <= 100)
			workload->fill_percent = (uint32_t)n;
		else
			return -EINVAL;
	}
	return 0;
}
