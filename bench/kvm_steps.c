/* The KVM backend's own costs (tools/bench/kvm.sh): the guest's steps per second with KVM's
 * dirty log off, on, and read and cleared as often as a migration's rounds might, beside the
 * synthetic backend's steps (the host's own writes), and what a read of the log costs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vm/machine.h"
#include "vm/vm_kvm.h"
#include "vm/vm_synthetic.h"

#define CHUNK 500 /* steps between two reads of the log, in the "read" case */

static double seconds_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Steps per second over a run of the given length; the log read after every CHUNK steps if
 * asked. */
static double steps_per_second(struct machine *vm, double seconds, bool read_log)
{
	uint64_t *log = calloc(machine_bitmap_words(vm), sizeof(uint64_t));
	uint64_t steps = 0;
	double start = seconds_now();

	while (seconds_now() - start < seconds) {
		if (machine_steps(vm, CHUNK) < 0) {
			fprintf(stderr, "the vCPU failed\n");
			exit(1);
		}
		steps += CHUNK;
		if (read_log)
			machine_dirty_log_read_and_clear(vm, log);
	}
	free(log);
	return (double)steps / (seconds_now() - start);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s MIB SECONDS\n", argv[0]);
		return 2;
	}
	unsigned int mib = (unsigned int)atoi(argv[1]);
	double seconds = atof(argv[2]);
	uint64_t pages = (uint64_t)mib * 256;
	struct vm_kvm_config config = {
	        .workload = {.seed = 1, .pattern = VM_PATTERN_UNIFORM},
	        .guest_page = pages - vm_kvm_guest_pages(pages),
	};
	config.workload.working_set_pages = config.guest_page;
	const struct {
		const char *name;
		bool kvm, no_log, read;
	} cases[] = {
	        {"KVM, dirty log off", true, true, false},
	        {"KVM, dirty log on, read and cleared every 500 steps", true, false, true},
	        {"synthetic (the host writes, its own log)", false, false, true},
	};
	double reference = 0;

	printf("| %u MiB VM, uniform over its memory | steps/s | x log off | log reads | us a read "
	       "| us a read per GiB |\n|---|---|---|---|---|---|\n",
	       mib);
	for (unsigned int c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct machine vm;
		config.no_dirty_log = cases[c].no_log;
		int ret = cases[c].kvm
		                  ? machine_create(&vm, "bench", mib, MACHINE_BACKING_ANONYMOUS,
		                                   &vm_kvm_ops, &config)
		                  : machine_create(&vm, "bench", mib, MACHINE_BACKING_ANONYMOUS,
		                                   &vm_synthetic_ops, &config.workload);
		if (ret < 0) {
			fprintf(stderr, "%s: cannot make the VM: %s\n", cases[c].name,
			        strerror(-ret));
			return 1;
		}
		double rate = steps_per_second(&vm, seconds, cases[c].read);
		if (c == 0)
			reference = rate;
		printf("| %s | %.0f | %.2f |", cases[c].name, rate, rate / reference);
		if (cases[c].kvm && !cases[c].no_log) {
			struct vm_kvm_log_stats log = vm_kvm_log_stats(&vm);
			double us =
			        log.reads != 0 ? (double)log.read_ns / 1e3 / (double)log.reads : 0;
			printf(" %lu | %.1f | %.1f |\n", (unsigned long)log.reads, us,
			       us * 1024.0 / mib);
		} else {
			printf(" — | — | — |\n");
		}
		machine_destroy(&vm);
	}
	return 0;
}
