/* The commit protocol under faults: for every step of a migration, the wire cut after it, the
 * destination killed at it and the source killed at it; the VM never runs on two hosts. And the
 * messages that would do the most harm, forged or replayed at the moment they would do it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>

#include "pair.h"

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

/* One migration with one fault; returns where the VM ended and how, for the matrix. */
static void run_case(const struct step *step, enum fault fault, char *out, size_t size)
{
	struct fault_run r = {.step = step, .fault = fault};
	const char *how = "";

	setup_1500();
	/* Half the pages written (zero runs for the rest), fast enough that the pause always
	 * finds pages to send. */
	create_vm(a, "vm1", 4, "uniform,rate=5000,fill=50");
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
	snprintf(out, size, "%s%s",
	         on_a   ? "source"
	         : on_b ? "destination"
	                : "none: it died with the host that held it",
	         how);
	teardown();
}

static void run_column(enum fault fault, const char *title)
{
	char outcome[NB_STEPS][64];

	for (unsigned int k = 0; k < NB_STEPS; k++)
		run_case(&steps[k], fault, outcome[k], sizeof(outcome[k]));
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
	run_column(FAULT_CUT, "everything after the step dropped, then the wire heals");
}

Test(faults, destination_killed_at_each_step)
{
	run_column(FAULT_KILL_DESTINATION, "the destination killed at the step");
}

Test(faults, source_killed_at_each_step)
{
	run_column(FAULT_KILL_SOURCE, "the source killed at the step");
}
