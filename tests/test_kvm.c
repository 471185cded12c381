/* Unit tests of the KVM backend on this machine's /dev/kvm (a test fails, never skips, when it
 * cannot be opened): the guest runs and writes what the synthetic backend writes, KVM's dirty
 * log with the host's writes merged, the vCPU state saved, loaded and refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "vm/machine.h"
#include "vm/vm_kvm.h"
#include "vm/vm_synthetic.h"

#define MEMORY_MB 16
#define PAGES     (MEMORY_MB * 256)
#define GUEST     (PAGES - vm_kvm_guest_pages(PAGES)) /* the guest's pages: the last */

static struct vm_kvm_config config(uint64_t seed, enum vm_pattern pattern)
{
	return (struct vm_kvm_config){
	        .workload = {.seed = seed, .pattern = pattern, .working_set_pages = GUEST},
	        .guest_page = GUEST,
	};
}

static void kvm_machine(struct machine *vm, const char *name, const struct vm_kvm_config *c)
{
	cr_assert_eq(machine_create(vm, name, MEMORY_MB, MACHINE_BACKING_ANONYMOUS, &vm_kvm_ops, c),
	             0, "a KVM VM on /dev/kvm");
}

/* Every page of the dirty log, as a fresh bitmap (the caller frees it). */
static uint64_t *read_log(struct machine *vm, uint64_t *count)
{
	uint64_t *log = calloc(machine_bitmap_words(vm), sizeof(uint64_t));

	cr_assert_not_null(log);
	*count = machine_dirty_log_read_and_clear(vm, log);
	return log;
}

static bool bit(const uint64_t *log, uint64_t page)
{
	return (log[page / 64] >> (page % 64)) & 1;
}

Test(kvm, the_guest_runs_and_counts_its_steps)
{
	struct machine vm;
	struct vm_kvm_config c = config(7, VM_PATTERN_HOTCOLD);

	kvm_machine(&vm, "counts", &c);
	cr_assert_eq(vm_kvm_step(&vm), 0);
	cr_assert_eq(vm_kvm_steps(&vm, 1000), 0);
	cr_assert_eq(vm_kvm_step(&vm), 1000, "the step counter in its memory");
	cr_assert_eq(vm_kvm_steps(&vm, 234), 0);
	cr_assert_eq(vm_kvm_step(&vm), 1234);
	cr_assert_geq(vm_kvm_exits(&vm), 2, "it left through its port each time");
	cr_assert_geq(vm.stats.pages_written, 1234, "a write a step, and the host's own");
	machine_destroy(&vm);
}

/* The guest's steps are the synthetic backend's, word for word, for every pattern. */
Test(kvm, its_writes_equal_the_synthetic_backends)
{
	for (int p = VM_PATTERN_UNIFORM; p <= VM_PATTERN_SEQUENTIAL; p++) {
		struct machine kvm, synthetic;
		struct vm_kvm_config c = config(42, (enum vm_pattern)p);
		c.workload.fill_percent = 10;
		kvm_machine(&kvm, "kvm", &c);
		cr_assert_eq(machine_create(&synthetic, "synthetic", MEMORY_MB,
		                            MACHINE_BACKING_ANONYMOUS, &vm_synthetic_ops,
		                            &c.workload),
		             0);
		cr_assert_eq(vm_kvm_steps(&kvm, 30000), 0);
		vm_synthetic_steps(&synthetic, 30000);
		cr_assert_eq(vm_kvm_step(&kvm), vm_synthetic_step(&synthetic));
		cr_assert_eq(memcmp(kvm.memory, synthetic.memory, (size_t)GUEST * VM_PAGE_SIZE), 0,
		             "pattern %s", vm_pattern_name((enum vm_pattern)p));
		machine_destroy(&kvm);
		machine_destroy(&synthetic);
	}
}

/* KVM's log reports the pages the guest wrote and no other; the host's writes are merged. */
Test(kvm, the_dirty_log_holds_the_guests_writes_and_the_hosts)
{
	struct machine kvm, synthetic;
	struct vm_kvm_config c = config(3, VM_PATTERN_UNIFORM);
	uint64_t count, twin_count;

	kvm_machine(&kvm, "log", &c);
	cr_assert_eq(machine_create(&synthetic, "twin", MEMORY_MB, MACHINE_BACKING_ANONYMOUS,
	                            &vm_synthetic_ops, &c.workload),
	             0);
	uint64_t *log = read_log(&kvm, &count);
	cr_assert_eq(count, vm_kvm_guest_pages(PAGES), "the image and page tables the host wrote");
	cr_assert(bit(log, GUEST));
	free(log);
	log = read_log(&synthetic, &count);
	free(log);
	/* 200 steps: the pages the synthetic twin logs, and the guest's own page (its counter). */
	cr_assert_eq(vm_kvm_steps(&kvm, 200), 0);
	vm_synthetic_steps(&synthetic, 200);
	log = read_log(&kvm, &count);
	uint64_t *twin = read_log(&synthetic, &twin_count);
	cr_assert_gt(twin_count, 150, "200 uniform steps over 4,095 pages");
	cr_assert_eq(count, twin_count + 1);
	cr_assert(bit(log, GUEST));
	for (uint64_t page = 0; page < GUEST; page++)
		cr_assert_eq(bit(log, page), bit(twin, page), "page %lu", (unsigned long)page);
	free(log);
	free(twin);
	/* Nothing ran: nothing is reported. */
	log = read_log(&kvm, &count);
	cr_assert_eq(count, 0);
	free(log);
	/* The host writes a page the guest never touched: it is reported too. */
	machine_write64(&kvm, 17, 8, 0x1234);
	cr_assert_eq(vm_kvm_steps(&kvm, 1), 0);
	log = read_log(&kvm, &count);
	cr_assert(bit(log, 17));
	free(log);
	machine_destroy(&kvm);
	machine_destroy(&synthetic);
}

/* Runs the worker's side at now until the guest reached step want (the vCPU thread takes its
 * grants on its own), with a deadline. */
static void run_until(struct machine *vm, uint64_t now, uint64_t want)
{
	for (int i = 0; i < 500000 && vm_kvm_step(vm) < want; i++) {
		machine_run(vm, now);
		sched_yield();
	}
	machine_run(vm, now);
	cr_assert_eq(vm_kvm_step(vm), want);
}

/* The vCPU has a thread of its own, paced by the worker's runs: at 2,000 steps/s, a tenth of a
 * second of the worker's clock is 200 steps, and no more however often it runs. */
Test(kvm, the_vcpu_thread_takes_the_steps_the_rate_owes)
{
	struct machine vm;
	struct vm_kvm_config c = config(9, VM_PATTERN_UNIFORM);

	c.workload.rate = 2000;
	c.workload.max_steps_per_run = 20;
	kvm_machine(&vm, "paced", &c);
	machine_resume(&vm);
	uint64_t now = 1000000000ull;
	machine_run(&vm, now);
	for (uint64_t tick = 1; tick <= 10; tick++) {
		now += 10000000ull;
		run_until(&vm, now, 20 * tick);
	}
	cr_assert_geq(vm.stats.pages_written, 200);
	machine_pause(&vm);
	machine_run(&vm, now + 1000000000ull);
	cr_assert_eq(vm_kvm_step(&vm), 200, "paused, it takes none");
	machine_destroy(&vm);
}

/* A pause stops the guest in the middle of a grant it could never finish, after the step it
 * is taking; its budget is its step counter again, and it goes on from there. */
Test(kvm, a_pause_stops_the_guest_within_a_grant)
{
	struct machine vm;
	struct vm_kvm_config c = config(10, VM_PATTERN_HOTCOLD);

	c.workload.max_steps_per_run = 1000000000u; /* "max": one grant, for ever */
	kvm_machine(&vm, "stopped", &c);
	machine_resume(&vm);
	machine_run(&vm, 1);
	for (int i = 0; i < 500000 && vm_kvm_step(&vm) < 100; i++)
		sched_yield();
	cr_assert_geq(vm_kvm_step(&vm), 100, "the guest runs on its thread");
	machine_pause(&vm);
	uint64_t step = vm_kvm_step(&vm);
	cr_assert_lt(step, 1000000000u, "stopped before its grant ran out");
	struct vm_kvm_state st;
	cr_assert_eq(machine_save_state(&vm, &st), sizeof(st));
	cr_assert_eq(vm_kvm_step(&vm), step, "out of the guest: the counter stays");
	cr_assert_eq(vm_kvm_steps(&vm, 10), 0);
	cr_assert_eq(vm_kvm_step(&vm), step + 10);
	machine_destroy(&vm);
}

/* A state saved mid-run and loaded into a VM with the same memory goes on exactly as the VM
 * it came from: memory, step and vCPU state. */
Test(kvm, a_state_loaded_elsewhere_goes_on_exactly)
{
	struct machine a, b;
	struct vm_kvm_config c = config(11, VM_PATTERN_SEQUENTIAL);
	uint8_t blob[VM_STATE_MAX], blob_a[VM_STATE_MAX], blob_b[VM_STATE_MAX];

	kvm_machine(&a, "a", &c);
	kvm_machine(&b, "b", &c);
	cr_assert_eq(vm_kvm_steps(&a, 5000), 0);
	size_t len = machine_save_state(&a, blob);
	cr_assert_eq(len, sizeof(struct vm_kvm_state));
	for (uint64_t page = 0; page < PAGES; page++)
		if (machine_page_touched(&a, page))
			machine_page_load(&b, page, machine_page(&a, page));
	cr_assert_eq(machine_load_state(&b, blob, len), 0);
	cr_assert_eq(vm_kvm_step(&b), 5000);
	cr_assert_eq(vm_kvm_steps(&a, 3000), 0);
	cr_assert_eq(vm_kvm_steps(&b, 3000), 0);
	cr_assert_eq(machine_memory_hash(&a), machine_memory_hash(&b));
	cr_assert_eq(memcmp(a.memory, b.memory, (size_t)PAGES * VM_PAGE_SIZE), 0);
	cr_assert_eq(machine_save_state(&a, blob_a), machine_save_state(&b, blob_b));
	cr_assert_eq(memcmp(blob_a, blob_b, len), 0, "the same registers");
	machine_destroy(&a);
	machine_destroy(&b);
}

Test(kvm, a_state_from_another_backend_or_version_is_refused)
{
	struct machine kvm, synthetic;
	struct vm_kvm_config c = config(5, VM_PATTERN_UNIFORM);
	uint8_t blob[VM_STATE_MAX], other[VM_STATE_MAX];

	kvm_machine(&kvm, "kvm", &c);
	cr_assert_eq(machine_create(&synthetic, "synthetic", MEMORY_MB, MACHINE_BACKING_ANONYMOUS,
	                            &vm_synthetic_ops, &c.workload),
	             0);
	size_t len = machine_save_state(&kvm, blob);
	size_t other_len = machine_save_state(&synthetic, other);
	cr_assert_eq(machine_load_state(&kvm, other, other_len), -EINVAL, "a synthetic state");
	cr_assert_eq(machine_load_state(&synthetic, blob, len), -EINVAL, "into a synthetic VM");
	cr_assert_eq(machine_load_state(&kvm, blob, len - 1), -EINVAL, "cut short");
	struct vm_kvm_state st;
	memcpy(&st, blob, sizeof(st));
	st.version++;
	cr_assert_eq(machine_load_state(&kvm, &st, sizeof(st)), -EINVAL, "another version");
	memcpy(&st, blob, sizeof(st));
	st.guest_page--;
	cr_assert_eq(machine_load_state(&kvm, &st, sizeof(st)), -EINVAL, "another layout");
	memcpy(&st, blob, sizeof(st));
	st.xsave[512] |= 4; /* XSTATE_BV says AVX is in use: its registers are not carried */
	cr_assert_eq(machine_load_state(&kvm, &st, sizeof(st)), -EINVAL, "state past SSE");
	memcpy(&st, blob, sizeof(st));
	st.msrs[3].index = 0x10; /* the TSC in place of STAR */
	cr_assert_eq(machine_load_state(&kvm, &st, sizeof(st)), -EINVAL, "another MSR");
	memcpy(&st, blob, sizeof(st));
	st.sregs.cr0 = 0x80000000; /* paging without protection: no CPU takes it */
	cr_assert_eq(machine_load_state(&kvm, &st, sizeof(st)), -EINVAL, "KVM refuses it");
	/* Refused states changed nothing: the VM runs on. */
	cr_assert_eq(machine_load_state(&kvm, blob, len), 0);
	cr_assert_eq(vm_kvm_steps(&kvm, 10), 0);
	cr_assert_eq(vm_kvm_step(&kvm), 10);
	machine_destroy(&kvm);
	machine_destroy(&synthetic);
}

/* A VM past 3 GiB: its memory above the hole is a second slot at 4 GiB, the guest's map skips
 * the hole, and every write lands on the page it names, in memory and in the dirty log. */
Test(kvm, a_vm_past_the_hole_writes_where_the_synthetic_one_does)
{
	const unsigned int mib = 4608; /* 4.5 GiB */
	const uint64_t pages = (uint64_t)mib * 256, guest = pages - vm_kvm_guest_pages(pages);
	struct vm_kvm_config c = {.workload = {.seed = 12, .pattern = VM_PATTERN_UNIFORM},
	                          .guest_page = guest};
	struct machine kvm, synthetic;
	uint64_t count, twin_count;

	c.workload.working_set_pages = guest;
	cr_assert_eq(machine_create(&kvm, "big", mib, MACHINE_BACKING_ANONYMOUS, &vm_kvm_ops, &c),
	             0);
	cr_assert_eq(machine_create(&synthetic, "twin", mib, MACHINE_BACKING_ANONYMOUS,
	                            &vm_synthetic_ops, &c.workload),
	             0);
	free(read_log(&kvm, &count));
	free(read_log(&synthetic, &count));
	cr_assert_eq(vm_kvm_steps(&kvm, 20000), 0);
	vm_synthetic_steps(&synthetic, 20000);
	uint64_t *log = read_log(&kvm, &count), *twin = read_log(&synthetic, &twin_count);
	uint64_t above = 0;
	for (uint64_t page = 0; page < guest; page++) {
		cr_assert_eq(bit(log, page), bit(twin, page), "page %lu", (unsigned long)page);
		if (bit(twin, page)) {
			cr_assert_eq(memcmp(machine_page(&kvm, page),
			                    machine_page(&synthetic, page), VM_PAGE_SIZE),
			             0, "page %lu", (unsigned long)page);
			above += page >= VM_KVM_HOLE_PAGE;
		}
	}
	cr_assert_gt(above, 1000, "a third of the writes went past the hole (%lu)",
	             (unsigned long)above);
	free(log);
	free(twin);
	machine_destroy(&kvm);
	machine_destroy(&synthetic);
}

Test(kvm, a_vm_too_big_or_without_room_for_its_guest_is_refused)
{
	struct machine vm;
	struct vm_kvm_config c = config(1, VM_PATTERN_UNIFORM);

	c.guest_page = PAGES;
	cr_assert_eq(machine_create(&vm, "nopage", MEMORY_MB, MACHINE_BACKING_ANONYMOUS,
	                            &vm_kvm_ops, &c),
	             -EINVAL);
	c.guest_page = 100;
	cr_assert_eq(machine_create(&vm, "big", VM_KVM_MAX_MEMORY_MB + 1, MACHINE_BACKING_ANONYMOUS,
	                            &vm_kvm_ops, &c),
	             -EINVAL);
}

/* Post-copy through userfaultfd: what a destination's worker sees. */
struct faults {
	uint64_t pages[256];
	unsigned int count;
};

static void record_fault(void *ctx, uint64_t page, uint64_t now_ns)
{
	struct faults *f = ctx;

	(void)now_ns;
	cr_assert_lt(f->count, 256u, "too many faults");
	f->pages[f->count++] = page;
}

/* A VM resumed before its pages came: every page the guest wrote (its mailbox's with them) is
 * elsewhere. The host's first access (the mailbox) and each of the vCPU's faults through
 * userfaultfd are reported once; the vCPU waits in the fault until its page comes, then goes on,
 * and the VM ends as the one it came from at the same step. */
Test(kvm, post_copy_serves_the_vcpus_faults_through_userfaultfd)
{
	struct machine a, b;
	struct vm_kvm_config c = config(12, VM_PATTERN_HOTCOLD);
	uint8_t blob[VM_STATE_MAX], blob_a[VM_STATE_MAX], blob_b[VM_STATE_MAX];
	struct faults f = {.count = 0};

	c.workload.max_steps_per_run = 50;
	kvm_machine(&a, "a", &c);
	kvm_machine(&b, "b", &c);
	cr_assert(vm_kvm_postcopy_capable(&b), "this kernel has minor faults on shared memory");
	cr_assert_eq(vm_kvm_steps(&a, 2000), 0);
	size_t len = machine_save_state(&a, blob);
	cr_assert_eq(len, sizeof(struct vm_kvm_state));
	/* The first 64 pages a wrote, and its mailbox's, stay there; the rest come now. */
	uint64_t *absent = calloc(machine_bitmap_words(&a), sizeof(uint64_t));
	uint64_t nb_absent = 0;
	for (uint64_t page = 0; page < PAGES; page++) {
		if (!machine_page_touched(&a, page))
			continue;
		if ((page < GUEST && nb_absent < 64) || page == GUEST) {
			absent[page / 64] |= 1ull << (page % 64);
			nb_absent++;
		} else {
			machine_page_load(&b, page, machine_page(&a, page));
		}
	}
	cr_assert_eq(machine_remote_begin(&b, absent, record_fault, &f), 0);
	cr_assert_eq(machine_load_state(&b, blob, len), 0, "the state alone says where it is");
	machine_resume(&b);
	/* Until its pages come, a worker serves the faults as they are reported. */
	uint64_t now = 1;
	unsigned int served = 0;
	for (int i = 0; i < 2000000 && b.remote.nb_absent > 0; i++) {
		machine_run(&b, ++now);
		for (; served < f.count; served++) {
			uint64_t page = f.pages[served];
			cr_assert(machine_page_absent(&b, page),
			          "fault %u: page %lu is here already", served,
			          (unsigned long)page);
			machine_page_load(&b, page, machine_page(&a, page));
			machine_remote_arrived(&b, page, now);
		}
		if (f.count > 0 && vm_kvm_step(&b) > 2000 + 3000)
			break;
		sched_yield();
	}
	cr_assert_eq(f.pages[0], GUEST, "the host's access to the mailbox came first");
	cr_assert_gt(f.count, 1, "the vCPU met absent pages: %u faults", f.count);
	for (unsigned int i = 0; i < f.count; i++)
		for (unsigned int j = 0; j < i; j++)
			cr_assert_neq(f.pages[i], f.pages[j], "page %lu reported twice",
			              (unsigned long)f.pages[i]);
	struct vm_kvm_fault_stats stats = vm_kvm_fault_stats(&b);
	cr_assert_geq(stats.faults, f.count - 1, "each came through userfaultfd");
	cr_assert_gt(stats.resolved, 0, "pages that were here were mapped at once");
	cr_log_info("%u absent pages reported, %lu faults through userfaultfd, %lu of pages here, "
	            "step %lu",
	            f.count, (unsigned long)stats.faults, (unsigned long)stats.resolved,
	            (unsigned long)vm_kvm_step(&b));
	/* The rest come in the background; then post-copy is over. */
	for (uint64_t page = 0; page < PAGES; page++)
		if (machine_page_absent(&b, page)) {
			machine_page_load(&b, page, machine_page(&a, page));
			machine_remote_arrived(&b, page, now);
		}
	machine_remote_end(&b);
	machine_pause(&b);
	uint64_t step = vm_kvm_step(&b);
	cr_assert_gt(step, 2000, "it ran at the destination");
	cr_assert_eq(vm_kvm_steps(&a, step - 2000), 0);
	cr_assert_eq(memcmp(a.memory, b.memory, (size_t)GUEST * VM_PAGE_SIZE), 0,
	             "the same memory at step %lu", (unsigned long)step);
	cr_assert_eq(machine_save_state(&a, blob_a), machine_save_state(&b, blob_b));
	cr_assert_eq(memcmp(blob_a, blob_b, len), 0, "the same registers");
	cr_assert_eq(vm_kvm_steps(&a, 1000), 0);
	cr_assert_eq(vm_kvm_steps(&b, 1000), 0);
	cr_assert_eq(memcmp(a.memory, b.memory, (size_t)GUEST * VM_PAGE_SIZE), 0);
	free(absent);
	machine_destroy(&a);
	machine_destroy(&b);
}
