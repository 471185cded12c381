/* libFuzzer target: arbitrary bytes as TCP segments into the emulated VM's TCP (vm/tcp), from
 * one of four peers, with time going by between them. Any input must be handled or dropped for a
 * counted reason, never crash, never write outside the VM's TCP pages, and never leak a buffer.
 * Input: [steer: 1 byte][length: 2 bytes LE][segment]... The steer byte's bits: 0-1 the peer,
 * 2 keep the checksum as it is (else it is made right), 3 aim at a service port (7 or 7777, by
 * bit 4), 5-7 milliseconds times 64 to let pass before the segment (timers fire). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_tcp.h>

#include "dataplane/netif.h"
#include "vm/machine.h"
#include "vm/tcp.h"
#include "vm/vm.h"
#include "vm/vm_synthetic.h"

#define FUZZ_PAGES 256

struct fuzz_tcp {
	struct machine memory;
	struct netif netif;
	struct tcp tcp;
	struct rte_mempool *pool;
	uint64_t now_ns;
	uint8_t *outside; /* a copy of the pages the TCP must not write */
};

static void die(const char *what)
{
	fprintf(stderr, "fuzz_tcp: %s\n", what);
	abort();
}

static void discard(void *ctx, struct rte_mbuf **pkts, uint16_t n)
{
	(void)ctx;
	rte_pktmbuf_free_bulk(pkts, n);
}

static struct fuzz_tcp *fuzz_setup(void)
{
	static struct fuzz_tcp f;
	char *argv[] = {"fuzz_tcp", "--no-huge", "--no-shconf",    "-m",
	                "128",      "--no-pci",  "--no-telemetry", "--log-level=*:error"};
	if (rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])), argv) < 0)
		die("EAL");
	f.pool = rte_pktmbuf_pool_create("fuzz_tcp", 1023, 0, 0, 2048 + 128, SOCKET_ID_ANY);
	struct vm_workload idle = {.idle = true, .working_set_pages = 1};
	if (f.pool == NULL ||
	    machine_create(&f.memory, "vm", FUZZ_PAGES / 256, MACHINE_BACKING_ANONYMOUS,
	                   &vm_synthetic_ops, &idle) < 0)
		die("setup");
	struct netif_config config = {.name = "vm",
	                              .mac = {{0x02, 0, 0, 0, 0, 0x0a}},
	                              .ip = RTE_BE32(RTE_IPV4(10, 0, 0, 10)),
	                              .prefix_len = 24,
	                              .glean = true};
	if (netif_init(&f.netif, &config, f.pool, discard, NULL) < 0 ||
	    tcp_init(&f.tcp, &f.memory, vm_services_first_page(FUZZ_PAGES), &f.netif) < 0)
		die("stack");
	tcp_format(&f.tcp);
	/* Every peer known, so answers go out (and are freed) rather than wait on ARP. */
	f.outside = malloc(vm_services_first_page(FUZZ_PAGES) * VM_PAGE_SIZE);
	if (f.outside == NULL)
		die("memory");
	memcpy(f.outside, f.memory.memory, vm_services_first_page(FUZZ_PAGES) * VM_PAGE_SIZE);
	f.now_ns = 1000000000ull;
	return &f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_tcp *f;
	uint8_t segment[2048];

	if (f == NULL)
		f = fuzz_setup();
	while (size >= 3) {
		uint8_t steer = data[0];
		size_t len = (size_t)(data[1] | data[2] << 8) % sizeof(segment);
		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		memcpy(segment, data, len);
		data += len;
		size -= len;
		f->now_ns += (uint64_t)(steer >> 5) * 64000000;
		tcp_poll(&f->tcp, f->now_ns);
		uint32_t src = RTE_BE32(RTE_IPV4(10, 0, 0, 100 + (steer & 3)));
		if ((steer & 8) && len >= sizeof(struct rte_tcp_hdr)) {
			uint16_t port = (steer & 16) ? TCP_COUNTER_PORT : TCP_ECHO_PORT;
			((struct rte_tcp_hdr *)segment)->dst_port = rte_cpu_to_be_16(port);
		}
		if (!(steer & 4) && len >= sizeof(struct rte_tcp_hdr)) {
			struct rte_ipv4_hdr ip = {.version_ihl = RTE_IPV4_VHL_DEF,
			                          .total_length =
			                                  rte_cpu_to_be_16((uint16_t)(20 + len)),
			                          .next_proto_id = IPPROTO_TCP,
			                          .src_addr = src,
			                          .dst_addr = f->netif.ip};
			struct rte_tcp_hdr *h = (struct rte_tcp_hdr *)segment;
			h->cksum = 0;
			h->cksum = rte_ipv4_udptcp_cksum(&ip, h);
		}
		tcp_input(&f->tcp, src, f->netif.ip, segment, (uint16_t)len, f->now_ns);
	}
	if (memcmp(f->outside, f->memory.memory,
	           vm_services_first_page(FUZZ_PAGES) * VM_PAGE_SIZE) != 0)
		die("the TCP wrote outside its pages");
	/* Neighbours resolve nothing here: what waits for ARP is freed, so buffers balance. */
	netif_neigh_flush(&f->netif);
	if (rte_mempool_in_use_count(f->pool) != 0)
		die("a buffer leaked");
	return 0;
}
