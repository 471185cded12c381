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
#include <rte_ring.h>

#include "ferryd/commands.h"
#include "vm/vm_synthetic.h"

struct node *a, *b;
static struct rte_ring *a_to_b, *b_to_a;
char key_path[64], other_key_path[64];

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
	drain(a_to_b);
	drain(b_to_a);
	rte_ring_free(a_to_b);
	rte_ring_free(b_to_a);
	unlink(key_path);
	unlink(other_key_path);
}

/* One turn of each live host's worker. */
void pump(void)
{
	if (a != NULL && a->alive)
		loop_run_once(&a->host.loop);
	if (b != NULL && b->alive)
		loop_run_once(&b->host.loop);
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
		cr_assert_lt(loop_tsc_now_ns(), deadline, "migration %d still %s after %.0f s", id,
		             migration_status_name(session(h, id)->status),
		             (double)timeout_ns / 1e9);
		pump();
	}
	return session(h, id);
}

/* Starts a migration of vm from a to b; returns its id on a. */
int start(const char *vm, const char *options)
{
	char out[2048];
	int ret = ctl_try(a, out, sizeof(out), "migrate start %s to %s key %s %s", vm, B_VMK_IP,
	                  key_path, options);
	cr_assert_eq(ret, 0, "%s", out);
	return (int)a->host.migrations.next_id;
}

void create_vm(struct node *h, const char *name, unsigned int mib, const char *workload)
{
	ctl(h, "vm create %s mem %u mac %s ip 10.10.0.10/24 portgroup \"VM Network\" workload %s",
	    name, mib, VM_MAC, workload);
}

void assert_vm_unmoved(void)
{
	struct vm *g = host_vm_find(&a->host, "vm1");
	cr_assert_not_null(g, "the VM is still on the source");
	cr_assert_eq(g->machine.state, MACHINE_RUNNING, "and runs");
	cr_assert_eq(g->machine.throttle_percent, 0);
	uint64_t steps = vm_synthetic_step(&g->machine);
	pump_until(vm_synthetic_step(&g->machine) > steps, 5 * SECOND, "it keeps running");
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
	node_free(b);
	b = NULL;
}

void destination_restart(unsigned int mtu)
{
	drain(a_to_b);
	drain(b_to_a);
	b = node_new(B_VMK_IP, a_to_b, b_to_a, mtu);
}
