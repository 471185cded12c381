/* Live migration between two ferryd hosts in one process, wired by the ring PMD: exactness for
 * every workload pattern at MTU 1500 and 9000, over impaired links, refusals, bad and replayed
 * packets, a destination that dies, and the announce on a pcap uplink. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_byteorder.h>
#include <rte_eal.h>
#include <rte_ring.h>

#include "cli/cli.h"
#include "ferryd/commands.h"
#include "harness.h"
#include "host/host.h"
#include "vm/vm_synthetic.h"

#define SECOND   1000000000ull
#define VM_MAC   "02:00:00:00:00:0a"
#define A_VMK_IP "50.50.50.1"
#define B_VMK_IP "50.50.50.2"

/* One host of the pair and the commands that drive it. */
struct node {
	struct host host;
	struct cli_table cli;
	bool alive;
	struct migration_info info; /* the last session() read */
};

static struct node *a, *b;
static struct rte_ring *a_to_b, *b_to_a;
static char key_path[64], other_key_path[64];

/* Writes a file of a mode (a key file must be closed to group and others). */
static void write_file(const char *path, const char *text, mode_t mode)
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
static int ctl_try(struct node *h, char *out, size_t size, const char *fmt, ...)
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

#define ctl(h, ...)                                                                                \
	do {                                                                                       \
		char err_[512];                                                                    \
		int ret_ = ctl_try(h, err_, sizeof(err_), __VA_ARGS__);                            \
		cr_assert_eq(ret_, 0, "%s", err_);                                                 \
	} while (0)

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

static void setup_hosts(unsigned int mtu)
{
	setup_eal();
	char name[32];
	snprintf(name, sizeof(name), "ab%d", getpid());
	a_to_b = rte_ring_create(name, 4096, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "ba%d", getpid());
	b_to_a = rte_ring_create(name, 4096, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	cr_assert(a_to_b != NULL && b_to_a != NULL);
	a = node_new(A_VMK_IP, b_to_a, a_to_b, mtu);
	b = node_new(B_VMK_IP, a_to_b, b_to_a, mtu);
}

static void setup_1500(void)
{
	setup_hosts(1500);
}

static void setup_9000(void)
{
	setup_hosts(9000);
}

static void teardown(void)
{
	node_free(a);
	node_free(b);
	a = b = NULL;
	drain(a_to_b);
	drain(b_to_a);
	rte_ring_free(a_to_b);
	rte_ring_free(b_to_a);
	unlink(key_path);
	unlink(other_key_path);
}

/* One turn of each live host's worker. */
static void pump(void)
{
	if (a != NULL && a->alive)
		loop_run_once(&a->host.loop);
	if (b != NULL && b->alive)
		loop_run_once(&b->host.loop);
}

/* Pumps both hosts until cond holds; one that never comes fails the test with the message. */
#define pump_until(cond, timeout_ns, ...)                                                          \
	do {                                                                                       \
		uint64_t deadline_ = loop_tsc_now_ns() + (timeout_ns);                             \
		while (!(cond)) {                                                                  \
			cr_assert_lt(loop_tsc_now_ns(), deadline_, __VA_ARGS__);                   \
			pump();                                                                    \
		}                                                                                  \
	} while (0)

/* A session's figures now, as `migrate status` reads them. */
static const struct migration_info *session(struct node *h, int id)
{
	cr_assert_eq(migration_info(&h->host.migrations, (uint32_t)id, loop_now_ns(&h->host.loop),
	                            &h->info),
	             0, "migration %d exists", id);
	return &h->info;
}

/* Pumps until the session is over; a migration that never ends fails the test. */
static const struct migration_info *wait_done(struct node *h, int id, uint64_t timeout_ns)
{
	uint64_t deadline = loop_tsc_now_ns() + timeout_ns;
	while (session(h, id)->running) {
		cr_assert_lt(loop_tsc_now_ns(), deadline, "migration %d still %s after %.0f s", id,
		             migration_status_name(session(h, id)->status),
		             (double)timeout_ns / 1e9);
		pump();
	}
	return session(h, id);
}

/* The link's speed and round trip are the pre-flight tests' business: a loaded CI machine may be
 * slow, so the tests of anything else give limits no machine misses. */
#define LOOSE_PREFLIGHT "min-bandwidth 1M rtt-limit 1000"

/* Starts a migration of vm from a to b; returns its id on a. */
static int start(const char *vm, const char *options)
{
	char out[2048];
	int ret = ctl_try(a, out, sizeof(out), "migrate start %s to %s key %s %s", vm, B_VMK_IP,
	                  key_path, options);
	cr_assert_eq(ret, 0, "%s", out);
	return (int)a->host.migrations.next_id;
}

static void create_vm(struct node *h, const char *name, unsigned int mib, const char *workload)
{
	ctl(h, "vm create %s mem %u mac %s ip 10.10.0.10/24 portgroup \"VM Network\" workload %s",
	    name, mib, VM_MAC, workload);
}

/* The workload a vm of mib MiB runs for a spec, as vm_create sets it up. */
static struct vm_workload reference_workload(const char *spec, unsigned int mib)
{
	struct vm_workload w;
	cr_assert_eq(vm_workload_parse(spec, &w), 0);
	uint64_t counter_page = (uint64_t)mib * 256 - 1;
	if (w.working_set_pages == 0 || w.working_set_pages > counter_page)
		w.working_set_pages = counter_page;
	return w;
}

/* Migrates a running VM a -> b, then checks that its memory and vCPU state are those of the same
 * VM run as many steps without a migration. */
static void migrate_and_compare(const char *spec, unsigned int mib, const char *options)
{
	create_vm(a, "vm1", mib, spec);
	/* The VM does some work before it moves. */
	struct vm *source = host_vm_find(&a->host, "vm1");
	pump_until(vm_synthetic_step(&source->machine) >= 1000, 10 * SECOND, "the VM never ran");
	char with_floor[256];
	snprintf(with_floor, sizeof(with_floor), "%s " LOOSE_PREFLIGHT, options);
	int id = start("vm1", with_floor);
	const struct migration_info *m = wait_done(a, id, 60 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "migration %s: %s",
	             migration_status_name(m->status), m->reason);
	cr_assert_null(host_vm_find(&a->host, "vm1"), "the source dropped its copy");
	struct vm *moved = host_vm_find(&b->host, "vm1");
	cr_assert_not_null(moved, "the VM runs on the destination");
	cr_assert_eq(moved->machine.state, MACHINE_RUNNING);
	cr_assert_eq(moved->machine.throttle_percent, 0, "the throttle stays behind");
	/* And goes on running there. */
	uint64_t arrived = vm_synthetic_step(&moved->machine);
	pump_until(vm_synthetic_step(&moved->machine) > arrived + 100, 10 * SECOND,
	           "the VM does not run on the destination");
	ctl(b, "vm pause vm1");
	uint64_t steps = vm_synthetic_step(&moved->machine);
	cr_assert_gt(steps, 0);

	struct machine reference;
	struct vm_workload w = reference_workload(spec, mib);
	cr_assert_eq(machine_create(&reference, "reference", mib, &vm_synthetic_ops, &w), 0);
	vm_synthetic_steps(&reference, steps);
	cr_assert_eq(reference.nb_pages, moved->machine.nb_pages);
	cr_assert_eq(
	        memcmp(reference.memory, moved->machine.memory, reference.nb_pages * VM_PAGE_SIZE),
	        0, "memory after %lu steps is byte-identical", (unsigned long)steps);
	uint8_t s1[VM_STATE_MAX], s2[VM_STATE_MAX];
	size_t n1 = machine_save_state(&reference, s1),
	       n2 = machine_save_state(&moved->machine, s2);
	cr_assert_eq(n1, n2);
	cr_assert_eq(memcmp(s1, s2, n1), 0, "the vCPU state is the same");
	/* And it goes on the same: 1000 more steps on each. */
	vm_synthetic_steps(&reference, 1000);
	vm_synthetic_steps(&moved->machine, 1000);
	cr_assert_eq(machine_memory_hash(&reference), machine_memory_hash(&moved->machine));
	machine_destroy(&reference);
	cr_log_info("%s at MTU %u %s: %u rounds, %.1f ms, downtime %.3f ms, %lu pages + %lu zero, "
	            "%lu resent",
	            spec, a->host.vmks[0]->netif.mtu, options, m->stats.rounds,
	            (double)(m->stats.end_ns - m->stats.start_ns) / 1e6,
	            (double)m->stats.downtime_ns / 1e6, (unsigned long)m->stats.pages_normal,
	            (unsigned long)m->stats.pages_zero,
	            (unsigned long)m->stats.pages_retransmitted);
}

/* Exactness, not convergence, is the point here: a VM writing flat out on a sanitizer build
 * may need more than QEMU's 300 ms, so the limit is generous (convergence has its own tests). */
#define EXACT_OPTIONS "verify on downtime-limit 2000"

TestSuite(exact_1500, .init = setup_1500, .fini = teardown, .timeout = 120);
TestSuite(exact_9000, .init = setup_9000, .fini = teardown, .timeout = 120);

Test(exact_1500, uniform)
{
	migrate_and_compare("uniform,rate=max,fill=50,seed=3", 32, EXACT_OPTIONS);
}

Test(exact_1500, hotcold)
{
	migrate_and_compare("hotcold,rate=max,fill=50,seed=4", 32, EXACT_OPTIONS);
}

Test(exact_1500, sequential)
{
	migrate_and_compare("sequential,rate=max,fill=50,seed=5", 32, EXACT_OPTIONS);
}

Test(exact_9000, uniform)
{
	migrate_and_compare("uniform,rate=max,fill=50,seed=6", 64, EXACT_OPTIONS);
}

Test(exact_9000, hotcold)
{
	migrate_and_compare("hotcold,rate=max,fill=50,seed=7", 64, EXACT_OPTIONS);
}

Test(exact_9000, sequential)
{
	migrate_and_compare("sequential,rate=max,fill=50,seed=8", 64, EXACT_OPTIONS);
}

/* A paced link: the migration takes rounds, and still ends byte-identical. */
Test(exact_9000, paced_rounds)
{
	migrate_and_compare("uniform,rate=20000,fill=100,seed=9", 64, "max-bandwidth 1G");
}

/* A VM that dirties faster than the link drains: auto-converge throttles it until the rounds
 * shrink, and the result is still exact. */
Test(exact_9000, auto_converge)
{
	migrate_and_compare("sequential,rate=100000,seed=13", 16,
	                    "max-bandwidth 1G downtime-limit 20 verify on");
	const struct migration_info *m = session(a, (int)a->host.migrations.next_id);
	cr_assert_gt(m->stats.throttle_percent, 0, "the VM was throttled");
	cr_assert_gt(m->stats.rounds, 3);
}

/* Loss, duplication and reordering on both directions of the wire, fixed seeds. */
static void impair_both(const char *spec)
{
	ctl(a, "port set link0 impair %s seed 11", spec);
	ctl(b, "port set link0 impair %s seed 12", spec);
}

Test(exact_9000, impaired_link)
{
	impair_both("loss 2 dup 1 reorder 2");
	migrate_and_compare("uniform,rate=20000,fill=50,seed=10", 32, "verify on");
	cr_assert_gt(session(a, (int)a->host.migrations.next_id)->stats.pages_retransmitted, 0,
	             "losses were repaired by retransmission");
}

Test(exact_1500, impaired_link)
{
	impair_both("loss 3 dup 2 reorder 3");
	migrate_and_compare("sequential,rate=20000,fill=50,seed=12", 16, "verify on");
	cr_assert_gt(session(a, (int)a->host.migrations.next_id)->stats.pages_retransmitted, 0);
}

/* ---- refusals ---- */

TestSuite(refuse, .init = setup_9000, .fini = teardown, .timeout = 60);

static void assert_vm_unmoved(void)
{
	struct vm *g = host_vm_find(&a->host, "vm1");
	cr_assert_not_null(g, "the VM is still on the source");
	cr_assert_eq(g->machine.state, MACHINE_RUNNING, "and runs");
	cr_assert_eq(g->machine.throttle_percent, 0);
	uint64_t steps = vm_synthetic_step(&g->machine);
	pump_until(vm_synthetic_step(&g->machine) > steps, 5 * SECOND, "it keeps running");
}

/* The daemon runs as root and a CLI client names the key file: only a private regular file will
 * do, and each refusal says why. */
Test(refuse, key_files_that_are_not_private_regular_files)
{
	char path[96], link[96], out[512];

	snprintf(path, sizeof(path), "/tmp/ferry-test-openkey-%d", getpid());
	snprintf(link, sizeof(link), "/tmp/ferry-test-keylink-%d", getpid());
	write_file(path, "correct horse battery staple\n", 0644);
	cr_assert_neq(ctl_try(a, out, sizeof(out), "migrate listen vmk1 key %s", path), 0);
	cr_assert(strstr(out, "mode 0644 lets group or others in") != NULL, "%s", out);
	cr_assert_eq(chmod(path, 0600), 0);
	cr_assert_eq(symlink(path, link), 0);
	cr_assert_neq(ctl_try(a, out, sizeof(out), "migrate listen vmk1 key %s", link), 0);
	cr_assert(strstr(out, "symbolic link") != NULL, "%s", out);
	cr_assert_neq(ctl_try(a, out, sizeof(out), "migrate listen vmk1 key /tmp"), 0);
	cr_assert(strstr(out, "not a regular file") != NULL, "%s", out);
	cr_assert_eq(chown(path, 65534, 0), 0);
	cr_assert_neq(ctl_try(a, out, sizeof(out), "migrate listen vmk1 key %s", path), 0);
	cr_assert(strstr(out, "owned by uid 65534") != NULL, "%s", out);
	/* The same file, private and root's again, is taken. */
	cr_assert_eq(chown(path, 0, 0), 0);
	cr_assert_eq(ctl_try(a, out, sizeof(out), "migrate listen vmk1 key %s", path), 0, "%s",
	             out);
	unlink(link);
	unlink(path);
}

Test(refuse, wrong_key)
{
	create_vm(a, "vm1", 8, "uniform,rate=1000");
	char out[512];
	cr_assert_eq(ctl_try(a, out, sizeof(out), "migrate start vm1 to %s key %s", B_VMK_IP,
	                     other_key_path),
	             0, "%s", out);
	const struct migration_info *m = wait_done(a, (int)a->host.migrations.next_id, 10 * SECOND);
	cr_assert_eq(m->status, MIGRATION_FAILED);
	cr_assert(strstr(m->reason, "key") != NULL, "the reason names the key: %s", m->reason);
	cr_assert_null(host_vm_find(&b->host, "vm1"), "nothing arrived");
	assert_vm_unmoved();
}

Test(refuse, duplicate_name)
{
	create_vm(a, "vm1", 8, "uniform,rate=1000");
	ctl(b,
	    "vm create vm1 mem 8 mac 02:00:00:00:00:0b ip 10.10.0.11/24 portgroup \"VM Network\"");
	const struct migration_info *m = wait_done(a, start("vm1", ""), 10 * SECOND);
	cr_assert_eq(m->status, MIGRATION_FAILED);
	cr_assert(strstr(m->reason, "VM of that name") != NULL, "%s", m->reason);
	assert_vm_unmoved();
	cr_assert_eq(b->host.nb_vms, 1, "the destination's own VM stays alone");
}

Test(refuse, duplicate_mac)
{
	create_vm(a, "vm1", 8, "uniform,rate=1000");
	ctl(b, "vm create other mem 8 mac %s ip 10.10.0.11/24 portgroup \"VM Network\"", VM_MAC);
	const struct migration_info *m = wait_done(a, start("vm1", ""), 10 * SECOND);
	cr_assert_eq(m->status, MIGRATION_FAILED);
	cr_assert(strstr(m->reason, "MAC") != NULL, "%s", m->reason);
	assert_vm_unmoved();
}

Test(refuse, missing_portgroup)
{
	create_vm(a, "vm1", 8, "uniform,rate=1000");
	ctl(b, "portgroup del \"VM Network\"");
	const struct migration_info *m = wait_done(a, start("vm1", ""), 10 * SECOND);
	cr_assert_eq(m->status, MIGRATION_FAILED);
	cr_assert(strstr(m->reason, "port group") != NULL, "%s", m->reason);
	assert_vm_unmoved();
}

/* Raw datagrams to the destination's listener from a port of our own on a's vmk. */
struct inbox {
	unsigned int count;
	uint8_t last[512];
	uint16_t last_len;
};

static void inbox_rx(void *ctx, uint32_t ip, uint16_t port, const uint8_t *payload, uint16_t len,
                     uint16_t dst_port)
{
	struct inbox *inbox = ctx;
	(void)ip;
	(void)port;
	(void)dst_port;
	inbox->count++;
	inbox->last_len = len < sizeof(inbox->last) ? len : sizeof(inbox->last);
	memcpy(inbox->last, payload, inbox->last_len);
}

static void send_raw(const void *buf, uint16_t len)
{
	uint32_t ip;
	cr_assert_eq(netif_parse_ipv4(B_VMK_IP, &ip), 0);
	cr_assert_eq(netif_udp_send(&a->host.vmks[0]->netif, ip, PROTO_DEFAULT_PORT, 40000, buf,
	                            len, loop_now_ns(&a->host.loop)),
	             0);
	uint64_t before = b->host.migrations.rx_messages;
	pump_until(b->host.migrations.rx_messages > before, 5 * SECOND,
	           "the datagram never arrived");
}

static uint64_t drops(struct node *h, enum migration_drop_reason reason)
{
	return h->host.migrations.drops[reason];
}

static uint64_t all_drops(struct node *h)
{
	uint64_t sum = 0;
	for (unsigned int r = 0; r < MIGRATION_DROP_MAX; r++)
		sum += h->host.migrations.drops[r];
	return sum;
}

static uint16_t message(uint8_t *buf, enum proto_type type, uint64_t session, uint32_t seq,
                        const void *body, uint16_t body_len)
{
	size_t len = proto_write_header(buf, type, session, seq, body_len);
	memcpy(buf + len, body, body_len);
	return (uint16_t)(len + body_len);
}

Test(refuse, bad_packets_are_counted_and_change_nothing)
{
	struct inbox inbox = {0};
	uint8_t buf[4200];
	cr_assert_eq(netif_udp_bind(&a->host.vmks[0]->netif, 40000, inbox_rx, &inbox), 0);

	/* Unknown version: a HELLO of version 2 gets a refusal that says why. */
	struct proto_hello hello = {0};
	snprintf(hello.vm_name, sizeof(hello.vm_name), "intruder");
	uint16_t len = message(buf, PROTO_HELLO, 77, 0, &hello, sizeof(hello));
	buf[4] = 2;
	send_raw(buf, len);
	cr_assert_eq(drops(b, MIGRATION_DROP_VERSION), 1);
	pump_until(inbox.count > 0, 5 * SECOND, "no refusal came back");
	cr_assert_eq(inbox.count, 1);
	struct proto_message reply;
	cr_assert_eq(proto_parse(inbox.last, inbox.last_len, &reply), PROTO_OK);
	cr_assert_eq(reply.type, PROTO_REFUSE);
	struct proto_refuse refuse;
	memcpy(&refuse, reply.body, sizeof(refuse));
	cr_assert_eq(rte_be_to_cpu_32(refuse.reason), PROTO_REFUSE_VERSION);

	/* Garbage, a truncated header, a body shorter than its type. */
	memset(buf, 0xa5, 300);
	send_raw(buf, 300);
	send_raw(buf, 10);
	len = message(buf, PROTO_HELLO, 78, 0, &hello, sizeof(hello));
	send_raw(buf, (uint16_t)(len - 20));
	cr_assert_eq(drops(b, MIGRATION_DROP_MALFORMED), 3);

	/* Pages, state and acks for a session that does not exist. */
	struct proto_pages pages = {.page = rte_cpu_to_be_64(1), .data_len = rte_cpu_to_be_16(8)};
	uint8_t body[sizeof(pages) + 8] = {0};
	memcpy(body, &pages, sizeof(pages));
	send_raw(buf, message(buf, PROTO_PAGES, 79, 1, body, sizeof(body)));
	struct proto_state state = {0};
	send_raw(buf, message(buf, PROTO_STATE, 79, 2, &state, sizeof(state)));
	cr_assert_eq(drops(b, MIGRATION_DROP_UNKNOWN_SESSION), 2);

	/* A forged AUTH in a session we opened ourselves: refused for the key. */
	len = message(buf, PROTO_HELLO, 80, 0, &hello, sizeof(hello));
	inbox.count = 0;
	send_raw(buf, len);
	pump_until(inbox.count > 0, 5 * SECOND, "no challenge came back");
	inbox.count = 0;
	struct proto_auth auth = {{0}};
	send_raw(buf, message(buf, PROTO_AUTH, 80, 0, &auth, sizeof(auth)));
	cr_assert_eq(drops(b, MIGRATION_DROP_AUTH), 1);
	pump_until(inbox.count > 0, 5 * SECOND, "no refusal came back");
	cr_assert_eq(inbox.count, 1);
	cr_assert_eq(proto_parse(inbox.last, inbox.last_len, &reply), PROTO_OK);
	cr_assert_eq(reply.type, PROTO_REFUSE);
	cr_assert_eq(b->host.nb_vms, 0, "no VM was made on the destination");

	/* A real migration still goes through. */
	create_vm(a, "vm1", 8, "uniform,rate=1000,fill=20");
	const struct migration_info *m =
	        wait_done(a, start("vm1", "verify on " LOOSE_PREFLIGHT), 20 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	struct vm *moved = host_vm_find(&b->host, "vm1");
	cr_assert_not_null(moved);

	/* Replays of that session: its HELLO, pages over memory, its state again. */
	ctl(b, "vm pause vm1");
	uint64_t hash = machine_memory_hash(&moved->machine);
	uint64_t old_session = m->session;
	uint64_t replays_before = all_drops(b);
	send_raw(buf, message(buf, PROTO_HELLO, old_session, 0, &hello, sizeof(hello)));
	for (uint32_t seq = 1; seq <= 5; seq++) {
		uint8_t page[sizeof(pages) + 4096];
		memset(page, 0x5a, sizeof(page));
		struct proto_pages p = {.page = rte_cpu_to_be_64(seq),
		                        .data_len = rte_cpu_to_be_16(4096),
		                        .round = rte_cpu_to_be_32(1000)};
		memcpy(page, &p, sizeof(p));
		send_raw(buf, message(buf, PROTO_PAGES, old_session, seq, page, sizeof(page)));
	}
	send_raw(buf, message(buf, PROTO_AUTH, old_session, 0, &auth, sizeof(auth)));
	uint64_t replays = all_drops(b) - replays_before;
	cr_assert_eq(replays, 7, "every replayed message was dropped and counted (%lu)",
	             (unsigned long)replays);
	cr_assert_eq(machine_memory_hash(&moved->machine), hash, "the VM's memory did not change");
	cr_assert_eq(b->host.nb_vms, 1);
	netif_udp_unbind(&a->host.vmks[0]->netif, 40000);
}

/* Everything the destination says after the handshake is sealed with its own key. A REFUSE,
 * CONFIRM, ACK or ACCEPT forged from the destination's address and port with the live session's
 * id, plain or with a made-up tag, is dropped for authentication; the migration goes on as if it
 * had never been sent, and the VM ends on one host, the destination. */
Test(refuse, forged_replies_from_the_destination_change_nothing)
{
	create_vm(a, "vm1", 8, "uniform,rate=1000,fill=100");
	int id = start("vm1", "max-bandwidth 100M " LOOSE_PREFLIGHT);
	while (session(a, id)->status != MIGRATION_ACTIVE) {
		cr_assert(session(a, id)->running);
		pump();
	}
	const struct migration_info *m = session(a, id);
	uint64_t auth_before = drops(a, MIGRATION_DROP_AUTH);
	struct proto_refuse refuse = {.reason = rte_cpu_to_be_32(PROTO_REFUSE_AUTH)};
	snprintf(refuse.text, sizeof(refuse.text), "forged");
	struct proto_confirm confirm = {0};
	struct proto_ack ack = {.cumulative = rte_cpu_to_be_32(1u << 30), .sack = UINT64_MAX};
	struct proto_accept accept = {.mtu = rte_cpu_to_be_16(9000)};
	const struct {
		enum proto_type type;
		const void *body;
		uint16_t len;
	} forged[] = {
	        {PROTO_REFUSE, &refuse, sizeof(refuse)},
	        {PROTO_CONFIRM, &confirm, sizeof(confirm)},
	        {PROTO_ACK, &ack, sizeof(ack)},
	        {PROTO_ACCEPT, &accept, sizeof(accept)},
	};
	uint32_t ip;
	cr_assert_eq(netif_parse_ipv4(A_VMK_IP, &ip), 0);
	unsigned int sent = 0;
	for (unsigned int i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
		/* Plain (sequence 0), and as a control message with a tag of zeros. */
		for (uint32_t seq = 0; seq <= PROTO_CONTROL_SEQ_BASE + 1;
		     seq += PROTO_CONTROL_SEQ_BASE + 1) {
			uint8_t buf[200] = {0};
			uint16_t len = message(buf, forged[i].type, m->session, seq, forged[i].body,
			                       forged[i].len);
			len = (uint16_t)(len + (seq != 0 ? PROTO_TAG_LEN : 0));
			cr_assert_eq(netif_udp_send(&b->host.vmks[0]->netif, ip, m->local_port,
			                            PROTO_DEFAULT_PORT, buf, len,
			                            loop_now_ns(&b->host.loop)),
			             0);
			sent++;
			pump();
		}
	}
	m = wait_done(a, id, 30 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	cr_assert_eq(drops(a, MIGRATION_DROP_AUTH) - auth_before, sent,
	             "every forged reply dropped for authentication");
	cr_assert_null(host_vm_find(&a->host, "vm1"), "the VM left the source");
	cr_assert_not_null(host_vm_find(&b->host, "vm1"), "and runs on the destination");
}

/* Pages forged into a live session (its id, its peer's address and port, a page past the VM's
 * memory) are never written. */
Test(refuse, page_out_of_range_in_a_live_session)
{
	create_vm(a, "vm1", 8, "uniform,rate=1000,fill=100");
	int id = start("vm1", "max-bandwidth 100M min-bandwidth 10M");
	while (session(a, id)->status != MIGRATION_ACTIVE) {
		cr_assert(session(a, id)->running);
		pump();
	}
	const struct migration_info *m = session(a, id);
	uint8_t buf[200];
	struct proto_pages p = {.page = rte_cpu_to_be_64(1ull << 40),
	                        .data_len = rte_cpu_to_be_16(8)};
	uint8_t body[sizeof(p) + 8] = {0};
	memcpy(body, &p, sizeof(p));
	/* From the session's own port, so only the page number is wrong. */
	uint32_t ip;
	netif_parse_ipv4(B_VMK_IP, &ip);
	uint16_t len = message(buf, PROTO_PAGES, m->session, 100000, body, sizeof(body));
	netif_udp_send(&a->host.vmks[0]->netif, ip, PROTO_DEFAULT_PORT, m->local_port, buf, len,
	               loop_now_ns(&a->host.loop));
	struct proto_zero_run z = {.first_page = rte_cpu_to_be_64(2040),
	                           .count = rte_cpu_to_be_32(100)};
	len = message(buf, PROTO_ZERO_RUN, m->session, 100001, &z, sizeof(z));
	netif_udp_send(&a->host.vmks[0]->netif, ip, PROTO_DEFAULT_PORT, m->local_port, buf, len,
	               loop_now_ns(&a->host.loop));
	m = wait_done(a, id, 30 * SECOND);
	/* From the session's own address and port, but without the session's tag: dropped for
	 * authentication before anything else is looked at. */
	cr_assert_geq(drops(b, MIGRATION_DROP_AUTH), 2);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
}

/* ---- failure before the confirmation ---- */

TestSuite(failure, .init = setup_9000, .fini = teardown, .timeout = 60);

Test(failure, destination_gone_then_second_migration)
{
	create_vm(a, "vm1", 64, "uniform,rate=5000,fill=100");
	int id = start("vm1", "max-bandwidth 200M min-bandwidth 10M");
	/* Into pre-copy, then the destination host dies. */
	uint64_t deadline = loop_tsc_now_ns() + 10 * SECOND;
	while (session(a, id)->stats.pages_normal < 2000) {
		cr_assert_lt(loop_tsc_now_ns(), deadline);
		pump();
	}
	cr_assert_eq(session(a, id)->status, MIGRATION_ACTIVE);
	node_free(b);
	b = NULL;
	const struct migration_info *m = wait_done(a, id, 15 * SECOND);
	cr_assert_eq(m->status, MIGRATION_FAILED);
	cr_assert(strstr(m->reason, "stopped answering") != NULL, "%s", m->reason);
	assert_vm_unmoved();

	/* The destination comes back; the second attempt goes through. */
	drain(a_to_b);
	drain(b_to_a);
	b = node_new(B_VMK_IP, a_to_b, b_to_a, 9000);
	m = wait_done(a, start("vm1", "verify on " LOOSE_PREFLIGHT), 60 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	cr_assert_not_null(host_vm_find(&b->host, "vm1"));
	cr_assert_null(host_vm_find(&a->host, "vm1"));
}

Test(failure, cancel_resumes_on_source)
{
	create_vm(a, "vm1", 64, "uniform,rate=5000,fill=100");
	int id = start("vm1", "max-bandwidth 100M force");
	while (session(a, id)->stats.pages_normal < 1000)
		pump();
	ctl(a, "migrate cancel %d", id);
	cr_assert_eq(session(a, id)->status, MIGRATION_CANCELLED);
	int incoming_id = (int)b->host.migrations.next_id;
	pump_until(!session(b, incoming_id)->running, 5 * SECOND, "the destination never heard");
	const struct migration_info *incoming = session(b, incoming_id);
	assert_vm_unmoved();
	cr_assert_null(host_vm_find(&b->host, "vm1"));
	cr_assert_eq(incoming->status, MIGRATION_CANCELLED, "the destination dropped its copy");
}

Test(failure, no_convergence_gives_up_with_a_reason)
{
	create_vm(a, "vm1", 16, "uniform,rate=max,fill=10");
	const struct migration_info *m = wait_done(
	        a, start("vm1", "max-bandwidth 100M max-rounds 3 auto-converge off force"),
	        30 * SECOND);
	cr_assert_eq(m->status, MIGRATION_FAILED);
	cr_assert(strstr(m->reason, "did not converge") != NULL, "%s", m->reason);
	assert_vm_unmoved();
}

/* ---- the pre-flight check ---- */

TestSuite(preflight, .init = setup_9000, .fini = teardown, .timeout = 60);

static const struct migration_info *check(const char *options)
{
	char out[2048];
	int ret = ctl_try(a, out, sizeof(out), "migrate check vm1 to %s key %s %s", B_VMK_IP,
	                  key_path, options);
	cr_assert_eq(ret, 0, "%s", out);
	return wait_done(a, (int)a->host.migrations.next_id, 20 * SECOND);
}

Test(preflight, passes_and_moves_nothing)
{
	create_vm(a, "vm1", 16, "uniform,rate=1000");
	const struct migration_info *m = check("min-bandwidth 1M");
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	for (unsigned int i = 0; i < MIGRATION_CHECK_MAX; i++) {
		cr_assert(m->checks[i].done, "%s was checked", migration_check_names[i]);
		cr_assert(m->checks[i].ok, "%s: %s", migration_check_names[i], m->checks[i].value);
	}
	cr_assert_eq(m->peer_mtu, 9000);
	assert_vm_unmoved();
	int there_id = (int)b->host.migrations.next_id;
	pump_until(!session(b, there_id)->running, 5 * SECOND,
	           "the destination never ended the check");
	const struct migration_info *there = session(b, there_id);
	cr_assert_eq(b->host.nb_vms, 0, "nothing arrived");
	cr_assert_eq(there->status, MIGRATION_COMPLETED, "%s", there->reason);
}

static void assert_check_failed(const struct migration_info *m, enum migration_check_item item,
                                const char *words)
{
	cr_assert_eq(m->status, MIGRATION_FAILED);
	cr_assert(m->checks[item].done && !m->checks[item].ok, "%s failed",
	          migration_check_names[item]);
	cr_assert(strstr(m->reason, words) != NULL, "the reason says why: %s", m->reason);
	assert_vm_unmoved();
	cr_assert_eq(b->host.nb_vms, 0);
}

Test(preflight, round_trip_over_the_limit)
{
	create_vm(a, "vm1", 16, "uniform,rate=1000");
	assert_check_failed(check("rtt-limit 0.0001"), MIGRATION_CHECK_RTT, "round-trip time");
}

Test(preflight, bandwidth_under_the_minimum)
{
	create_vm(a, "vm1", 16, "uniform,rate=1000");
	assert_check_failed(check("max-bandwidth 50M"), MIGRATION_CHECK_BANDWIDTH, "bandwidth");
}

Test(preflight, missing_portgroup)
{
	create_vm(a, "vm1", 16, "uniform,rate=1000");
	ctl(b, "portgroup del \"VM Network\"");
	assert_check_failed(check(""), MIGRATION_CHECK_ADMISSION, "port group");
}

Test(preflight, mtu_mismatch)
{
	create_vm(a, "vm1", 16, "uniform,rate=1000");
	ctl(b, "vmk set vmk1 mtu 1500");
	assert_check_failed(check(""), MIGRATION_CHECK_MTU, "MTU");
}

/* The destination's MTU comes off the wire and sizes every page message: under the minimum, the
 * migration is refused with the reason, even when forced, and nothing divides by it. */
Test(preflight, a_destination_mtu_under_the_minimum_is_refused_even_forced)
{
	static const unsigned int mtus[] = {575, 200};

	create_vm(a, "vm1", 16, "uniform,rate=1000");
	for (unsigned int i = 0; i < sizeof(mtus) / sizeof(mtus[0]); i++) {
		ctl(b, "vmk set vmk1 mtu %u", mtus[i]);
		const struct migration_info *m = wait_done(a, start("vm1", "force"), 20 * SECOND);
		char words[64];
		snprintf(words, sizeof(words), "vMotion MTU is %u, under the 576", mtus[i]);
		cr_assert_eq(m->status, MIGRATION_FAILED);
		cr_assert(strstr(m->reason, words) != NULL, "the reason says why: %s", m->reason);
		assert_vm_unmoved();
	}
}

Test(preflight, start_refuses_when_an_item_fails_unless_forced)
{
	create_vm(a, "vm1", 16, "uniform,rate=1000");
	const struct migration_info *m =
	        wait_done(a, start("vm1", "rtt-limit 0.0001"), 20 * SECOND);
	assert_check_failed(m, MIGRATION_CHECK_RTT, "round-trip time");
	m = wait_done(a, start("vm1", "rtt-limit 0.0001 force"), 30 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	cr_assert_not_null(host_vm_find(&b->host, "vm1"));
}

/* ---- the announce ---- */

TestSuite(announce, .init = setup_9000, .fini = teardown, .timeout = 60);

Test(announce, rarp_on_the_destination_uplink_on_schedule)
{
	char pcap_path[64];
	snprintf(pcap_path, sizeof(pcap_path), "/tmp/ferry-test-mig-announce-%d.pcap", getpid());
	ctl(b, "port add up1 net_pcap_mig%d,tx_pcap=%s role uplink", getpid() % 1000, pcap_path);
	create_vm(a, "vm1", 16, "hotcold,rate=2000,fill=30");
	const struct migration_info *m =
	        wait_done(a, start("vm1", "announce 4,30,40 " LOOSE_PREFLIGHT), 30 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	struct vm *moved = host_vm_find(&b->host, "vm1");
	cr_assert_not_null(moved);
	pump_until(!announce_running(&moved->announce), 5 * SECOND, "the announce never ended");
	/* The last frame crosses the vnic's ring, the switch and the port's transmit buffer. */
	for (int i = 0; i < 3; i++)
		pump();
	ctl(b, "port del up1");

	uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0x0a};
	struct harness_rarp rarp;
	cr_assert_eq(harness_read_rarp(pcap_path, mac, 10, &rarp), 0);
	cr_assert_eq(rarp.frames, 4, "as many frames as configured (%u)", rarp.frames);
	cr_assert_eq(rarp.strays, 0,
	             "each is 60 bytes and a VLAN 10 tag, broadcast, from the VM's MAC, opcode 3, "
	             "the VM as sender and target, addresses 0");
	const double expected_ms[] = {30, 70, 110};
	for (unsigned int i = 0; i < 3; i++) {
		double gap = (rarp.times[i + 1] - rarp.times[i]) * 1e3;
		cr_assert(gap > expected_ms[i] - 10 && gap < expected_ms[i] + 10,
		          "gap %u is %.1f ms, configured %.0f", i, gap, expected_ms[i]);
	}
	cr_assert_eq(harness_tshark_count(pcap_path, "arp.opcode == 3 && vlan.id == 10"), 4,
	             "tshark dissects four RARP requests on VLAN 10");
	unlink(pcap_path);
}

/* A vMotion vmk too small to carry page fragments is refused at once, with the reason. */
Test(refuse, vmk_mtu_too_small)
{
	char out[512];

	create_vm(a, "vm1", 8, "uniform,rate=1000");
	ctl(a, "vmk set vmk1 mtu 500");
	cr_assert_neq(
	        ctl_try(a, out, sizeof(out), "migrate start vm1 to %s key %s", B_VMK_IP, key_path),
	        0);
	cr_assert(strstr(out, "too small for migration") != NULL, "%s", out);
	assert_vm_unmoved();
}
