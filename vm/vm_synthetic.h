/* The synthetic VM backend: a deterministic workload whose writes are a pure function of its
 * state (seed, step counter, pattern, working set), at a rate that only decides how many steps
 * run per second. Its vCPU state is that workload state. */
#ifndef FERRY_VM_VM_SYNTHETIC_H
#define FERRY_VM_VM_SYNTHETIC_H

#include <stdbool.h>
#include <stdint.h>

#include "vm/machine.h"

enum vm_pattern {
	VM_PATTERN_UNIFORM,    /* any page of the working set, evenly */
	VM_PATTERN_HOTCOLD,    /* 90 % of writes to the hottest 10 % of the working set */
	VM_PATTERN_SEQUENTIAL, /* page after page through the working set, round and round */
};

struct vm_workload {
	uint64_t seed;
	enum vm_pattern pattern;
	uint64_t working_set_pages; /* 0 = all of memory */
	uint64_t rate;              /* page writes per second; 0 = as fast as its share allows */
	bool idle;                  /* writes nothing (a VM at 0 dirty pages/s) */
	uint32_t max_steps_per_run; /* bounds one machine_run on the worker; 0 = 4096 */
	uint32_t fill_percent;      /* of the working set written with data at power-on, as a
	                             * booted vm's memory is; not part of the vCPU state */
};

/* How a workload's rate becomes steps: the time owed at its rate, carried between runs. */
struct vm_pacing {
	uint64_t last_run_ns;
	uint64_t credit_ns; /* time owed to the workload at its rate */
	uint64_t max_rate;  /* a "max" VM's speed when a throttle began */
};

/* The steps a workload owes at now_ns (its rate slowed by the VM's throttle; "max" takes its
 * whole bound), at most max_steps_per_run: every backend paces its workload so. */
uint64_t vm_pacing_steps(struct vm_pacing *pacing, const struct machine *vm,
                         const struct vm_workload *workload, uint64_t now_ns);

/* Power-on contents: the first fill_percent of the working set, every word a function of the
 * seed and its address, so two VMs made alike are alike byte for byte. */
void vm_workload_fill(struct machine *vm, const struct vm_workload *workload);

/* The vCPU state on the wire: little-endian, 48 bytes. */
struct vm_synthetic_state {
	uint32_t magic; /* VM_SYNTHETIC_MAGIC */
	uint32_t pattern;
	uint64_t seed;
	uint64_t step;
	uint64_t working_set_pages;
	uint64_t rate;
	uint32_t max_steps_per_run;
	uint32_t flags; /* VM_SYNTHETIC_IDLE */
} __attribute__((packed));

_Static_assert(sizeof(struct vm_synthetic_state) == 48, "synthetic vCPU state is 48 bytes");

#define VM_SYNTHETIC_MAGIC 0x66727953u /* "Syrf" */
#define VM_SYNTHETIC_IDLE  1u

/* The backend. */
extern const struct machine_ops vm_synthetic_ops;

/* Runs exactly n steps, whatever the clock says (tests compare runs step for step), or fewer if
 * one stalls on a page that is elsewhere (post-copy). */
void vm_synthetic_steps(struct machine *vm, uint64_t n);

/* The workload as the backend runs it (after a state load, the one that came with it). */
const struct vm_workload *vm_synthetic_workload(const struct machine *vm);

/* The step counter. */
uint64_t vm_synthetic_step(const struct machine *vm);

#define VM_SYNTHETIC_DISK_BLOCK 4096

/* The disk block the workload writes at a step for a seed: splitmix64 words, as its memory
 * writes are a function of (seed, step) alone. */
void vm_synthetic_disk_block(uint64_t seed, uint64_t step, uint8_t out[VM_SYNTHETIC_DISK_BLOCK]);

/* Parses "uniform|hotcold|sequential"; -EINVAL otherwise. */
int vm_pattern_parse(const char *text, enum vm_pattern *pattern);

/* The pattern's name. */
const char *vm_pattern_name(enum vm_pattern pattern);

/* Parses "pattern[,rate=N|max][,ws=PAGES][,seed=N][,fill=PERCENT]" into a workload; -EINVAL if
 * malformed. */
int vm_workload_parse(const char *spec, struct vm_workload *workload);

#endif
