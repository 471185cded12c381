/* Live migration between two ferryd hosts in one process, wired by the ring PMD: exactness for
 * every workload pattern at MTU 1500 and 9000, over impaired links, a destination that dies, the
 * pre-flight check, and the announce on a pcap uplink. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_byteorder.h>

#include "harness.h"
#include "pair.h"
#include "vm/disklock.h"
#include "vm/vm_kvm.h"
#include "vm/vm_synthetic.h"

/* The workload a vm of mib MiB on a backend runs for a spec, as vm_create sets it up. */
static struct vm_workload reference_workload(const char *spec, unsigned int mib,
                                             enum vm_backend backend)
{
	struct vm_workload w;
	cr_assert_eq(vm_workload_parse(spec, &w), 0);
	uint64_t end = vm_workload_end((uint64_t)mib * 256, backend);
	if (w.working_set_pages == 0 || w.working_set_pages > end)
		w.working_set_pages = end;
	return w;
}

/* The VM as vm_create makes it, on its backend, never migrated. */
static void reference_create(struct machine *reference, const char *spec, unsigned int mib,
                             enum vm_backend backend)
{
	struct vm_workload w = reference_workload(spec, mib, backend);
	struct vm_kvm_config kvm = {.workload = w,
	                            .guest_page = vm_workload_end((uint64_t)mib * 256, backend)};

	cr_assert_eq(machine_create(reference, "reference", mib, MACHINE_BACKING_ANONYMOUS,
	                            backend == VM_BACKEND_KVM ? &vm_kvm_ops : &vm_synthetic_ops,
	                            backend == VM_BACKEND_KVM ? (const void *)&kvm : &w),
	             0);
}

/* Migrates a running VM (made with vm_options) a -> b, then checks that its memory and vCPU state
 * are those of the same VM run as many steps without a migration. */
/* What a test does while the migration runs (id is the source's session). */
typedef void during_fn(int id);

static void migrate_vm_and_compare_during(const char *spec, unsigned int mib,
                                          const char *vm_options, const char *options,
                                          during_fn *during)
{
	create_vm_with(a, "vm1", mib, spec, vm_options);
	/* The VM does some work before it moves. */
	struct vm *source = host_vm_find(&a->host, "vm1");
	pump_until(machine_step(&source->machine) >= 1000, 10 * SECOND, "the VM never ran");
	char with_floor[256];
	snprintf(with_floor, sizeof(with_floor), "%s " LOOSE_PREFLIGHT, options);
	int id = start("vm1", with_floor);
	if (during != NULL)
		during(id);
	const struct migration_info *m = wait_done(a, id, 60 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "migration %s: %s",
	             migration_status_name(m->status), m->reason);
	cr_assert_null(host_vm_find(&a->host, "vm1"), "the source dropped its copy");
	struct vm *moved = host_vm_find(&b->host, "vm1");
	cr_assert_not_null(moved, "the VM runs on the destination");
	cr_assert_eq(moved->machine.state, MACHINE_RUNNING);
	cr_assert_eq(moved->machine.throttle_percent, 0, "the throttle stays behind");
	/* And goes on running there. */
	uint64_t arrived = machine_step(&moved->machine);
	pump_until(machine_step(&moved->machine) > arrived + 100, 10 * SECOND,
	           "the VM does not run on the destination");
	ctl(b, "vm pause vm1");
	uint64_t steps = machine_step(&moved->machine);
	cr_assert_gt(steps, 0);

	struct machine reference;
	reference_create(&reference, spec, mib, moved->backend);
	cr_assert_eq(machine_steps(&reference, steps), 0);
	cr_assert_eq(reference.nb_pages, moved->machine.nb_pages);
	/* The workload's pages; the services' (the TCP's, the counter) are the host's writes. */
	uint64_t workload_pages = vm_services_first_page(reference.nb_pages);
	cr_assert_eq(memcmp(reference.memory, moved->machine.memory, workload_pages * VM_PAGE_SIZE),
	             0, "memory after %lu steps is byte-identical", (unsigned long)steps);
	uint8_t s1[VM_STATE_MAX], s2[VM_STATE_MAX];
	size_t n1 = machine_save_state(&reference, s1),
	       n2 = machine_save_state(&moved->machine, s2);
	cr_assert_eq(n1, n2);
	cr_assert_eq(memcmp(s1, s2, n1), 0, "the vCPU state is the same");
	/* And it goes on the same: 1000 more steps on each. */
	cr_assert_eq(machine_steps(&reference, 1000), 0);
	cr_assert_eq(machine_steps(&moved->machine, 1000), 0);
	cr_assert_eq(memcmp(reference.memory, moved->machine.memory, workload_pages * VM_PAGE_SIZE),
	             0, "and 1000 steps later too");
	machine_destroy(&reference);
	cr_log_info("%s at MTU %u %s: %u rounds, %.1f ms, downtime %.3f ms, %lu pages + %lu zero, "
	            "%lu resent",
	            spec, a->host.vmks[0]->netif.mtu, options, m->stats.rounds,
	            (double)(m->stats.end_ns - m->stats.start_ns) / 1e6,
	            (double)m->stats.downtime_ns / 1e6, (unsigned long)m->stats.pages_normal,
	            (unsigned long)m->stats.pages_zero,
	            (unsigned long)m->stats.pages_retransmitted);
}

static void migrate_vm_and_compare(const char *spec, unsigned int mib, const char *vm_options,
                                   const char *options)
{
	migrate_vm_and_compare_during(spec, mib, vm_options, options, NULL);
}

static void migrate_and_compare(const char *spec, unsigned int mib, const char *options)
{
	migrate_vm_and_compare(spec, mib, "", options);
}

/* Exactness, not convergence, is the point here: a VM writing flat out on a sanitizer build
 * may need more than QEMU's 300 ms, so the limit is generous (convergence has its own tests). */
#define EXACT_OPTIONS "verify on downtime-limit 2000"
#define MS            1000000ull

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

/* A VM on the host's hugepages runs on hugepages at the destination too, populated ahead of
 * its pages, and arrives byte-identical, with either cipher. (The suite's runner reserves the
 * hugetlb pool.) */
static void migrate_hugetlb_vm(const char *spec, const char *options)
{
	migrate_vm_and_compare(spec, 64, "hugepages on", options);
	struct vm *moved = host_vm_find(&b->host, "vm1");
	cr_assert_eq(moved->machine.backing, MACHINE_BACKING_HUGETLB);
	const struct migration_info *m = session(b, (int)b->host.migrations.next_id);
	cr_assert_gt(m->regions_populated, 0, "its regions were populated ahead");
}

Test(exact_9000, hugepage_backed_vm_aes)
{
	migrate_hugetlb_vm("uniform,rate=max,fill=100,seed=21",
	                   EXACT_OPTIONS " cipher aes-256-gcm");
}

Test(exact_1500, hugepage_backed_vm_chacha)
{
	migrate_hugetlb_vm("hotcold,rate=max,fill=60,seed=22",
	                   EXACT_OPTIONS " cipher chacha20-poly1305");
}

/* VM traffic first: while the source host's switch sees frames from VM ports on every poll, the
 * migration leaves polls to them once its share is used, and still ends byte-identical. */
Test(exact_9000, a_migration_yields_to_vm_traffic_and_still_completes)
{
	create_vm(a, "vm1", 64, "uniform,rate=max,fill=100,seed=23");
	struct vm *source = host_vm_find(&a->host, "vm1");
	pump_until(machine_step(&source->machine) >= 1000, 10 * SECOND, "the VM never ran");
	int id = start("vm1", EXACT_OPTIONS " " LOOSE_PREFLIGHT);
	uint64_t deadline = loop_now_ns(&a->host.loop) + 60 * SECOND;
	while (session(a, id)->running) {
		cr_assert_lt(loop_now_ns(&a->host.loop), deadline, "the migration never ended");
		a->host.vswitches.workers[0]
		        ->vm_frames++; /* as if a VM port sent a frame in every poll */
		pump();
	}
	const struct migration_info *m = session(a, id);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	cr_assert(m->verified, "the destination's memory hash is the source's");
	cr_assert_gt(m->stats.yielded_polls, 0, "pre-copy left polls to the VMs' traffic");
	cr_log_info("%lu polls yielded to VM traffic", (unsigned long)m->stats.yielded_polls);
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
	                    "mode precopy max-bandwidth 1G downtime-limit 20 verify on");
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

/* A KVM VM (ferry's guest on a vCPU, its writes in KVM's dirty log) moves with the same engine
 * and arrives equal to its unmigrated twin at the same step: memory, and the vCPU's registers
 * as KVM reads them; for each pattern, at either MTU, and over an impaired link. */
static void migrate_kvm_vm(const char *spec, unsigned int mib, const char *options)
{
	migrate_vm_and_compare(spec, mib, "backend kvm", options);
	cr_assert_eq(host_vm_find(&b->host, "vm1")->backend, VM_BACKEND_KVM,
	             "a KVM VM at the destination too");
}

Test(exact_1500, kvm_uniform)
{
	migrate_kvm_vm("uniform,rate=max,fill=50,seed=31", 32, EXACT_OPTIONS);
}

Test(exact_1500, kvm_hotcold)
{
	migrate_kvm_vm("hotcold,rate=max,fill=50,seed=32", 32, EXACT_OPTIONS);
}

Test(exact_9000, kvm_sequential)
{
	migrate_kvm_vm("sequential,rate=max,fill=50,seed=33", 64, EXACT_OPTIONS);
}

/* A KVM VM that outruns the link is throttled (its vCPU granted fewer steps) until it
 * converges, and still arrives exact. */
Test(exact_9000, kvm_auto_converge)
{
	migrate_kvm_vm("sequential,rate=max,seed=35", 8,
	               "mode precopy max-bandwidth 300M downtime-limit 200 verify on");
	const struct migration_info *m = session(a, (int)a->host.migrations.next_id);
	cr_assert_gt(m->stats.throttle_percent, 0, "the VM was throttled");
}

Test(exact_9000, kvm_over_an_impaired_link)
{
	impair_both("loss 2 dup 1 reorder 2");
	migrate_kvm_vm("hotcold,rate=20000,fill=50,seed=34", 64, "verify on");
}

/* Host writes are dirty too: an idle KVM VM, whose guest writes nothing, counts datagrams to its
 * UDP counter in its memory (the host writes that page) all through its migration. KVM's log
 * never sees those writes; the machine's does, so the destination's memory hashes as the
 * paused source's ("verify on"), and the counter there holds every datagram. */
Test(exact_9000, kvm_host_writes_alone_migrate_exactly)
{
	uint32_t sent = 0;

	create_vm_with(a, "vm1", 32, "uniform,rate=0,fill=100", "backend kvm");
	for (; sent < 50; pump()) {
		sent++;
		wire_inject_vm_udp(WIRE_B_TO_A, VM_COUNTER_PORT, &sent, sizeof(sent));
	}
	int id = start("vm1", "verify on mode precopy " LOOSE_PREFLIGHT);
	while (session(a, id)->status <= MIGRATION_SWITCHOVER) {
		sent++;
		wire_inject_vm_udp(WIRE_B_TO_A, VM_COUNTER_PORT, &sent, sizeof(sent));
		pump();
	}
	const struct migration_info *m = wait_done(a, id, 60 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "migration %s: %s",
	             migration_status_name(m->status), m->reason);
	cr_assert(m->verified, "the destination's memory hashed as the source's");
	struct vm *moved = host_vm_find(&b->host, "vm1");
	cr_assert_not_null(moved);
	cr_assert_eq(machine_step(&moved->machine), 0, "the guest wrote nothing");
	uint64_t deadline = loop_tsc_now_ns() + SECOND;
	while (vm_counter(moved) < sent && loop_tsc_now_ns() < deadline)
		pump();
	cr_assert_gt(sent, 50, "datagrams came during the migration");
	cr_assert_eq(vm_counter(moved), sent, "every datagram counted: %lu of %u",
	             (unsigned long)vm_counter(moved), sent);
}

/* Several streams, each its own window and numbers: every stream carries pages, and the VM
 * arrives the same, at either MTU and over a link that loses, duplicates and reorders. */
static void migrate_in_streams(const char *spec, unsigned int mib, unsigned int streams,
                               const char *options)
{
	char with_streams[160];

	snprintf(with_streams, sizeof(with_streams), "%s streams %u", options, streams);
	migrate_and_compare(spec, mib, with_streams);
	const struct migration_info *m = session(a, (int)a->host.migrations.next_id);
	cr_assert_eq(m->streams, streams);
	for (unsigned int s = 0; s < streams; s++)
		cr_assert_gt(m->stats.stream_messages[s], 100, "stream %u carried pages", s);
	cr_assert_eq(session(b, (int)b->host.migrations.next_id)->streams, streams);
}

Test(exact_1500, two_streams)
{
	migrate_in_streams("uniform,rate=max,fill=50,seed=13", 32, 2, EXACT_OPTIONS);
}

Test(exact_9000, four_streams)
{
	migrate_in_streams("hotcold,rate=max,fill=50,seed=14", 64, 4, EXACT_OPTIONS);
}

Test(exact_9000, three_streams_over_an_impaired_link)
{
	impair_both("loss 2 dup 1 reorder 2");
	migrate_in_streams("uniform,rate=20000,fill=50,seed=15", 32, 3, "verify on");
	cr_assert_gt(session(a, (int)a->host.migrations.next_id)->stats.pages_retransmitted, 0);
}

/* Post-copy and hybrid: the VM resumes at the destination before it holds every page, stalls on
 * the ones it lacks until they come (demanded ahead of the background stream), and ends the same
 * as its twin. */
static void migrate_postcopy_vm(const char *spec, unsigned int mib, const char *vm_options,
                                const char *options, during_fn *during, bool faults_expected)
{
	char verified[256];
	snprintf(verified, sizeof(verified), "verify on %s", options);
	migrate_vm_and_compare_during(spec, mib, vm_options, verified, during);
	const struct migration_info *src = session(a, (int)a->host.migrations.next_id);
	cr_assert_neq(src->stats.postcopy.start_ns, 0, "it went into post-copy");
	cr_assert(src->verified, "the memory's hash, summed as the pages came, is the source's: %s",
	          src->reason);
	cr_assert_gt(src->stats.postcopy.pages_absent, 0);
	cr_assert_eq(src->stats.postcopy.pages_demanded + src->stats.postcopy.pages_background,
	             src->stats.postcopy.pages_absent, "every absent page went once");
	cr_assert_eq(src->stats.throttle_percent, 0, "post-copy, not a throttle");
	const struct migration_info *dst = session(b, (int)b->host.migrations.next_id);
	cr_assert_eq(dst->status, MIGRATION_COMPLETED);
	cr_assert_eq(dst->stats.postcopy.pages_absent, src->stats.postcopy.pages_absent);
	if (faults_expected) {
		cr_assert_gt(dst->stats.postcopy.remote_faults, 0, "the VM met absent pages");
		cr_assert_gt(dst->stats.postcopy.fault_max_ns, 0);
		cr_assert_leq(dst->stats.postcopy.fault_p50_ns, dst->stats.postcopy.fault_max_ns);
	}
	cr_log_info("post-copy: %lu absent, %lu demanded, %lu faults, stall %.3f ms, p50 %.3f ms, "
	            "p99 %.3f ms",
	            (unsigned long)dst->stats.postcopy.pages_absent,
	            (unsigned long)src->stats.postcopy.pages_demanded,
	            (unsigned long)dst->stats.postcopy.remote_faults,
	            (double)dst->stats.postcopy.stall_ns / 1e6,
	            (double)dst->stats.postcopy.fault_p50_ns / 1e6,
	            (double)dst->stats.postcopy.fault_p99_ns / 1e6);
}

static void migrate_postcopy(const char *spec, unsigned int mib, const char *options,
                             bool faults_expected)
{
	migrate_postcopy_vm(spec, mib, "", options, NULL, faults_expected);
}

/* A KVM VM in post-copy: its vCPU's faults come through userfaultfd, the worker asks for the
 * pages, and each is mapped for the vCPU once whole (at MTU 1500, once its fragments are in). */
Test(exact_9000, kvm_postcopy)
{
	migrate_postcopy_vm("uniform,rate=max,fill=50,seed=36", 32, "backend kvm", "mode postcopy",
	                    NULL, true);
	struct vm *moved = host_vm_find(&b->host, "vm1");
	cr_assert_gt(vm_kvm_fault_stats(&moved->machine).faults, 0,
	             "its vCPU's faults came through userfaultfd");
}

Test(exact_1500, kvm_postcopy)
{
	migrate_postcopy_vm("hotcold,rate=max,fill=50,seed=37", 32, "backend kvm", "mode postcopy",
	                    NULL, true);
}

/* Hybrid, handed to post-copy by hand once pre-copy has sent a part of the memory (the emulated
 * vCPU here dirties too slowly for hybrid to give up on pre-copy by itself). */
static void into_postcopy_midway(int id)
{
	pump_until(session(a, id)->stats.pages_normal >= 1000 || !session(a, id)->running,
	           20 * SECOND, "pre-copy never sent a page");
	cr_assert_eq(migration_postcopy(&a->host.migrations, (uint32_t)id), 0);
}

Test(exact_1500, kvm_hybrid_over_an_impaired_link)
{
	impair_both("loss 2 dup 1 reorder 2");
	migrate_postcopy_vm("sequential,rate=max,fill=100,seed=38", 32, "backend kvm",
	                    "mode hybrid max-bandwidth 100M", into_postcopy_midway, false);
}

/* A KVM VM on hugepages cannot map a 4 KiB page at a time for its vCPU: post-copy is refused
 * with that reason, and the VM runs on. One that could but is marked postcopy off is refused
 * for the mark, not for KVM. */
Test(exact_9000, a_kvm_vm_on_hugepages_is_refused_postcopy_with_the_reason)
{
	char out[4096];

	create_vm_with(a, "vm1", 16, "uniform,rate=1000,fill=50,seed=39",
	               "backend kvm hugepages on");
	cr_assert_eq(ctl_try(a, out, sizeof(out), "migrate start vm1 to %s key %s mode postcopy",
	                     B_VMK_IP, key_path),
	             -EPERM);
	cr_assert(strstr(out, "pre-copy only") != NULL, "%s", out);
	cr_assert_eq(ctl_try(a, out, sizeof(out), "vm set vm1 postcopy on"), -EPERM);
	cr_assert(strstr(out, "on hugepages") != NULL, "%s", out);
	cr_assert_not_null(host_vm_find(&a->host, "vm1"), "and the VM stays, running");
	ctl(a, "vm destroy vm1");
	create_vm_with(a, "vm1", 16, "uniform,rate=1000,fill=50,seed=40", "backend kvm");
	ctl(a, "vm set vm1 postcopy off");
	cr_assert_eq(ctl_try(a, out, sizeof(out), "migrate start vm1 to %s key %s mode postcopy",
	                     B_VMK_IP, key_path),
	             -EPERM);
	cr_assert(strstr(out, "marked postcopy off") != NULL, "%s", out);
}

Test(exact_9000, postcopy)
{
	migrate_postcopy("uniform,rate=max,fill=50,seed=16", 64, "mode postcopy", true);
}

Test(exact_1500, postcopy)
{
	migrate_postcopy("hotcold,rate=max,fill=50,seed=17", 32, "mode postcopy", true);
}

/* Every workload pattern, in post-copy and hybrid (a VM writing flat out, which hybrid hands to
 * post-copy), over a clean link and one that loses, duplicates and reorders: byte-identical to
 * its twin each time. */
static void every_pattern_in_postcopy_and_hybrid(void)
{
	static const char *const patterns[] = {"uniform", "hotcold", "sequential"};
	static const char *const modes[] = {"mode postcopy", "mode hybrid downtime-limit 1"};
	unsigned int seed = 100;

	for (int impaired = 0; impaired < 2; impaired++) {
		if (impaired)
			impair_both("loss 2 dup 1 reorder 2");
		for (unsigned int p = 0; p < 3; p++) {
			for (unsigned int mode = 0; mode < 2; mode++) {
				char spec[96];
				snprintf(spec, sizeof(spec), "%s,rate=max,fill=50,seed=%u",
				         patterns[p], seed++);
				cr_log_info("%s, %s, %s link", spec, modes[mode],
				            impaired ? "impaired" : "clean");
				migrate_postcopy(spec, 8, modes[mode], false);
				ctl(b, "vm destroy vm1");
			}
		}
	}
}

Test(exact_9000, every_pattern_in_postcopy_and_hybrid, .timeout = 300)
{
	every_pattern_in_postcopy_and_hybrid();
}

Test(exact_1500, every_pattern_in_postcopy_and_hybrid, .timeout = 300)
{
	every_pattern_in_postcopy_and_hybrid();
}

/* A VM writing flat out that pre-copy cannot fit in a 1 ms downtime without a throttle: the
 * hybrid mode hands over to post-copy when rounds stop shrinking. */
Test(exact_9000, hybrid_hot_vm)
{
	migrate_postcopy("uniform,rate=max,fill=50,seed=18", 64, "mode hybrid downtime-limit 1",
	                 false);
}

Test(exact_1500, hybrid_over_an_impaired_link)
{
	impair_both("loss 2 dup 1 reorder 2");
	migrate_postcopy("sequential,rate=max,fill=50,seed=19", 16, "mode hybrid downtime-limit 1",
	                 false);
}

/* The default mode is hybrid, as vMotion's: a VM writing flat out, started without a mode, goes
 * post-copy rather than be throttled, and completes. */
Test(exact_9000, the_default_mode_is_hybrid)
{
	create_vm(a, "vm1", 64, "uniform,rate=max,fill=50,seed=24");
	ctl(a, "migrate start vm1 to %s key %s verify on downtime-limit 1 " LOOSE_PREFLIGHT,
	    B_VMK_IP, key_path);
	int id = (int)a->host.migrations.next_id;
	cr_assert_eq(session(a, id)->mode, MIGRATION_MODE_HYBRID);
	const struct migration_info *m = wait_done(a, id, 60 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	cr_assert_neq(m->stats.postcopy.start_ns, 0, "it went post-copy");
	cr_assert_eq(m->stats.throttle_percent, 0);
	cr_assert(m->verified, "%s", m->reason);
}

/* The link fails for longer than a peer's timeout in the middle of post-copy: neither side gives
 * up (the VM can run only at the destination, and needs what the source holds), the source never
 * resumes it and refuses a cancel; when the link is back the copy completes, exact. */
static void cut_the_link_in_postcopy(int id)
{
	pump_until(session(a, id)->status == MIGRATION_POSTCOPY, 20 * SECOND,
	           "the migration never reached post-copy");
	impair_both("loss 100");
	uint64_t cut = loop_tsc_now_ns();
	pump_until(strstr(session(a, id)->reason, "post-copy holds") != NULL, 20 * SECOND,
	           "the source never said it holds");
	cr_assert_eq(session(a, id)->status, MIGRATION_POSTCOPY);
	cr_assert_gt(loop_tsc_now_ns() - cut, MIGRATION_PEER_TIMEOUT);
	struct vm *left = host_vm_find(&a->host, "vm1");
	cr_assert_not_null(left, "the source keeps the memory");
	cr_assert_eq(left->machine.state, MACHINE_PAUSED, "and never resumes the VM");
	cr_assert_eq(migration_cancel(&a->host.migrations, (uint32_t)id), -EBUSY);
	pump_until(strstr(session(b, (int)b->host.migrations.next_id)->reason, "post-copy holds") !=
	                   NULL,
	           20 * SECOND, "the destination never said it holds");
	ctl(a, "port set link0 impair off");
	ctl(b, "port set link0 impair off");
}

Test(exact_9000, postcopy_survives_a_link_cut, .timeout = 180)
{
	migrate_vm_and_compare_during("uniform,rate=max,fill=50,seed=20", 64, "",
	                              "mode postcopy max-bandwidth 200M", cut_the_link_in_postcopy);
	cr_assert_eq(session(a, (int)a->host.migrations.next_id)->status, MIGRATION_COMPLETED);
}

/* QEMU's postcopy recovery: the link fails in post-copy and comes back with the destination at a
 * new address; `migrate recover` on the source sends there, on the destination asks again at
 * once, and the copy completes, exact. Recovery is for post-copy only. */
static void move_the_destination_in_postcopy(int id)
{
	char out[512];

	pump_until(session(a, id)->status == MIGRATION_POSTCOPY, 20 * SECOND,
	           "the migration never reached post-copy");
	impair_both("loss 100");
	pump_until(strstr(session(a, id)->reason, "post-copy holds") != NULL, 20 * SECOND,
	           "the source never said it holds");
	ctl(b, "vmk set vmk1 ip 50.50.50.3/24");
	ctl(a, "port set link0 impair off");
	ctl(b, "port set link0 impair off");
	cr_assert_eq(ctl_try(a, out, sizeof(out), "migrate recover %d peer 50.50.50.999", id),
	             -EINVAL, "%s", out);
	ctl(a, "migrate recover %d peer 50.50.50.3", id);
	ctl(b, "migrate recover %u", b->host.migrations.next_id);
}

Test(exact_9000, postcopy_recovers_to_a_new_address, .timeout = 180)
{
	migrate_vm_and_compare_during("uniform,rate=max,fill=50,seed=23", 64, "",
	                              "mode postcopy max-bandwidth 200M",
	                              move_the_destination_in_postcopy);
	const struct migration_info *m = session(a, (int)a->host.migrations.next_id);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	cr_assert_eq(m->peer_ip, rte_cpu_to_be_32(0x32323203), "it ended at the new address");
	char out[512];
	cr_assert_eq(ctl_try(a, out, sizeof(out), "migrate recover %u", m->id), -EINVAL, "%s", out);
	cr_assert(strstr(out, "only post-copy recovers") != NULL, "%s", out);
}

/* Demanded pages go ahead of the background stream: at 200 Mbit/s the whole memory takes more
 * than a second to send, but the VM's faults are answered in a few round trips. */
Test(exact_9000, demanded_pages_overtake_the_background)
{
	migrate_postcopy("uniform,rate=max,fill=50,seed=21", 32, "mode postcopy max-bandwidth 200M",
	                 true);
	const struct migration_info *dst = session(b, (int)b->host.migrations.next_id);
	uint64_t postcopy_ns = dst->stats.postcopy.last_page_ns - dst->stats.postcopy.start_ns;
	cr_assert_gt(postcopy_ns, 500 * MS, "the background stream took its time");
	/* Post-copy takes a second stream by default, and the demanded pages have the first. */
	const struct migration_info *src = session(a, (int)a->host.migrations.next_id);
	cr_assert_eq(src->streams, 2);
	cr_assert_gt(src->stats.postcopy.pages_demanded, 0);
	cr_assert_gt(src->stats.stream_messages[0], 0, "the demanded pages went on stream 0");
	cr_assert_lt(dst->stats.postcopy.fault_p50_ns * 20, postcopy_ns,
	             "a fault waits a small part of the copy (p50 %.3f ms of %.1f ms)",
	             (double)dst->stats.postcopy.fault_p50_ns / 1e6, (double)postcopy_ns / 1e6);
}

/* A VM marked postcopy off: post-copy and hybrid are refused for it with the reason, `migrate
 * check` says what post-copy would risk, and the mark travels with it. */
Test(exact_9000, a_vm_marked_postcopy_off_stays_precopy)
{
	char out[4096];

	create_vm(a, "vm1", 16, "uniform,rate=1000,fill=50,seed=22");
	ctl(a, "vm set vm1 postcopy off");
	for (const char *mode = "postcopy"; mode != NULL;
	     mode = strcmp(mode, "postcopy") == 0 ? "hybrid" : NULL) {
		cr_assert_eq(ctl_try(a, out, sizeof(out), "migrate start vm1 to %s key %s mode %s",
		                     B_VMK_IP, key_path, mode),
		             -EPERM);
		cr_assert(strstr(out, "marked postcopy off") != NULL, "%s", out);
	}
	cr_assert_not_null(host_vm_find(&a->host, "vm1"), "and the VM stays, running");
	cr_assert_eq(ctl_try(a, out, sizeof(out), "migrate check vm1 to %s key %s " LOOSE_PREFLIGHT,
	                     B_VMK_IP, key_path),
	             0, "%s", out);
	cr_assert(strstr(out, "off for this VM") != NULL, "%s", out);
	wait_done(a, (int)a->host.migrations.next_id, 20 * SECOND);
	/* Without a mode, it migrates pre-copy (the default, hybrid, is not for it). */
	ctl(a, "migrate start vm1 to %s key %s " LOOSE_PREFLIGHT, B_VMK_IP, key_path);
	int id = (int)a->host.migrations.next_id;
	cr_assert_eq(session(a, id)->mode, MIGRATION_MODE_PRECOPY);
	cr_assert_eq(migration_postcopy(&a->host.migrations, (uint32_t)id), -EPERM,
	             "nor can a pre-copy be switched to post-copy by hand");
	wait_done(a, id, 60 * SECOND);
	struct vm *moved = host_vm_find(&b->host, "vm1");
	cr_assert_not_null(moved);
	cr_assert(moved->postcopy_off, "the mark came with it");
	ctl(b, "vm set vm1 postcopy on");
	cr_assert(!moved->postcopy_off);
}

Test(exact_1500, impaired_link)
{
	impair_both("loss 3 dup 2 reorder 3");
	migrate_and_compare("sequential,rate=20000,fill=50,seed=12", 16, "verify on");
	cr_assert_gt(session(a, (int)a->host.migrations.next_id)->stats.pages_retransmitted, 0);
}

/* ---- failure before the confirmation ---- */

/* Pages of a VM's memory that have a page frame. */
static uint64_t resident_pages(const struct machine *vm)
{
	size_t pages = vm->nb_pages;
	unsigned char *in_core = malloc(pages);
	uint64_t resident = 0;

	cr_assert_not_null(in_core);
	cr_assert_eq(mincore(vm->memory, pages * VM_PAGE_SIZE, in_core), 0);
	for (size_t i = 0; i < pages; i++)
		resident += in_core[i] & 1;
	free(in_core);
	return resident;
}

/* A 16 GiB VM that wrote 1 MiB: the destination backs (ahead of the pages) only the regions the
 * source wrote in, so its copy is as sparse as the original, and the memory is the source's. */
Test(exact_9000, a_sparse_16_gib_vm_stays_sparse_on_both_sides, .timeout = 300)
{
	create_vm(a, "vm1", 16384, "uniform,rate=1000,ws=256,fill=100");
	struct vm *source = host_vm_find(&a->host, "vm1");
	/* Once it ran: its TCP's pages are written then, in the last region. */
	pump_until(machine_step(&source->machine) >= 100, 10 * SECOND, "the VM never ran");
	uint64_t regions = machine_regions(&source->machine), written = 0;
	for (uint64_t r = 0; r < regions; r++)
		written += machine_region_touched(&source->machine, r);
	cr_assert_leq(resident_pages(&source->machine), written * VM_REGION_PAGES,
	              "the source is sparse");
	const struct migration_info *m =
	        wait_done(a, start("vm1", "verify on " LOOSE_PREFLIGHT), 240 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	cr_assert(m->verified);
	struct vm *moved = host_vm_find(&b->host, "vm1");
	cr_assert_not_null(moved);
	ctl(b, "vm pause vm1");
	uint64_t resident = resident_pages(&moved->machine);
	cr_assert_leq(resident, written * VM_REGION_PAGES,
	              "the copy holds %lu pages: no more than the %lu regions written", resident,
	              written);
	const struct migration_info *in = session(b, (int)b->host.migrations.next_id);
	cr_assert_leq(in->regions_populated, written, "only written regions were backed");
	cr_log_info("16 GiB, %lu regions written: %lu pages resident on the destination, %lu "
	            "regions backed ahead",
	            (unsigned long)written, (unsigned long)resident,
	            (unsigned long)in->regions_populated);
}

/* Both hosts mount one datastore (a folder of this test's) as ds1, and a's second, ds2, for a
 * twin; they lock disks under their names. Returns the folder. */
static const char *share_datastore(void)
{
	static char folder[64];
	char twin[80];

	snprintf(folder, sizeof(folder), "/tmp/ferry-test-ds-%d", getpid());
	snprintf(twin, sizeof(twin), "%s-twin", folder);
	cr_assert(mkdir(folder, 0755) == 0 || errno == EEXIST);
	cr_assert(mkdir(twin, 0755) == 0 || errno == EEXIST);
	ctl(a, "host name host-a");
	ctl(b, "host name host-b");
	ctl(a, "datastore add ds1 %s lease 2", folder);
	ctl(b, "datastore add ds1 %s lease 2", folder);
	ctl(a, "datastore add ds2 %s lease 2", twin);
	return folder;
}

static void remove_datastore(const char *folder)
{
	char command[200];

	snprintf(command, sizeof(command), "rm -rf '%s' '%s-twin'", folder, folder);
	cr_assert_eq(system(command), 0);
}

/* Who holds a VM's disk lock on ds1, as the lock file says. */
static const char *disk_owner(const char *folder, const char *vm)
{
	static struct disklock_holder holder;
	char path[200];

	snprintf(path, sizeof(path), "%s/%s/%s-flat.vmdk", folder, vm, vm);
	return disklock_holder(path, &holder) == 0 ? holder.owner : "(nobody)";
}

static void read_disk(const char *path, uint8_t *out, size_t size)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	cr_assert_eq(fread(out, 1, size, f), size, "%s is %zu bytes", path, size);
	fclose(f);
}

/* Migrates vm1 from one host to the other and waits for it to finish; returns the id. */
static void migrate_between(struct node *from, const char *to_ip)
{
	char out[2048];
	int ret = ctl_try(from, out, sizeof(out),
	                  "migrate start vm1 to %s key %s mode precopy " EXACT_OPTIONS
	                  " " LOOSE_PREFLIGHT,
	                  to_ip, key_path);
	cr_assert_eq(ret, 0, "%s", out);
	const struct migration_info *m =
	        wait_done(from, (int)from->host.migrations.next_id, 60 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "migration %s: %s",
	             migration_status_name(m->status), m->reason);
}

/* A VM's disk goes with it: at each switchover the source flushes it and offers its lock, the
 * destination takes it before the VM runs there; after a migration there and back the disk
 * equals that of an unmigrated twin (same workload, same seed, another datastore) at the same
 * step, block for block. */
Test(exact_9000, a_disk_goes_with_the_vm_there_and_back)
{
	const char *folder = share_datastore();
	const char *spec = "uniform,rate=20000,seed=5";
	create_vm_with(a, "vm1", 16, spec, "datastore ds1 disk-mib 4");
	ctl(a,
	    "vm create twin mem 16 mac 02:00:00:00:00:0b ip 10.10.0.11/24 portgroup \"VM "
	    "Network\" workload %s datastore ds2 disk-mib 4",
	    spec);
	struct vm *vm = host_vm_find(&a->host, "vm1");
	pump_until(vm->disk.writes >= 8, 10 * SECOND, "the VM writes its disk");
	cr_assert_str_eq(disk_owner(folder, "vm1"), "host-a");

	migrate_between(a, B_VMK_IP);
	cr_assert_null(host_vm_find(&a->host, "vm1"));
	vm = host_vm_find(&b->host, "vm1");
	cr_assert(vm != NULL && vm->disk.fd >= 0, "it runs on b with its disk open");
	cr_assert_str_eq(disk_owner(folder, "vm1"), "host-b", "the lock went with it");
	pump_until(vm->disk.writes >= 8, 10 * SECOND, "it writes its disk on b");

	migrate_between(b, A_VMK_IP);
	vm = host_vm_find(&a->host, "vm1");
	cr_assert(vm != NULL && vm->disk.fd >= 0, "back on a with its disk open");
	cr_assert_str_eq(disk_owner(folder, "vm1"), "host-a", "and its lock");
	pump_until(vm->disk.writes >= 8, 10 * SECOND, "it writes its disk on a again");

	/* Both paused at one step: the one behind is stepped up to the other, and its owed
	 * writes land (a paused VM still pays what its steps owe the disk). */
	struct vm *twin = host_vm_find(&a->host, "twin");
	ctl(a, "vm pause vm1");
	ctl(a, "vm pause twin");
	uint64_t step = machine_step(&vm->machine), twin_step = machine_step(&twin->machine);
	struct vm *behind = step < twin_step ? vm : twin;
	uint64_t target = step > twin_step ? step : twin_step;
	machine_steps(&behind->machine, target - machine_step(&behind->machine));
	pump_until(vm->disk.next_step >= target && twin->disk.next_step >= target, 10 * SECOND,
	           "the owed writes land");
	cr_assert_eq(machine_step(&vm->machine), machine_step(&twin->machine));

	static uint8_t moved[4 << 20], unmoved[4 << 20];
	char path[200];
	snprintf(path, sizeof(path), "%s/vm1/vm1-flat.vmdk", folder);
	read_disk(path, moved, sizeof(moved));
	snprintf(path, sizeof(path), "%s-twin/twin/twin-flat.vmdk", folder);
	read_disk(path, unmoved, sizeof(unmoved));
	uint64_t blocks = target / VM_DISK_EVERY;
	cr_assert_gt(blocks, 24, "a few blocks were written on each host (%lu)",
	             (unsigned long)blocks);
	cr_assert_eq(memcmp(moved, unmoved, sizeof(moved)), 0,
	             "after two migrations the disk equals the twin's at step %lu",
	             (unsigned long)target);
	ctl(a, "vm destroy vm1");
	ctl(a, "vm destroy twin");
	remove_datastore(folder);
}

/* A destination that does not mount the VM's datastore refuses it before any page moves, and
 * the VM keeps running on the source with its lock; one that mounts another folder under that
 * name (not the same storage) cannot see the disk, and refuses too. */
Test(exact_9000, a_destination_without_the_datastore_refuses_a_vm_with_a_disk)
{
	char folder[64], elsewhere[80], out[2048];

	snprintf(folder, sizeof(folder), "/tmp/ferry-test-ds-%d", getpid());
	snprintf(elsewhere, sizeof(elsewhere), "%s-elsewhere", folder);
	cr_assert(mkdir(folder, 0755) == 0 || errno == EEXIST);
	cr_assert(mkdir(elsewhere, 0755) == 0 || errno == EEXIST);
	ctl(a, "datastore add ds1 %s", folder);
	create_vm_with(a, "vm1", 4, "uniform,rate=2000", "datastore ds1 disk-mib 1");
	for (int attempt = 0; attempt < 2; attempt++) {
		int id = start("vm1", LOOSE_PREFLIGHT);
		const struct migration_info *m = wait_done(a, id, 30 * SECOND);
		cr_assert_eq(m->status, MIGRATION_FAILED);
		cr_assert(strstr(m->reason, attempt == 0 ? "no datastore ds1" : "not on ds1") !=
		                  NULL,
		          "%s", m->reason);
		assert_vm_unmoved();
		cr_assert_null(host_vm_find(&b->host, "vm1"));
		cr_assert_str_eq(disk_owner(folder, "vm1"), a->host.name);
		if (attempt == 0)
			ctl(b, "datastore add ds1 %s", elsewhere);
	}
	cr_assert_eq(ctl_try(a, out, sizeof(out), "vm destroy vm1"), 0, "%s", out);
	snprintf(out, sizeof(out), "rm -rf '%s' '%s'", folder, elsewhere);
	cr_assert_eq(system(out), 0);
}

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
	destination_kill();
	const struct migration_info *m = wait_done(a, id, 15 * SECOND);
	cr_assert_eq(m->status, MIGRATION_FAILED);
	cr_assert(strstr(m->reason, "stopped answering") != NULL, "%s", m->reason);
	assert_vm_unmoved();

	/* The destination comes back; the second attempt goes through. */
	destination_restart(9000);
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
	        a,
	        start("vm1",
	              "mode precopy max-bandwidth 100M max-rounds 3 auto-converge off force"),
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
	static const unsigned int mtus[] = {575, 300};

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

/* Migrates vm1 to b with a pcap uplink there and an announce schedule, waits until the announce
 * has gone out, and fills in the capture's path (the caller unlinks it). */
static void migrate_capturing_the_announce(char *pcap_path, size_t size, const char *schedule)
{
	snprintf(pcap_path, size, "/tmp/ferry-test-mig-announce-%d.pcap", getpid());
	ctl(b, "port add up1 net_pcap_mig%d,tx_pcap=%s role uplink", getpid() % 1000, pcap_path);
	create_vm(a, "vm1", 16, "hotcold,rate=2000,fill=30");
	char options[128];
	snprintf(options, sizeof(options), "announce %s " LOOSE_PREFLIGHT, schedule);
	const struct migration_info *m = wait_done(a, start("vm1", options), 30 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	struct vm *moved = host_vm_find(&b->host, "vm1");
	cr_assert_not_null(moved);
	pump_until(!announce_running(&moved->announce), 5 * SECOND, "the announce never ended");
	/* The last frame crosses the vnic's ring, the switch and the port's transmit buffer. */
	for (int i = 0; i < 3; i++)
		pump();
	ctl(b, "port del up1");
}

Test(announce, rarp_on_the_destination_uplink_on_schedule)
{
	char pcap_path[64];

	migrate_capturing_the_announce(pcap_path, sizeof(pcap_path), "4,30,40");
	uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0x0a};
	struct harness_rarp rarp;
	cr_assert_eq(harness_read_rarp(pcap_path, mac, 10, &rarp), 0);
	cr_assert_eq(rarp.frames, 4, "as many frames as configured (%u)", rarp.frames);
	cr_assert_eq(rarp.strays, 0,
	             "each is 60 bytes and a VLAN 10 tag, broadcast, from the VM's MAC, opcode 3, "
	             "the VM as sender and target, addresses 0");
	/* On schedule: no frame before its time after the first (30, then 40 more each time), and
	 * none held back far; a loaded machine may only make them late, so lateness gets slack. */
	const double due_ms[] = {30, 100, 210};
	for (unsigned int i = 0; i < 3; i++) {
		double at = (rarp.times[i + 1] - rarp.times[0]) * 1e3;
		cr_assert(at > due_ms[i] - 10 && at < due_ms[i] + 1000,
		          "frame %u went %.1f ms after the first, due at %.0f", i + 1, at,
		          due_ms[i]);
	}
	cr_assert_eq(harness_tshark_count(pcap_path, "arp.opcode == 3 && vlan.id == 10"), 4,
	             "tshark dissects four RARP requests on VLAN 10");
	unlink(pcap_path);
}

/* ESXi's "Notify switches", per port group on the destination: RARP and GARP, GARP alone, or
 * nothing at all (the source's schedule: three rounds); tshark reads what went out. */
static void notify_case(const char *setting, int rarps, int garps)
{
	char pcap_path[64];

	ctl(b, "portgroup set \"VM Network\" %s", setting);
	migrate_capturing_the_announce(pcap_path, sizeof(pcap_path), "3,20,20");
	cr_assert_eq(harness_tshark_count(pcap_path, "arp.opcode == 3"), rarps, "%s: RARPs",
	             setting);
	cr_assert_eq(harness_tshark_count(pcap_path,
	                                  "arp.opcode != 3 && arp.src.hw_mac == 02:00:00:00:00:0a"),
	             garps, "%s: gratuitous ARPs", setting);
	unlink(pcap_path);
}

Test(announce, the_port_group_says_whether_and_how)
{
	notify_case("notify garp", 0, 3);
}

Test(announce, both)
{
	notify_case("notify both", 3, 3);
}

Test(announce, a_port_group_that_does_not_notify_sends_nothing)
{
	notify_case("notify-switches off", 0, 0);
	cr_assert_eq(host_vm_find(&b->host, "vm1")->announce.sent, 0);
}
