/* Two hosts in one process, their uplinks on crossed rings, driven by the same commands users
 * type: what the migration tests share. */
#include "pair.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ip.h>
#include <rte_ring.h>
#include <rte_udp.h>

#include "ferryd/commands.h"
#include "vm/vm_synthetic.h"

struct node *a, *b;
/* Each host's uplink sends into its out ring and receives from its in ring; pump() carries
 * frames across, through the wire's filter. */
static struct rte_ring *a_out, *a_in, *b_out, *b_in;
char key_path[64], other_key_path[64];
static struct rte_mempool *wire_pool(void);
wire_filter_fn *wire_filter;
void *wire_filter_ctx;

/* Writes a file of a mode (a key file must be closed to group and others). */
void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	cr_assert_eq(chmod(path, mode), 0);
}

static void setup_eal(void)
{
	static bool done;
	char *argv[] = {"test_migration", "--no-huge", "--no-shconf",    "-m",
	                "1024",           "--no-pci",  "--no-telemetry", "--log-level=*:error"};

	if (!done) {
		cr_assert_geq(rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])), argv), 0);
		done = true;
	}
	snprintf(key_path, sizeof(key_path), "/tmp/ferry-test-key-%d", getpid());
	snprintf(other_key_path, sizeof(other_key_path), "/tmp/ferry-test-key2-%d", getpid());
	write_file(key_path, "correct horse battery staple\n", 0600);
	write_file(other_key_path, "incorrect donkey battery staple\n", 0600);
}

/* Runs a command on a host; returns its errno and leaves the rendered reply in out. */
int ctl_try(struct node *h, char *out, size_t size, const char *fmt, ...)
{
	char *text;
	va_list ap;

	va_start(ap, fmt);
	int ret = cli_vrunf(&h->cli, &text, fmt, ap);
	va_end(ap);
	if (out != NULL)
		snprintf(out, size, "%s", text != NULL ? text : "");
	free(text);
	return ret;
}

/* A host: an uplink on the rings (the wire to the other host), a VM port group on VLAN 10, a
 * vMotion vmk on VLAN 20, and a listener. */
static struct node *node_new(const char *vmk_ip, struct rte_ring *rx, struct rte_ring *tx,
                             unsigned int mtu)
{
	struct node *h = calloc(1, sizeof(*h));
	struct host_config config = {.mbuf_data_room = 9216 + 128, .min_mbufs = 4096};

	cr_assert_not_null(h);
	cr_assert_eq(host_init(&h->host, &config), 0);
	cr_assert_eq(ferryd_commands_init(&h->cli, &h->host), 0);
	cr_assert_eq(host_uplink_add_rings(&h->host, "link0", rx, tx, 9000), 0);
	ctl(h, "portgroup add \"VM Network\" vlan 10");
	ctl(h, "portgroup add vMotion vlan 20");
	ctl(h, "vmk add vmk1 portgroup vMotion ip %s/24 mtu %u", vmk_ip, mtu);
	ctl(h, "migrate listen vmk1 key %s", key_path);
	h->alive = true;
	return h;
}

static void node_free(struct node *h)
{
	if (h == NULL)
		return;
	host_fini(&h->host);
	free(h);
}

static void drain(struct rte_ring *ring)
{
	void *m;
	while (rte_ring_dequeue(ring, &m) == 0)
		rte_pktmbuf_free(m);
}

static struct rte_ring *ring_new(const char *what)
{
	char name[32];
	snprintf(name, sizeof(name), "%s%d", what, getpid());
	struct rte_ring *ring =
	        rte_ring_create(name, 4096, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	cr_assert_not_null(ring, "ring %s", name);
	return ring;
}

static void setup_hosts(unsigned int mtu)
{
	setup_eal();
	a_out = ring_new("ao");
	a_in = ring_new("ai");
	b_out = ring_new("bo");
	b_in = ring_new("bi");
	wire_filter = NULL;
	a = node_new(A_VMK_IP, a_in, a_out, mtu);
	b = node_new(B_VMK_IP, b_in, b_out, mtu);
}

void setup_1500(void)
{
	setup_hosts(1500);
}

void setup_9000(void)
{
	setup_hosts(9000);
}

void teardown(void)
{
	node_free(a);
	node_free(b);
	a = b = NULL;
	wire_filter = NULL;
	struct rte_ring *rings[] = {a_out, a_in, b_out, b_in};
	for (unsigned int i = 0; i < 4; i++) {
		drain(rings[i]);
		rte_ring_free(rings[i]);
	}
	unlink(key_path);
	unlink(other_key_path);
}

const uint8_t *wire_migration_message(struct rte_mbuf *frame, uint16_t *len)
{
	uint8_t *p = rte_pktmbuf_mtod(frame, uint8_t *);
	uint32_t size = rte_pktmbuf_data_len(frame), at = 12;
	uint16_t ethertype;

	memcpy(&ethertype, p + at, 2);
	if (ethertype == RTE_BE16(RTE_ETHER_TYPE_VLAN)) {
		at += 4;
		memcpy(&ethertype, p + at, 2);
	}
	at += 2;
	if (ethertype != RTE_BE16(RTE_ETHER_TYPE_IPV4) || size < at + 20 + 8 || p[at + 9] != 17)
		return NULL;
	at += (uint32_t)(p[at] & 0xf) * 4;
	uint16_t sport, dport;
	memcpy(&sport, p + at, 2);
	memcpy(&dport, p + at + 2, 2);
	at += 8;
	if (size < at + sizeof(struct proto_header) ||
	    (sport != RTE_BE16(PROTO_DEFAULT_PORT) && dport != RTE_BE16(PROTO_DEFAULT_PORT)))
		return NULL;
	*len = (uint16_t)(size - at);
	return p + at;
}

/* Carries what one host sent to the other, through the filter, in the wire's own buffers. */
static void wire_carry(struct rte_ring *from, struct rte_ring *to, enum wire_direction direction)
{
	void *frame;

	while (rte_ring_dequeue(from, &frame) == 0) {
		struct rte_mbuf *copy = NULL;
		if (wire_filter == NULL || wire_filter(direction, frame, wire_filter_ctx))
			copy = rte_pktmbuf_copy(frame, wire_pool(), 0, UINT32_MAX);
		rte_pktmbuf_free(frame);
		if (copy != NULL && rte_ring_enqueue(to, copy) != 0)
			rte_pktmbuf_free(copy);
	}
}

/* The wire's own buffers: a frame in flight outlives the host that sent it. */
static struct rte_mempool *wire_pool(void)
{
	static struct rte_mempool *pool;

	if (pool == NULL) {
		char name[32];
		snprintf(name, sizeof(name), "wire%d", getpid());
		pool = rte_pktmbuf_pool_create(name, 16383, 0, 0, 9216 + RTE_PKTMBUF_HEADROOM,
		                               SOCKET_ID_ANY);
		cr_assert_not_null(pool);
	}
	return pool;
}

/* A UDP datagram on the wire into a host, to a MAC and address on a VLAN, from a MAC made of the
 * source address. */
static void wire_inject(enum wire_direction direction, const struct rte_ether_addr *dst_mac,
                        uint32_t dst_ip, uint16_t vlan, uint32_t src_ip, uint16_t src_port,
                        uint16_t dst_port, const void *payload, uint16_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(wire_pool());
	cr_assert_not_null(m);
	uint16_t ip_len = (uint16_t)(20 + 8 + len);
	uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(18 + ip_len));
	cr_assert_not_null(p);
	memcpy(p, dst_mac->addr_bytes, 6);
	uint8_t src_mac[6] = {0x02, 0x5f, 0, 0, 0, 0};
	memcpy(src_mac + 2, &src_ip, 4);
	memcpy(p + 6, src_mac, 6);
	const uint8_t tag[6] = {0x81, 0x00, (uint8_t)(vlan >> 8), (uint8_t)vlan, 0x08, 0x00};
	memcpy(p + 12, tag, sizeof(tag));
	struct rte_ipv4_hdr ip = {
	        .version_ihl = 0x45,
	        .total_length = rte_cpu_to_be_16(ip_len),
	        .fragment_offset = RTE_BE16(RTE_IPV4_HDR_DF_FLAG),
	        .time_to_live = 64,
	        .next_proto_id = IPPROTO_UDP,
	        .src_addr = src_ip,
	        .dst_addr = dst_ip,
	};
	ip.hdr_checksum = rte_ipv4_cksum(&ip);
	memcpy(p + 18, &ip, sizeof(ip));
	struct rte_udp_hdr udp = {.src_port = rte_cpu_to_be_16(src_port),
	                          .dst_port = rte_cpu_to_be_16(dst_port),
	                          .dgram_len = rte_cpu_to_be_16((uint16_t)(8 + len))};
	memcpy(p + 38, &udp, sizeof(udp));
	memcpy(p + 46, payload, len);
	struct rte_ring *in = direction == WIRE_A_TO_B ? b_in : a_in;
	if (rte_ring_enqueue(in, m) != 0)
		rte_pktmbuf_free(m);
}

void wire_inject_udp(enum wire_direction direction, uint32_t src_ip, uint16_t src_port,
                     uint16_t dst_port, const void *payload, uint16_t len)
{
	struct node *to = direction == WIRE_A_TO_B ? b : a;
	const struct netif *dst = &to->host.vmks[0]->netif;
	/* Tagged for the vMotion port group's VLAN 20. */
	wire_inject(direction, &dst->mac, dst->ip, 20, src_ip, src_port, dst_port, payload, len);
}

void wire_inject_vm_udp(enum wire_direction direction, uint16_t dst_port, const void *payload,
                        uint16_t len)
{
	struct rte_ether_addr mac;
	cr_assert_eq(rte_ether_unformat_addr(VM_MAC, &mac), 0);
	wire_inject(direction, &mac, rte_cpu_to_be_32(RTE_IPV4(10, 10, 0, 10)), 10,
	            rte_cpu_to_be_32(RTE_IPV4(10, 10, 0, 99)), 40000, dst_port, payload, len);
}

/* One turn of each live host's worker. */
void pump(void)
{
	if (a != NULL && a->alive)
		loop_run_once(&a->host.loop);
	wire_carry(a_out, b_in, WIRE_A_TO_B);
	if (b != NULL && b->alive)
		loop_run_once(&b->host.loop);
	wire_carry(b_out, a_in, WIRE_B_TO_A);
}

/* A session's figures now, as `migrate status` reads them. */
const struct migration_info *session(struct node *h, int id)
{
	cr_assert_eq(migration_info(&h->host.migrations, (uint32_t)id, loop_now_ns(&h->host.loop),
	                            &h->info),
	             0, "migration %d exists", id);
	return &h->info;
}

/* Pumps until the session is over; a migration that never ends fails the test. */
const struct migration_info *wait_done(struct node *h, int id, uint64_t timeout_ns)
{
	uint64_t deadline = loop_tsc_now_ns() + timeout_ns;
	while (session(h, id)->running) {
		cr_assert_lt(loop_tsc_now_ns(), deadline, "migration %d still %s after %.0f s: %s",
		             id, migration_status_name(session(h, id)->status),
		             (double)timeout_ns / 1e9, session(h, id)->reason);
		pump();
	}
	return session(h, id);
}

/* Starts a migration of vm from a to b; returns its id on a. */
int start(const char *vm, const char *options)
{
	char out[2048];
	/* Most tests exercise pre-copy's protocol step by step, which a hybrid migration (the
	 * default) would leave for post-copy wherever a loaded machine slows round 0: they get
	 * pre-copy unless they name a mode; the default has a test of its own. */
	const char *mode = strstr(options, "mode ") == NULL ? "mode precopy " : "";
	int ret = ctl_try(a, out, sizeof(out), "migrate start %s to %s key %s %s%s", vm, B_VMK_IP,
	                  key_path, mode, options);
	cr_assert_eq(ret, 0, "%s", out);
	return (int)a->host.migrations.next_id;
}

void create_vm(struct node *h, const char *name, unsigned int mib, const char *workload)
{
	create_vm_with(h, name, mib, workload, "");
}

void create_vm_with(struct node *h, const char *name, unsigned int mib, const char *workload,
                    const char *options)
{
	ctl(h,
	    "vm create %s mem %u mac %s ip 10.10.0.10/24 portgroup \"VM Network\" workload %s %s",
	    name, mib, VM_MAC, workload, options);
}

void assert_vm_unmoved(void)
{
	struct vm *g = host_vm_find(&a->host, "vm1");
	cr_assert_not_null(g, "the VM is still on the source");
	cr_assert_eq(g->machine.state, MACHINE_RUNNING, "and runs");
	cr_assert_eq(g->machine.throttle_percent, 0);
	uint64_t steps = machine_step(&g->machine);
	pump_until(machine_step(&g->machine) > steps, 5 * SECOND, "it keeps running");
}

uint64_t drops(struct node *h, enum migration_drop_reason reason)
{
	return h->host.migrations.drops[reason];
}

uint64_t all_drops(struct node *h)
{
	uint64_t sum = 0;
	for (unsigned int r = 0; r < MIGRATION_DROP_MAX; r++)
		sum += h->host.migrations.drops[r];
	return sum;
}

uint16_t message(uint8_t *buf, enum proto_type type, uint64_t session, uint64_t seq,
                 const void *body, uint16_t body_len)
{
	size_t len = proto_write_header(buf, type, session, seq, body_len);
	memcpy(buf + len, body, body_len);
	return (uint16_t)(len + body_len);
}

void destination_kill(void)
{
	/* Whatever its shutdown sends never leaves: a killed process says nothing. */
	node_free(b);
	b = NULL;
	drain(b_out);
	drain(b_in);
}

void source_kill(void)
{
	node_free(a);
	a = NULL;
	drain(a_out);
	drain(a_in);
}

void destination_restart(unsigned int mtu)
{
	drain(b_in);
	drain(b_out);
	b = node_new(B_VMK_IP, b_in, b_out, mtu);
}
