/* Unit tests of the VM model and its synthetic backend: determinism, patterns, the dirty log,
 * state save/load, rate and throttle, sparse memory. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/machine.h"
#include "vm/vm.h"
#include "vm/vm_synthetic.h"

static struct vm_workload workload(uint64_t seed, enum vm_pattern pattern, uint64_t ws)
{
	struct vm_workload w = {.seed = seed, .pattern = pattern, .working_set_pages = ws};
	return w;
}

Test(vm, the_same_workload_writes_the_same_memory)
{
	for (int p = VM_PATTERN_UNIFORM; p <= VM_PATTERN_SEQUENTIAL; p++) {
		struct machine a, b, c;
		struct vm_workload w = workload(42, (enum vm_pattern)p, 5000);
		struct vm_workload other = workload(43, (enum vm_pattern)p, 5000);
		cr_assert_eq(machine_create(&a, "a", 64, MACHINE_BACKING_ANONYMOUS,
		                            &vm_synthetic_ops, &w),
		             0);
		cr_assert_eq(machine_create(&b, "b", 64, MACHINE_BACKING_ANONYMOUS,
		                            &vm_synthetic_ops, &w),
		             0);
		cr_assert_eq(machine_create(&c, "c", 64, MACHINE_BACKING_ANONYMOUS,
		                            &vm_synthetic_ops, &other),
		             0);
		vm_synthetic_steps(&a, 20000);
		vm_synthetic_steps(&b, 20000);
		vm_synthetic_steps(&c, 20000);
		cr_assert_eq(machine_memory_hash(&a), machine_memory_hash(&b), "pattern %s",
		             vm_pattern_name((enum vm_pattern)p));
		cr_assert_eq(memcmp(a.memory, b.memory, 5000 * VM_PAGE_SIZE), 0);
		cr_assert_neq(machine_memory_hash(&a), machine_memory_hash(&c),
		              "another seed differs");
		machine_destroy(&a);
		machine_destroy(&b);
		machine_destroy(&c);
	}
}

Test(vm, the_dirty_log_is_read_and_cleared_like_kvms)
{
	struct machine vm;
	struct vm_workload w = workload(1, VM_PATTERN_SEQUENTIAL, 0);

	cr_assert_eq(machine_create(&vm, "d", 16, MACHINE_BACKING_ANONYMOUS, &vm_synthetic_ops, &w),
	             0);
	uint64_t *log = calloc(machine_bitmap_words(&vm), sizeof(uint64_t));
	machine_write64(&vm, 5, 0, 1);
	machine_write64(&vm, 70, 8, 2);
	machine_write64(&vm, 70, 16, 3);
	cr_assert_eq(machine_dirty_log_read_and_clear(&vm, log), 2);
	cr_assert_eq(log[0], 1ull << 5);
	cr_assert_eq(log[1], 1ull << 6);
	cr_assert_eq(machine_dirty_log_read_and_clear(&vm, log), 0, "cleared by the read");
	/* Sequential: the next 100 steps dirty exactly the next 100 pages. */
	vm_synthetic_steps(&vm, 100);
	cr_assert_eq(machine_dirty_log_read_and_clear(&vm, log), 100);
	cr_assert_eq(log[0], ~0ull);
	cr_assert_eq(vm.stats.pages_touched, 100, "pages 0-99 (5 and 70 among them)");
	free(log);
	machine_destroy(&vm);
}

/* Non-zero words in pages [from, to): a write leaves one, so this counts writes per region. */
static uint64_t words_in(const struct machine *vm, uint64_t from, uint64_t to)
{
	uint64_t n = 0;
	for (uint64_t page = from; page < to; page++) {
		const uint64_t *w = (const uint64_t *)machine_page(vm, page);
		for (unsigned int i = 0; i < VM_PAGE_SIZE / 8; i++)
			n += w[i] != 0;
	}
	return n;
}

Test(vm, hotcold_sends_nine_writes_in_ten_to_the_hot_tenth)
{
	struct machine vm;
	struct vm_workload w = workload(7, VM_PATTERN_HOTCOLD, 10000);

	cr_assert_eq(machine_create(&vm, "h", 64, MACHINE_BACKING_ANONYMOUS, &vm_synthetic_ops, &w),
	             0);
	vm_synthetic_steps(&vm, 20000);
	double hot = (double)words_in(&vm, 0, 1000);
	double cold = (double)words_in(&vm, 1000, 10000);
	cr_assert(hot / (hot + cold) > 0.85 && hot / (hot + cold) < 0.95, "hot share %.3f",
	          hot / (hot + cold));
	cr_assert_eq(words_in(&vm, 10000, vm.nb_pages), 0, "nothing outside the working set");
	machine_destroy(&vm);
}

Test(vm, state_and_memory_carried_to_another_vm_continue_identically)
{
	struct machine src, dst, ref;
	struct vm_workload w = workload(99, VM_PATTERN_UNIFORM, 2000);
	uint8_t state[VM_STATE_MAX];

	cr_assert_eq(
	        machine_create(&src, "src", 32, MACHINE_BACKING_ANONYMOUS, &vm_synthetic_ops, &w),
	        0);
	cr_assert_eq(
	        machine_create(&ref, "ref", 32, MACHINE_BACKING_ANONYMOUS, &vm_synthetic_ops, &w),
	        0);
	/* The destination starts from another workload: everything must come from the state. */
	struct vm_workload blank = workload(0, VM_PATTERN_SEQUENTIAL, 1);
	cr_assert_eq(machine_create(&dst, "dst", 32, MACHINE_BACKING_ANONYMOUS, &vm_synthetic_ops,
	                            &blank),
	             0);
	vm_synthetic_steps(&src, 5000);
	vm_synthetic_steps(&ref, 5000);
	/* "Migrate": every non-zero page, then the vCPU state. */
	for (uint64_t page = 0; page < src.nb_pages; page++)
		if (!machine_page_is_zero(&src, page))
			machine_page_load(&dst, page, machine_page(&src, page));
	size_t len = machine_save_state(&src, state);
	cr_assert_eq(len, sizeof(struct vm_synthetic_state));
	cr_assert_eq(machine_load_state(&dst, state, len), 0);
	cr_assert_eq(vm_synthetic_step(&dst), 5000);
	vm_synthetic_steps(&dst, 7000);
	vm_synthetic_steps(&ref, 7000);
	cr_assert_eq(machine_memory_hash(&dst), machine_memory_hash(&ref));
	cr_assert_eq(memcmp(dst.memory, ref.memory, 2000 * VM_PAGE_SIZE), 0);
	machine_destroy(&src);
	machine_destroy(&dst);
	machine_destroy(&ref);
}

Test(vm, a_state_that_is_not_ours_is_refused)
{
	struct machine vm;
	struct vm_workload w = workload(1, VM_PATTERN_UNIFORM, 100);
	struct vm_synthetic_state st;

	cr_assert_eq(machine_create(&vm, "s", 4, MACHINE_BACKING_ANONYMOUS, &vm_synthetic_ops, &w),
	             0);
	machine_save_state(&vm, &st);
	struct vm_synthetic_state bad = st;
	bad.magic ^= 1;
	cr_assert_eq(machine_load_state(&vm, &bad, sizeof(bad)), -EINVAL);
	bad = st;
	bad.working_set_pages = vm.nb_pages + 1;
	cr_assert_eq(machine_load_state(&vm, &bad, sizeof(bad)), -EINVAL, "beyond the VM's memory");
	bad = st;
	bad.pattern = 9;
	cr_assert_eq(machine_load_state(&vm, &bad, sizeof(bad)), -EINVAL);
	cr_assert_eq(machine_load_state(&vm, &st, sizeof(st) - 1), -EINVAL, "cut short");
	cr_assert_eq(machine_load_state(&vm, &st, sizeof(st)), 0);
	machine_destroy(&vm);
}

Test(vm, the_rate_decides_the_steps_per_second_and_the_throttle_slows_it)
{
	struct machine vm;
	struct vm_workload w = workload(5, VM_PATTERN_UNIFORM, 0);

	w.rate = 1000;
	cr_assert_eq(machine_create(&vm, "r", 16, MACHINE_BACKING_ANONYMOUS, &vm_synthetic_ops, &w),
	             0);
	cr_assert_eq(machine_run(&vm, 1), 0, "paused: nothing runs");
	machine_resume(&vm);
	uint64_t written = 0;
	for (uint64_t t = 1; t <= 2000000000ull; t += 1000000) /* 2 s in 1 ms slices */
		written += machine_run(&vm, t);
	cr_assert(written >= 1990 && written <= 2000, "%lu writes in 2 s at 1000/s",
	          (unsigned long)written);
	cr_assert(vm.stats.dirty_rate >= 990 && vm.stats.dirty_rate <= 1010, "rate %lu",
	          (unsigned long)vm.stats.dirty_rate);
	vm.throttle_percent = 50;
	written = 0;
	for (uint64_t t = 2000000001ull; t <= 4000000000ull; t += 1000000)
		written += machine_run(&vm, t);
	cr_assert(written >= 990 && written <= 1000, "%lu writes in 2 s throttled to half",
	          (unsigned long)written);
	machine_destroy(&vm);
}

Test(vm, sixteen_gib_is_sparse)
{
	struct machine vm;
	struct vm_workload w = workload(3, VM_PATTERN_UNIFORM, 0);

	cr_assert_eq(machine_create(&vm, "big", 16 * 1024, MACHINE_BACKING_ANONYMOUS,
	                            &vm_synthetic_ops, &w),
	             0);
	cr_assert_eq(vm.nb_pages, 4194304);
	vm_synthetic_steps(&vm, 10000);
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	cr_assert_eq(fscanf(f, "%ld %ld", &pages, &resident), 2);
	fclose(f);
	cr_assert_lt(resident * 4096 / (1024 * 1024), 256, "resident %ld MiB", resident / 256);
	cr_assert_leq(vm.stats.pages_touched, 10000);
	machine_destroy(&vm);
}

/* Post-copy: a page whose contents are elsewhere stalls the vCPU at the step that touches it,
 * reports the fault once, and the VM takes that very step once the page arrives, so it stays
 * step for step the same as a twin that never waited. */
static uint64_t faults_seen, last_fault_page;

static void record_fault(void *ctx, uint64_t page, uint64_t now_ns)
{
	(void)ctx;
	(void)now_ns;
	faults_seen++;
	last_fault_page = page;
}

Test(vm, an_absent_page_stalls_the_vcpu_until_it_arrives)
{
	struct vm_workload w = {.pattern = VM_PATTERN_UNIFORM,
	                        .seed = 21,
	                        .fill_percent = 0,
	                        .rate = 0,
	                        .max_steps_per_run = 1000};
	struct machine vm, twin;

	w.working_set_pages = 64;
	cr_assert_eq(machine_create(&vm, "pc", 1, MACHINE_BACKING_ANONYMOUS, &vm_synthetic_ops, &w),
	             0);
	cr_assert_eq(
	        machine_create(&twin, "twin", 1, MACHINE_BACKING_ANONYMOUS, &vm_synthetic_ops, &w),
	        0);
	uint64_t absent[4] = {0};
	for (uint64_t page = 0; page < 64; page += 2)
		absent[page / 64] |= 1ull << (page % 64);
	faults_seen = 0;
	cr_assert_eq(machine_remote_begin(&vm, absent, record_fault, NULL), 0);
	cr_assert_eq(vm.remote.nb_absent, 32);
	machine_resume(&vm);

	uint64_t now = 1000, steps = 0;
	for (unsigned int round = 0; round < 200 && vm.remote.nb_absent > 0; round++) {
		steps += machine_run(&vm, now);
		cr_assert(machine_stalled(&vm), "with 32 pages elsewhere the vCPU meets one");
		cr_assert(machine_page_absent(&vm, last_fault_page));
		cr_assert_eq(faults_seen, round + 1, "one fault per stall, however often it runs");
		machine_run(&vm, now + 10);
		cr_assert_eq(faults_seen, round + 1);
		/* The page comes 500 ns after the fault. */
		now += 500;
		machine_remote_arrived(&vm, last_fault_page, now);
		cr_assert(!machine_stalled(&vm));
	}
	cr_assert_eq(vm.remote.nb_absent, 0, "every absent page was demanded and came");
	cr_assert_eq(vm.stats.remote_faults, 32);
	cr_assert_eq(vm.stats.stall_ns, 32 * 500);
	steps += machine_run(&vm, now);
	machine_remote_end(&vm);
	/* The twin, never stalled, at the same step: the same memory. */
	vm_synthetic_steps(&twin, vm_synthetic_step(&vm));
	cr_assert_eq(vm_synthetic_step(&vm), steps);
	cr_assert_eq(machine_memory_hash(&vm), machine_memory_hash(&twin));
	machine_destroy(&vm);
	machine_destroy(&twin);
}

/* A VM's vnic ports hold what each forwarding worker writes on cache lines of its own: vm_alloc
 * aligns where calloc gives 16 bytes (four VMs: four offsets). */
Test(vm, vm_alloc_aligns_the_vnics_per_worker_parts)
{
	struct vm *vms[4];

	for (unsigned int i = 0; i < 4; i++) {
		vms[i] = vm_alloc();
		cr_assert_not_null(vms[i]);
		for (unsigned int w = 0; w < PORT_MAX_WORKERS; w++)
			cr_assert_eq((uintptr_t)&vms[i]->vnic.switch_side.workers[w] %
			                     RTE_CACHE_LINE_SIZE,
			             0, "VM %u, worker %u", i, w);
	}
	for (unsigned int i = 0; i < 4; i++)
		free(vms[i]);
}
