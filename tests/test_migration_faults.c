/* The commit protocol under faults: for every step of a migration, the wire cut after it, the
 * destination killed at it and the source killed at it; the VM never runs on two hosts. And the
 * messages that would do the most harm, forged or replayed at the moment they would do it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_byteorder.h>

#include "migrate/session.h"
#include "pair.h"
#include "vm/disklock.h"

enum fault { FAULT_CUT, FAULT_KILL_DESTINATION, FAULT_KILL_SOURCE };

/* A step: the first message of a type in a direction, at a moment of the migration. */
struct step {
	const char *name;
	enum wire_direction direction;
	enum proto_type type;
	enum { ANY_TIME, IN_SWITCHOVER, AFTER_STATE } when;
};

static const struct step steps[] = {
        {"hello", WIRE_A_TO_B, PROTO_HELLO, ANY_TIME},
        {"challenge", WIRE_B_TO_A, PROTO_CHALLENGE, ANY_TIME},
        {"auth", WIRE_A_TO_B, PROTO_AUTH, ANY_TIME},
        {"accept", WIRE_B_TO_A, PROTO_ACCEPT, ANY_TIME},
        {"probe", WIRE_A_TO_B, PROTO_PROBE, ANY_TIME},
        {"first ack", WIRE_B_TO_A, PROTO_ACK, ANY_TIME},
        {"first pages", WIRE_A_TO_B, PROTO_PAGES, ANY_TIME},
        {"zero run", WIRE_A_TO_B, PROTO_ZERO_RUN, ANY_TIME},
        {"pages, VM paused", WIRE_A_TO_B, PROTO_PAGES, IN_SWITCHOVER},
        {"state", WIRE_A_TO_B, PROTO_STATE, ANY_TIME},
        {"ack of the state", WIRE_B_TO_A, PROTO_ACK, AFTER_STATE},
        {"confirm", WIRE_B_TO_A, PROTO_CONFIRM, ANY_TIME},
};

#define NB_STEPS (sizeof(steps) / sizeof(steps[0]))

struct fault_run {
	const struct step *step;
	enum fault fault;
	int id;
	bool state_passed; /* the STATE went onto the wire to b */
	bool hit;          /* the step's message passed */
	bool cut;          /* everything after it is dropped */
	bool kill_pending;
	bool victim_held; /* the killed host held the VM (running, or paused to move) */
};

static bool source_paused(int id)
{
	return a != NULL && session(a, id)->status == MIGRATION_SWITCHOVER;
}

static bool fault_filter(enum wire_direction direction, struct rte_mbuf *frame, void *ctx)
{
	struct fault_run *r = ctx;
	uint16_t len;
	const uint8_t *msg = wire_migration_message(frame, &len);

	if (r->cut)
		return false;
	if (msg == NULL)
		return true;
	enum proto_type type = msg[offsetof(struct proto_header, type)];
	const struct step *s = r->step;
	bool now = s->when == ANY_TIME || (s->when == IN_SWITCHOVER && source_paused(r->id)) ||
	           (s->when == AFTER_STATE && r->state_passed);
	if (direction == WIRE_A_TO_B && type == PROTO_STATE)
		r->state_passed = true;
	if (!r->hit && direction == s->direction && type == s->type && now) {
		r->hit = true;
		if (r->fault == FAULT_CUT)
			r->cut = true; /* this one passes, nothing after it */
		else
			r->kill_pending = true;
	}
	return true;
}

/* True while a host has a session that still runs and is not waiting on an unknown outcome. */
static bool busy(struct node *h)
{
	struct migration_info info;

	if (h == NULL)
		return false;
	for (uint32_t id = 1; id <= h->host.migrations.next_id; id++)
		if (migration_info(&h->host.migrations, id, loop_now_ns(&h->host.loop), &info) ==
		            0 &&
		    info.running && info.status != MIGRATION_UNKNOWN_OUTCOME)
			return true;
	return false;
}

static bool runs_on(struct node *h)
{
	struct vm *vm = h != NULL ? host_vm_find(&h->host, "vm1") : NULL;
	return vm != NULL && vm->machine.state == MACHINE_RUNNING;
}

static void pump_for(uint64_t ns)
{
	uint64_t end = loop_tsc_now_ns() + ns;
	while (loop_tsc_now_ns() < end)
		pump();
}

/* Who holds vm1's disk lock on the datastore in folder, as the lock file says. */
static const char *disk_owner(const char *folder)
{
	static struct disklock_holder holder;
	char path[128];

	snprintf(path, sizeof(path), "%s/vm1/vm1-flat.vmdk", folder);
	return disklock_holder(path, &holder) == 0 ? holder.owner : "(nobody)";
}

/* One migration with one fault; returns where the VM ended and how, for the matrix. With a
 * disk, the VM's disk is on a datastore both hosts mount, and its lock must end with the host
 * that runs it. */
static void run_case(const struct step *step, enum fault fault, bool disk, char *out, size_t size)
{
	struct fault_run r = {.step = step, .fault = fault};
	const char *how = "";
	char folder[64];

	setup_1500();
	snprintf(folder, sizeof(folder), "/tmp/ferry-faults-ds-%d", getpid());
	if (disk) {
		cr_assert(mkdir(folder, 0755) == 0 || errno == EEXIST);
		ctl(a, "host name host-a");
		ctl(b, "host name host-b");
		ctl(a, "datastore add ds1 %s lease 2", folder);
		ctl(b, "datastore add ds1 %s lease 2", folder);
	}
	/* Half the pages written (zero runs for the rest), fast enough that the pause always
	 * finds pages to send. */
	create_vm_with(a, "vm1", 4, "uniform,rate=5000,fill=50",
	               disk ? "datastore ds1 disk-mib 1" : "");
	wire_filter = fault_filter;
	wire_filter_ctx = &r;
	r.id = start("vm1", "verify on " LOOSE_PREFLIGHT);
	uint64_t deadline = loop_tsc_now_ns() + 30 * SECOND;
	do {
		cr_assert_lt(loop_tsc_now_ns(), deadline, "%s: the migration never settled",
		             step->name);
		pump();
		if (r.kill_pending) {
			r.kill_pending = false;
			struct node *victim = fault == FAULT_KILL_DESTINATION ? b : a;
			r.victim_held = host_vm_find(&victim->host, "vm1") != NULL;
			if (fault == FAULT_KILL_DESTINATION)
				destination_kill();
			else
				source_kill();
		}
	} while (busy(a) || busy(b));
	cr_assert(r.hit, "%s: the step happened", step->name);

	/* The outcome may be unknown to the source only once its state went out. */
	if (a != NULL && session(a, r.id)->status == MIGRATION_UNKNOWN_OUTCOME) {
		cr_assert(r.state_passed, "%s: unknown before the state went out", step->name);
		struct vm *held = host_vm_find(&a->host, "vm1");
		cr_assert(held != NULL && held->machine.state == MACHINE_PAUSED,
		          "%s: an unknown outcome keeps the VM paused on the source", step->name);
		cr_assert_not(runs_on(a) && runs_on(b));
		if (fault == FAULT_CUT) {
			/* The wire heals: the source's question gets the destination's answer. */
			r.cut = false;
			pump_until(session(a, r.id)->status != MIGRATION_UNKNOWN_OUTCOME,
			           10 * SECOND, "%s: the destination's answer settles it",
			           step->name);
			how = " (asked)";
		} else {
			/* No one answers for a dead host: it stays unknown until the operator, who
			 * knows the destination died and its copy with it, settles it. */
			pump_for(SECOND + SECOND / 2);
			cr_assert_eq(session(a, r.id)->status, MIGRATION_UNKNOWN_OUTCOME);
			ctl(a, "migrate resolve %d resume-source", r.id);
			how = " (resolved)";
		}
	}
	bool on_a = runs_on(a), on_b = runs_on(b);
	cr_assert_not(on_a && on_b, "%s: the VM runs on two hosts", step->name);
	/* It runs somewhere, unless it died with the host that held it. */
	cr_assert(on_a || on_b || r.victim_held, "%s: the VM runs nowhere", step->name);
	/* No half copy stays behind on the destination. */
	cr_assert(on_b || b == NULL || host_vm_find(&b->host, "vm1") == NULL,
	          "%s: a copy stays on the destination", step->name);
	if (on_b && a != NULL)
		cr_assert_null(host_vm_find(&a->host, "vm1"), "%s: the source keeps a copy",
		               step->name);
	if (disk && (on_a || on_b))
		cr_assert_str_eq(disk_owner(folder), on_a ? "host-a" : "host-b",
		                 "%s: the disk's lock is with the host that runs the VM",
		                 step->name);
	snprintf(out, size, "%s%s",
	         on_a   ? "source"
	         : on_b ? "destination"
	                : "none: it died with the host that held it",
	         how);
	teardown();
	if (disk) {
		char command[128];
		snprintf(command, sizeof(command), "rm -rf '%s'", folder);
		cr_assert_eq(system(command), 0);
	}
}

static void run_column(enum fault fault, bool disk, const char *title)
{
	char outcome[NB_STEPS][64];

	for (unsigned int k = 0; k < NB_STEPS; k++)
		run_case(&steps[k], fault, disk, outcome[k], sizeof(outcome[k]));
	/* The column of the fault matrix this test makes, for the log. */
	fprintf(stderr, "fault matrix: %s\n", title);
	for (unsigned int k = 0; k < NB_STEPS; k++)
		fprintf(stderr, "  %2u %-22s %s %-10s -> VM on %s\n", k + 1, steps[k].name,
		        steps[k].direction == WIRE_A_TO_B ? "src->dst" : "dst->src",
		        proto_type_name(steps[k].type), outcome[k]);
}

TestSuite(faults, .timeout = 300);

Test(faults, wire_cut_after_each_step)
{
	run_column(FAULT_CUT, false, "everything after the step dropped, then the wire heals");
}

Test(faults, destination_killed_at_each_step)
{
	run_column(FAULT_KILL_DESTINATION, false, "the destination killed at the step");
}

Test(faults, source_killed_at_each_step)
{
	run_column(FAULT_KILL_SOURCE, false, "the source killed at the step");
}

/* The same with a disk on shared storage, whose lock passes at the commit. */
Test(faults, wire_cut_after_each_step_with_a_disk)
{
	run_column(FAULT_CUT, true, "with a disk: everything after the step dropped, then healed");
}

Test(faults, destination_killed_at_each_step_with_a_disk)
{
	run_column(FAULT_KILL_DESTINATION, true, "with a disk: the destination killed at the step");
}

/* ---- forgeries at the worst moment, and true replays ---- */

TestSuite(forged, .init = setup_1500, .fini = teardown, .timeout = 120);

/* Holds back what the test says, in one direction, from a moment on. */
struct hold {
	int id;
	bool state_passed;
	bool replies_after_state; /* b->a after the STATE */
	bool state;               /* the STATE itself, every copy */
	unsigned int states_held; /* copies of the STATE held back */
};

static bool hold_filter(enum wire_direction direction, struct rte_mbuf *frame, void *ctx)
{
	struct hold *h = ctx;
	uint16_t len;
	const uint8_t *msg = wire_migration_message(frame, &len);

	if (msg == NULL)
		return true;
	enum proto_type type = msg[offsetof(struct proto_header, type)];
	if (direction == WIRE_A_TO_B && type == PROTO_STATE) {
		h->state_passed = !h->state;
		h->states_held += h->state;
		return !h->state;
	}
	return !(direction == WIRE_B_TO_A && h->replies_after_state && h->state_passed);
}

/* A VM on a, migrating to b through the hold filter; returns the source's session id. */
static int start_held_in(struct hold *hold, const char *mode)
{
	create_vm(a, "vm1", 4, "uniform,rate=5000,fill=50");
	wire_filter = hold_filter;
	wire_filter_ctx = hold;
	hold->id = start("vm1", mode);
	return hold->id;
}

static int start_held(struct hold *hold)
{
	return start_held_in(hold, LOOSE_PREFLIGHT);
}

/* A control message as the destination would send it, with the live session's id, a fresh
 * number and a tag of zeros, from the destination's address and port to the source's. */
static void forge_to_source(int id, enum proto_type type, const void *body, uint16_t body_len,
                            uint64_t seq)
{
	uint8_t buf[256] = {0};
	uint32_t ip;
	const struct migration_info *m = session(a, id);
	uint16_t len = message(buf, type, m->session, seq, body, body_len);

	cr_assert_eq(netif_parse_ipv4(B_VMK_IP, &ip), 0);
	wire_inject_udp(WIRE_B_TO_A, ip, PROTO_DEFAULT_PORT, m->local_port, buf,
	                (uint16_t)(len + (seq != 0 ? PROTO_TAG_LEN : 0)));
	pump();
}

/* A REFUSE forged after the destination took the state would, believed, resume the VM on the
 * source while the destination runs it: dropped, and the source asks the destination instead. */
Test(forged, a_refuse_after_the_destination_took_the_state)
{
	struct hold hold = {.replies_after_state = true};

	start_held(&hold);
	pump_until(runs_on(b), 20 * SECOND, "the destination resumes the VM");
	struct proto_refuse refuse = {.reason = rte_cpu_to_be_32(PROTO_REFUSE_ABORTED)};
	uint64_t auth = drops(a, MIGRATION_DROP_AUTH);
	forge_to_source(hold.id, PROTO_REFUSE, &refuse, sizeof(refuse), 0);
	forge_to_source(hold.id, PROTO_REFUSE, &refuse, sizeof(refuse),
	                PROTO_CONTROL_SEQ_BASE + 99);
	cr_assert_eq(drops(a, MIGRATION_DROP_AUTH) - auth, 2, "both dropped for authentication");
	pump_until(session(a, hold.id)->status == MIGRATION_UNKNOWN_OUTCOME, 10 * SECOND,
	           "silence after the state makes the outcome unknown");
	cr_assert_not(runs_on(a), "and the VM stays paused on the source");
	forge_to_source(hold.id, PROTO_REFUSE, &refuse, sizeof(refuse),
	                PROTO_CONTROL_SEQ_BASE + 999);
	cr_assert_not(runs_on(a), "a forged answer to the question changes nothing");
	hold.replies_after_state = false;
	const struct migration_info *m = wait_done(a, hold.id, 10 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	cr_assert(runs_on(b));
	cr_assert_null(host_vm_find(&a->host, "vm1"), "on one host only");
}

/* An ACCEPT forged while the real one is held back would, believed, set the MTU every page message
 * is cut to (84 once divided by zero): dropped, plain or with a made-up tag, and the handshake
 * goes on with the real one. */
static bool hold_accept(enum wire_direction direction, struct rte_mbuf *frame, void *ctx)
{
	bool *holding = ctx;
	uint16_t len;
	const uint8_t *msg = wire_migration_message(frame, &len);

	return !(*holding && direction == WIRE_B_TO_A && msg != NULL &&
	         msg[offsetof(struct proto_header, type)] == PROTO_ACCEPT);
}

Test(forged, an_accept_while_the_real_one_is_held_back)
{
	bool holding = true;

	create_vm(a, "vm1", 4, "uniform,rate=1000,fill=50");
	wire_filter = hold_accept;
	wire_filter_ctx = &holding;
	int id = start("vm1", LOOSE_PREFLIGHT);
	pump_until(session(a, id)->local_port != 0 && session(a, id)->cipher != 0, 10 * SECOND,
	           "the source has the destination's terms");
	struct proto_accept accept = {.mtu = rte_cpu_to_be_16(84),
	                              .free_memory_mb = rte_cpu_to_be_32(1 << 20)};
	uint64_t auth = drops(a, MIGRATION_DROP_AUTH);
	forge_to_source(id, PROTO_ACCEPT, &accept, sizeof(accept), 0);
	forge_to_source(id, PROTO_ACCEPT, &accept, sizeof(accept), PROTO_CONTROL_SEQ_BASE + 1);
	cr_assert_eq(drops(a, MIGRATION_DROP_AUTH) - auth, 2, "both dropped for authentication");
	cr_assert_eq(session(a, id)->status, MIGRATION_SETUP, "the handshake waits on");
	holding = false;
	const struct migration_info *m = wait_done(a, id, 20 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	cr_assert_eq(m->peer_mtu, 1500, "the real ACCEPT's MTU");
}

/* A CONFIRM (or an ACK covering the state) forged while the real STATE is lost would, believed,
 * make the source free its copy with no copy anywhere: dropped, and the migration ends as if they
 * were never sent: the destination never got the state, says so when asked, and the VM runs on
 * the source again. */
Test(forged, a_confirm_and_an_ack_while_the_state_is_lost)
{
	struct hold hold = {.state = true};

	start_held(&hold);
	pump_until(hold.states_held > 0, 20 * SECOND, "the STATE goes out and is held back");
	struct proto_confirm confirm = {.pages = rte_cpu_to_be_64(1024)};
	struct proto_ack ack = {.cumulative = rte_cpu_to_be_64(1u << 20),
	                        .sack = {UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX}};
	uint64_t auth = drops(a, MIGRATION_DROP_AUTH);
	forge_to_source(hold.id, PROTO_CONFIRM, &confirm, sizeof(confirm),
	                PROTO_CONTROL_SEQ_BASE + 50);
	forge_to_source(hold.id, PROTO_ACK, &ack, sizeof(ack), PROTO_CONTROL_SEQ_BASE + 51);
	forge_to_source(hold.id, PROTO_CONFIRM, &confirm, sizeof(confirm), 0);
	cr_assert_eq(drops(a, MIGRATION_DROP_AUTH) - auth, 3);
	cr_assert_not_null(host_vm_find(&a->host, "vm1"), "the source keeps its copy");
	const struct migration_info *m = wait_done(a, hold.id, 20 * SECOND);
	cr_assert_eq(m->status, MIGRATION_FAILED, "%s", m->reason);
	cr_assert(strstr(m->reason, "never took the state") != NULL, "%s", m->reason);
	cr_assert(runs_on(a), "the VM runs on the source again");
	cr_assert_null(host_vm_find(&b->host, "vm1"), "and nowhere else");
}

/* PAGES and a STATE forged into the destination during the switchover (the source's address and
 * port, the live session, fresh numbers, no valid tag): never written, never loaded; the memory
 * that arrives is the source's, hash for hash. */
Test(forged, pages_and_state_into_the_destination_during_the_switchover)
{
	create_vm(a, "vm1", 4, "uniform,rate=5000,fill=50");
	int id = start("vm1", "verify on " LOOSE_PREFLIGHT);
	pump_until(session(a, id)->status == MIGRATION_SWITCHOVER, 20 * SECOND,
	           "the switchover begins");
	const struct migration_info *m = session(a, id);
	uint8_t buf[2048] = {0};
	struct proto_pages p = {.page = rte_cpu_to_be_64(7),
	                        .data_len = rte_cpu_to_be_16(1024),
	                        .round = rte_cpu_to_be_32(999)};
	memcpy(buf + sizeof(struct proto_header), &p, sizeof(p));
	memset(buf + sizeof(struct proto_header) + sizeof(p), 0xee, 1024);
	uint32_t ip;
	cr_assert_eq(netif_parse_ipv4(A_VMK_IP, &ip), 0);
	uint64_t auth = drops(b, MIGRATION_DROP_AUTH);
	for (uint64_t seq = 1; seq < 200; seq += 20) {
		proto_write_header(buf, PROTO_PAGES, m->session, seq, sizeof(p) + 1024);
		wire_inject_udp(WIRE_A_TO_B, ip, m->local_port, PROTO_DEFAULT_PORT, buf,
		                sizeof(struct proto_header) + sizeof(p) + 1024 + PROTO_TAG_LEN);
	}
	struct proto_state state = {.running = 1};
	uint16_t len = message(buf, PROTO_STATE, m->session, 150, &state, sizeof(state));
	wire_inject_udp(WIRE_A_TO_B, ip, m->local_port, PROTO_DEFAULT_PORT, buf,
	                (uint16_t)(len + 64 + PROTO_TAG_LEN));
	pump();
	cr_assert_eq(drops(b, MIGRATION_DROP_AUTH) - auth, 11, "every forgery dropped");
	m = wait_done(a, id, 20 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	cr_assert(m->verified, "the destination's memory hashes as the source's");
}

/* Every sealed datagram of a real session, recorded off the wire, replayed from the session's own
 * addresses and ports: during the session, after it, and after the destination restarted. Each
 * is dropped and counted, nothing is written, no session is made. */
struct recording {
	unsigned int count, probes;
	struct {
		enum wire_direction direction;
		uint16_t len;
		uint8_t bytes[1600];
	} messages[4096];
};

static bool record_filter(enum wire_direction direction, struct rte_mbuf *frame, void *ctx)
{
	struct recording *r = ctx;
	uint16_t len;
	const uint8_t *msg = wire_migration_message(frame, &len);

	/* The pre-flight's probe filler is all alike: a few of its messages stand for it. */
	if (msg != NULL && msg[offsetof(struct proto_header, type)] == PROTO_PROBE &&
	    r->probes++ >= 8)
		return true;
	if (msg != NULL && r->count < 4096 && len <= sizeof(r->messages[0].bytes)) {
		r->messages[r->count].direction = direction;
		r->messages[r->count].len = len;
		memcpy(r->messages[r->count].bytes, msg, len);
		r->count++;
	}
	return true;
}

/* Replays the first n recorded messages; returns how many went to each host. */
static void replay(const struct recording *r, unsigned int n, uint16_t source_port,
                   unsigned int *to_b, unsigned int *to_a)
{
	uint32_t a_ip, b_ip;

	cr_assert_eq(netif_parse_ipv4(A_VMK_IP, &a_ip), 0);
	cr_assert_eq(netif_parse_ipv4(B_VMK_IP, &b_ip), 0);
	*to_a = *to_b = 0;
	for (unsigned int i = 0; i < n; i++) {
		bool forward = r->messages[i].direction == WIRE_A_TO_B;
		wire_inject_udp(r->messages[i].direction, forward ? a_ip : b_ip,
		                forward ? source_port : PROTO_DEFAULT_PORT,
		                forward ? PROTO_DEFAULT_PORT : source_port, r->messages[i].bytes,
		                r->messages[i].len);
		*(forward ? to_b : to_a) += 1;
		if (i % 16 == 15)
			pump();
	}
}

static uint64_t no_listener(struct node *h)
{
	return h->host.vmks[0]->netif.counters.drops[NETIF_DROP_UDP_NO_LISTENER];
}

/* With FERRY_SEED_DIR set, the recorded session becomes the fuzz targets' seeds: each message as
 * it was on the wire (fuzz_proto), and as fuzz_migration's records, to be sealed again with the
 * harness's keys ([flags 3][type][seq][length][body]). */
static void write_seeds(const struct recording *r)
{
	const char *dir = getenv("FERRY_SEED_DIR");
	char path[512];

	if (dir == NULL)
		return;
	for (unsigned int i = 0; i < r->count; i++) {
		const uint8_t *msg = r->messages[i].bytes;
		uint16_t len = r->messages[i].len;
		snprintf(path, sizeof(path), "%s/proto/session-%04u", dir, i);
		FILE *f = fopen(path, "wb");
		cr_assert_not_null(f, "%s", path);
		fwrite(msg, 1, len, f);
		fclose(f);
		/* One record per seed: the role by direction, the body without header and tag. */
		bool sealed = msg[offsetof(struct proto_header, seq) + 7] != 0 || msg[16] != 0;
		uint16_t body = (uint16_t)(len - sizeof(struct proto_header) -
		                           (sealed ? PROTO_TAG_LEN : 0));
		uint8_t head[13] = {r->messages[i].direction == WIRE_A_TO_B ? 0 : 1, 3,
		                    msg[offsetof(struct proto_header, type)]};
		memcpy(head + 11, &body, 2);
		snprintf(path, sizeof(path), "%s/migration/session-%04u", dir, i);
		f = fopen(path, "wb");
		cr_assert_not_null(f, "%s", path);
		fwrite(head, 1, sizeof(head), f);
		fwrite(msg + sizeof(struct proto_header), 1, body, f);
		fclose(f);
	}
}

Test(forged, true_replays_during_and_after_the_session)
{
	struct recording *rec = calloc(1, sizeof(*rec));
	unsigned int to_a, to_b;

	cr_assert_not_null(rec);
	create_vm(a, "vm1", 4, "uniform,rate=2000,fill=50");
	wire_filter = record_filter;
	wire_filter_ctx = rec;
	int id = start("vm1", "verify on " LOOSE_PREFLIGHT);
	pump_until(session(a, id)->status == MIGRATION_SWITCHOVER, 20 * SECOND,
	           "the switchover begins");
	uint16_t port = session(a, id)->local_port;
	unsigned int during = rec->count;
	/* During: everything so far, at the switchover. */
	/* The source may finish while they arrive: then its closed port drops them. */
	uint64_t b_before = all_drops(b), a_before = all_drops(a) + no_listener(a);
	uint64_t hellos = b->host.migrations.hellos;
	replay(rec, during, port, &to_b, &to_a);
	/* A HELLO is answered statelessly (a CHALLENGE, nothing kept) only when no session has
	 * its id; this one's has. */
	cr_assert_eq(b->host.migrations.hellos, hellos);
	uint64_t deadline = loop_tsc_now_ns() + 5 * SECOND;
	while (loop_tsc_now_ns() < deadline && !(all_drops(b) - b_before >= to_b &&
	                                         all_drops(a) + no_listener(a) - a_before >= to_a))
		pump();
	/* At least one drop each (more: the answers to them and retransmissions arrive too); that
	 * none was taken shows in the memory the destination ends with, hashed against the
	 * source's. */
	cr_assert_geq(all_drops(b) - b_before, to_b, "every replay to the destination dropped");
	cr_assert_geq(all_drops(a) + no_listener(a) - a_before, to_a,
	              "every replay to the source dropped");
	const struct migration_info *m = wait_done(a, id, 20 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	cr_assert(m->verified);
	wire_filter = NULL;
	write_seeds(rec);

	/* After: the VM paused on the destination, so its memory holds still; the source's port
	 * closes once the network settled and its hold of the VM's frames ended. */
	pump_until(session(a, id)->local_port == 0, 5 * SECOND, "the source's port closes");
	ctl(b, "vm pause vm1");
	struct vm *moved = host_vm_find(&b->host, "vm1");
	uint64_t hash = machine_memory_hash(&moved->machine);
	b_before = all_drops(b);
	uint64_t a_closed = no_listener(a);
	replay(rec, rec->count, port, &to_b, &to_a);
	pump_until(all_drops(b) - b_before >= to_b && no_listener(a) - a_closed >= to_a, 5 * SECOND,
	           "every replay dropped");
	/* At least one drop each (a replay's answer may bring one more, as during the session);
	 * that none was taken shows in the memory and the VM's state below. */
	cr_assert_geq(all_drops(b) - b_before, to_b, "every replay dropped by the destination");
	cr_assert_geq(no_listener(a) - a_closed, to_a, "and by the source's closed port");
	cr_assert_eq(machine_memory_hash(&moved->machine), hash, "the memory did not change");
	cr_assert_eq(moved->machine.state, MACHINE_PAUSED, "no state was loaded");

	/* After the destination restarted: its new cookie secret refuses the old AUTH, and
	 * nothing else has a session to go to. */
	destination_restart(1500);
	b_before = all_drops(b);
	uint64_t cookie = drops(b, MIGRATION_DROP_COOKIE);
	replay(rec, rec->count, port, &to_b, &to_a);
	/* HELLOs and QUERYs are answered statelessly (a CHALLENGE, a NO_SESSION), not dropped. */
	unsigned int hellos_replayed = 0;
	for (unsigned int i = 0; i < rec->count; i++) {
		uint8_t type = rec->messages[i].bytes[offsetof(struct proto_header, type)];
		hellos_replayed += type == PROTO_HELLO || type == PROTO_QUERY;
	}
	pump_until(all_drops(b) - b_before + hellos_replayed >= to_b, 5 * SECOND,
	           "every replay dropped");
	cr_assert_geq(drops(b, MIGRATION_DROP_COOKIE) - cookie, 1, "the AUTH's cookie is refused");
	cr_assert_eq(all_drops(b) - b_before + hellos_replayed, to_b,
	             "everything but the stateless HELLOs and QUERYs dropped");
	for (unsigned int i = 0; i < MIGRATION_MAX; i++)
		cr_assert_null(b->host.migrations.sessions[i], "no session was made");
	cr_assert_eq(b->host.nb_vms, 0);
	free(rec);
}

/* ---- post-copy: the VM runs on the destination, and part of its memory is still on the source:
 * neither host alone can carry on, so a death is a loss and each side says so ---- */

TestSuite(postcopy_faults, .init = setup_1500, .fini = teardown, .timeout = 120);

/* A VM in post-copy long enough to be killed in it: 8 MiB of pages at 100 Mbit/s. */
static int start_postcopy(void)
{
	create_vm(a, "vm1", 16, "uniform,rate=max,fill=50");
	int id = start("vm1", "mode postcopy max-bandwidth 100M " LOOSE_PREFLIGHT);
	pump_until(session(a, id)->status == MIGRATION_POSTCOPY, 20 * SECOND,
	           "the migration reaches post-copy");
	cr_assert_gt(session(a, id)->stats.postcopy.pages_absent, 0);
	return id;
}

/* A NO_SESSION as a host with a key would answer the source's question number query_seq. */
static void forge_no_session(int id, const char *key, uint64_t query_seq, uint64_t uptime_ms)
{
	uint8_t buf[sizeof(struct proto_header) + sizeof(struct proto_no_session)];
	struct proto_no_session answer = {.query_seq = rte_cpu_to_be_64(query_seq),
	                                  .uptime_ms = rte_cpu_to_be_64(uptime_ms)};
	const struct migration_info *m = session(a, id);
	uint32_t ip;

	size_t len = message(buf, PROTO_NO_SESSION, m->session, 0, &answer, sizeof(answer));
	cr_assert_eq(proto_no_session_mac((const uint8_t *)key, strlen(key), buf,
	                                  buf + len - PROTO_MAC_LEN),
	             0);
	cr_assert_eq(netif_parse_ipv4(B_VMK_IP, &ip), 0);
	wire_inject_udp(WIRE_B_TO_A, ip, PROTO_DEFAULT_PORT, m->local_port, buf, (uint16_t)len);
	pump();
}

/* The destination dies in post-copy: the source holds its pages (the destination may only be cut
 * off), never resumes the VM and refuses a cancel; the host comes back empty and answers the
 * source's question: the VM is lost, and the source says so and lets it go. An answer the key
 * does not vouch for, or to a question never asked, changes nothing. */
Test(postcopy_faults, destination_killed)
{
	int id = start_postcopy();

	destination_kill();
	pump_until(strstr(session(a, id)->reason, "post-copy holds") != NULL, 20 * SECOND,
	           "the source says it holds");
	struct vm *held = host_vm_find(&a->host, "vm1");
	cr_assert(held != NULL && held->machine.state == MACHINE_PAUSED,
	          "the source keeps the memory, the VM paused");
	cr_assert_eq(migration_cancel(&a->host.migrations, (uint32_t)id), -EBUSY);

	uint64_t auth = drops(a, MIGRATION_DROP_AUTH),
	         unexpected = drops(a, MIGRATION_DROP_UNEXPECTED);
	forge_no_session(id, "incorrect donkey battery staple", UINT64_MAX / 2 + 1, 1);
	cr_assert_eq(drops(a, MIGRATION_DROP_AUTH) - auth, 1, "another key's answer: dropped");
	forge_no_session(id, "correct horse battery staple", PROTO_CONTROL_SEQ_BASE + 1000000, 1);
	cr_assert_eq(drops(a, MIGRATION_DROP_UNEXPECTED) - unexpected, 1,
	             "an answer to a question never asked: dropped");
	cr_assert_eq(session(a, id)->status, MIGRATION_POSTCOPY);

	destination_restart(1500);
	const struct migration_info *m = wait_done(a, id, 10 * SECOND);
	cr_assert_eq(m->status, MIGRATION_LOST, "%s", migration_status_name(m->status));
	cr_assert(strstr(m->reason, "the VM is lost") != NULL && strstr(m->reason, "restarted"),
	          "%s", m->reason);
	cr_assert_null(host_vm_find(&a->host, "vm1"), "the source never resumes it");
	cr_assert_eq(b->host.nb_vms, 0, "and the destination came back without it");
}

/* The source dies in post-copy: the VM runs on at the destination, stalling on the pages it
 * lacks, and the destination says why; only the operator, who knows the source is gone for good,
 * declares the VM lost there (not while the source answers). */
Test(postcopy_faults, source_killed)
{
	char out[512];

	start_postcopy();
	int id = (int)b->host.migrations.next_id;
	cr_assert_eq(session(b, id)->status, MIGRATION_POSTCOPY);
	cr_assert_eq(ctl_try(b, out, sizeof(out), "migrate resolve %d lost", id), -EBUSY, "%s",
	             out);
	source_kill();
	pump_until(strstr(session(b, id)->reason, "post-copy holds: the source has been silent") !=
	                   NULL,
	           20 * SECOND, "the destination says why it holds");
	struct vm *vm = host_vm_find(&b->host, "vm1");
	cr_assert_not_null(vm);
	cr_assert_gt(vm->machine.remote.nb_absent, 0, "pages it will never get");
	cr_assert_eq(session(b, id)->status, MIGRATION_POSTCOPY, "it holds, not fails");
	ctl(b, "migrate resolve %d lost", id);
	cr_assert_eq(session(b, id)->status, MIGRATION_LOST);
	cr_assert(strstr(session(b, id)->reason, "lost with the source") != NULL, "%s",
	          session(b, id)->reason);
	cr_assert_null(host_vm_find(&b->host, "vm1"));
	cr_assert_eq(ctl_try(b, out, sizeof(out), "migrate resolve %d lost", id), -EINVAL, "%s",
	             out);
}

/* Pre-copy's unknown outcome, settled by a restart: the destination took the state (and ran the
 * VM) but its answers were lost, then it died and came back: it holds nothing of the VM, so the
 * source runs it again, from where it paused. */
Test(postcopy_faults, a_restarted_destination_settles_an_unknown_outcome)
{
	struct hold hold = {.replies_after_state = true};

	start_held(&hold);
	pump_until(session(a, hold.id)->status == MIGRATION_UNKNOWN_OUTCOME, 20 * SECOND,
	           "silence after the state makes the outcome unknown");
	cr_assert(runs_on(b), "the destination runs the VM");
	destination_kill();
	pump_for(SECOND);
	cr_assert_eq(session(a, hold.id)->status, MIGRATION_UNKNOWN_OUTCOME,
	             "a dead host says nothing");
	destination_restart(1500);
	hold.replies_after_state = false;
	const struct migration_info *m = wait_done(a, hold.id, 10 * SECOND);
	cr_assert_eq(m->status, MIGRATION_FAILED, "%s", m->reason);
	cr_assert(strstr(m->reason, "restarted") != NULL, "%s", m->reason);
	cr_assert(runs_on(a), "the VM runs on the source again");
	cr_assert_not(runs_on(b));
}

/* The destination's side of a session, to send what a lying destination (one that holds the key)
 * would. */
static struct migration *destination_session(void)
{
	for (unsigned int i = 0; i < MIGRATION_MAX; i++) {
		struct migration *m = b->host.migrations.sessions[i];
		if (m != NULL && m->id == b->host.migrations.next_id)
			return m;
	}
	cr_assert_fail("no session on the destination");
	return NULL;
}

static void demand(struct migration *from, uint64_t page, uint32_t count)
{
	struct proto_demand body = {.page = rte_cpu_to_be_64(page),
	                            .count = rte_cpu_to_be_32(count)};
	cr_assert_geq(session_send_control(from, PROTO_DEMAND, &body, sizeof(body)), 0);
}

/* A DEMAND is acted on only when sealed by the session's destination, in post-copy, for pages of
 * the VM: before post-copy, sealed or not, it is dropped and counted, and the copy goes on. */
Test(forged, a_demand_before_post_copy)
{
	create_vm(a, "vm1", 4, "uniform,rate=1000,fill=50");
	int id = start("vm1", "mode precopy verify on max-bandwidth 50M " LOOSE_PREFLIGHT);
	pump_until(session(a, id)->status == MIGRATION_ACTIVE, 20 * SECOND, "pre-copy begins");
	uint64_t unexpected = drops(a, MIGRATION_DROP_UNEXPECTED),
	         auth = drops(a, MIGRATION_DROP_AUTH);
	demand(destination_session(), 0, 16);
	pump_until(drops(a, MIGRATION_DROP_UNEXPECTED) - unexpected >= 1, SECOND,
	           "sealed, but out of post-copy: dropped");
	struct proto_demand body = {.page = 0, .count = rte_cpu_to_be_32(1)};
	forge_to_source(id, PROTO_DEMAND, &body, sizeof(body), PROTO_CONTROL_SEQ_BASE + 77);
	cr_assert_eq(drops(a, MIGRATION_DROP_AUTH) - auth, 1, "no valid tag");
	const struct migration_info *m = wait_done(a, id, 30 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	cr_assert(m->verified);
	cr_assert_eq(m->stats.postcopy.start_ns, 0, "no demand made it post-copy");
}

/* A destination that demands pages past the VM's end, or a run that crosses it, in post-copy:
 * dropped and counted as bad pages, nothing read out of bounds (ASan watches), and the real
 * demands and the background stream still bring every page. */
Test(postcopy_faults, demands_outside_the_vm)
{
	int id = start_postcopy();
	struct migration *dst = destination_session();
	uint64_t nb_pages = dst->vm->machine.nb_pages;
	uint64_t bad = drops(a, MIGRATION_DROP_BAD_PAGE);

	demand(dst, nb_pages, 1);
	demand(dst, nb_pages - 1, 2);
	demand(dst, UINT64_MAX - 3, 16);
	pump_until(drops(a, MIGRATION_DROP_BAD_PAGE) - bad >= 3, SECOND, "all three dropped");
	const struct migration_info *m = wait_done(a, id, 30 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	cr_assert_eq(m->stats.postcopy.pages_demanded + m->stats.postcopy.pages_background,
	             m->stats.postcopy.pages_absent, "every absent page went once");
}

/* Holds back the source's true ABSENT maps (the ones inside the VM); lets a lying one through. */
struct map_swap {
	uint64_t nb_pages;
	bool seen; /* a true map went by: the switchover into post-copy is under way */
};

static bool swap_maps(enum wire_direction direction, struct rte_mbuf *frame, void *ctx)
{
	struct map_swap *swap = ctx;
	uint16_t len;
	const uint8_t *msg = wire_migration_message(frame, &len);
	struct proto_absent map;

	if (msg == NULL || direction != WIRE_A_TO_B ||
	    msg[offsetof(struct proto_header, type)] != PROTO_ABSENT)
		return true;
	memcpy(&map, msg + sizeof(struct proto_header), sizeof(map));
	if (rte_be_to_cpu_64(map.first_page) >= swap->nb_pages)
		return true;
	swap->seen = true;
	return false;
}

/* A source (one that holds the key) whose ABSENT map names pages past the VM's end instead of the
 * true maps: the map is dropped and counted, never acknowledged, and the destination takes no
 * STATE while a map before it is missing (nor would it resume a VM with a page it neither holds
 * nor was told of): the switchover stalls, the source gives up before anything resumed there,
 * and the VM runs on the source again. */
Test(postcopy_faults, a_malformed_absent_map_is_refused_before_the_vm_resumes)
{
	struct map_swap swap = {.nb_pages = 16 * 256};
	uint8_t bitmap[2] = {0xff, 0xff};
	struct proto_absent lie = {.first_page = rte_cpu_to_be_64(swap.nb_pages),
	                           .count = rte_cpu_to_be_32(16)};

	create_vm(a, "vm1", 16, "uniform,rate=max,fill=50");
	wire_filter = swap_maps;
	wire_filter_ctx = &swap;
	int id = start("vm1", "mode postcopy " LOOSE_PREFLIGHT);
	pump_until(swap.seen, 20 * SECOND, "the switchover sends its maps");
	struct migration *src = NULL;
	for (unsigned int i = 0; i < MIGRATION_MAX; i++)
		if (a->host.migrations.sessions[i] != NULL &&
		    a->host.migrations.sessions[i]->id == (uint32_t)id)
			src = a->host.migrations.sessions[i];
	cr_assert_not_null(src);
	uint64_t bad = drops(b, MIGRATION_DROP_BAD_PAGE);
	cr_assert_geq(session_channel_send(src, PROTO_ABSENT, &lie, sizeof(lie), bitmap,
	                                   sizeof(bitmap), loop_tsc_now_ns()),
	              0);
	const struct migration_info *m = wait_done(a, id, 20 * SECOND);
	cr_assert_geq(drops(b, MIGRATION_DROP_BAD_PAGE) - bad, 1, "the lying map is dropped");
	cr_assert_eq(m->status, MIGRATION_FAILED, "%s", m->reason);
	cr_assert(runs_on(a), "the VM runs on the source again");
	cr_assert_not(runs_on(b), "and never ran on the destination");
	cr_assert_eq(b->host.nb_vms, 0);
}

/* A post-copy switchover whose CONFIRM is lost: the source cannot know the VM resumed there, so
 * the outcome is unknown, but it keeps the pages the VM lacks and the channels; the answer to its
 * question sends it on into post-copy, and the copy completes. */
Test(postcopy_faults, a_lost_confirm_leaves_post_copy_able_to_go_on)
{
	struct hold hold = {.replies_after_state = true};

	start_held_in(&hold, "mode postcopy verify on " LOOSE_PREFLIGHT);
	pump_until(session(a, hold.id)->status == MIGRATION_UNKNOWN_OUTCOME, 20 * SECOND,
	           "silence after the post-copy state makes the outcome unknown");
	cr_assert(runs_on(b), "the destination runs the VM");
	cr_assert_not(runs_on(a));
	hold.replies_after_state = false;
	const struct migration_info *m = wait_done(a, hold.id, 20 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	cr_assert(m->verified, "every page came, as the source had it: %s", m->reason);
	cr_assert(runs_on(b));
	cr_assert_null(host_vm_find(&a->host, "vm1"));
}
